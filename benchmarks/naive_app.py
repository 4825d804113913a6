"""The naive baseline: the simplest Strawberry + uvicorn app over redis-py. No caches, no checks.

    python -m benchmarks.naive_app --port 8001 [--workers 1]   (NAIVE_REDIS_URL, NAIVE_KEY_PREFIX)

`incrementScore` is one `ZINCRBY`, `topPlayers` one `ZREVRANGE … WITHSCORES`: no validation,
no ranks, no idempotency, no history, no parser or validation cache. This is what the
service is compared with; it does strictly less work per request.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import redis.asyncio as redis_asyncio
import strawberry
import uvicorn
from strawberry.asgi import GraphQL

REDIS = redis_asyncio.Redis.from_url(os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0"))
PREFIX = os.environ.get("NAIVE_KEY_PREFIX", "lbbench-naive")


def key(board: str) -> str:
    """The sorted set of a board."""
    return f"{PREFIX}:{board}"


@strawberry.type
class Player:
    username: str
    score: float


@strawberry.type
class Query:
    @strawberry.field
    async def top_players(self, board: str = "global", limit: int = 10) -> list[Player]:
        rows: list[tuple[bytes, float]] = await REDIS.zrevrange(  # type: ignore[assignment]
            key(board), 0, limit - 1, withscores=True
        )
        return [Player(username=member.decode(), score=score) for member, score in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def increment_score(self, username: str, delta: int = 1, board: str = "global") -> Player:
        score = await REDIS.zincrby(key(board), delta, username)
        return Player(username=username, score=score or 0.0)


schema = strawberry.Schema(query=Query, mutation=Mutation)
app = GraphQL(schema)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the app."""
    parser = argparse.ArgumentParser(description="The naive baseline app.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args(argv)
    uvicorn.run(
        "benchmarks.naive_app:app",
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
