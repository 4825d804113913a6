"""The machine's shared Redis and MariaDB, isolated per test by key prefix and database."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomysql
import redis.asyncio as redis_asyncio

REDIS_URL = os.environ.get("LEADERBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MYSQL_HOST = os.environ.get("LEADERBOARD_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("LEADERBOARD_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("LEADERBOARD_TEST_MYSQL_USER", "root")

START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
START_MARIADB = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


def mysql_url(database: str, host: str = MYSQL_HOST, port: int = MYSQL_PORT) -> str:
    """A `databases` URL for a database on a MariaDB server."""
    return f"mysql+aiomysql://{MYSQL_USER}@{host}:{port}/{database}"


async def require_redis() -> None:
    """Fail (never skip) with what to start when the shared Redis does not answer."""
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:
        raise RuntimeError(
            f"Redis at {REDIS_URL} is unreachable ({error}); start it with: {START_REDIS}"
        ) from error
    finally:
        await client.aclose()


async def delete_prefix(prefix: str) -> None:
    """Delete every key under a test's private prefix."""
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def private_database(host: str = MYSQL_HOST, port: int = MYSQL_PORT) -> AsyncIterator[str]:
    """Create a throw-away database on MariaDB, yield its name, drop it afterwards."""
    name = f"lbtest_{secrets.token_hex(6)}"
    try:
        connection = await aiomysql.connect(host=host, port=port, user=MYSQL_USER, autocommit=True)
    except Exception as error:
        raise RuntimeError(
            f"MariaDB at {host}:{port} is unreachable ({error}); start it with: {START_MARIADB}"
        ) from error
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()
