"""Searching every table and every Redis key for a username (erasure tests)."""

from __future__ import annotations

import redis.asyncio as redis

from tests.support.history_database import query_history


async def tables_holding(url: str, needle: str) -> dict[str, int]:
    """Each table of the history database with rows holding `needle` in any column, and
    how many."""
    if url.startswith("sqlite"):
        listed = await query_history(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        listed = await query_history(url, "SHOW TABLES")
    found: dict[str, int] = {}
    for (table,) in listed:
        rows = await query_history(url, f"SELECT * FROM {table}")  # the listed table names
        holding = sum(1 for row in rows if any(needle in str(value) for value in row))
        if holding:
            found[str(table)] = holding
    return found


async def redis_keys_holding(url: str, prefix: str, needle: str) -> list[str]:
    """Every key under `prefix` whose name, members, fields or values hold `needle`."""
    client = redis.Redis.from_url(url, decode_responses=True)
    found: list[str] = []
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            kind = await client.type(key)
            if kind == "zset":
                values = [str(member) for member in await client.zrange(key, 0, -1)]
            elif kind == "hash":
                pairs = await client.hgetall(key)
                values = [str(item) for pair in pairs.items() for item in pair]
            elif kind == "set":
                values = [str(member) for member in await client.smembers(key)]
            elif kind == "list":
                values = [str(item) for item in await client.lrange(key, 0, -1)]
            elif kind == "string":
                values = [str(await client.get(key))]
            else:
                values = []
            if needle in key or any(needle in value for value in values):
                found.append(key)
    finally:
        await client.aclose()
    return found
