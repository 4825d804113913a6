"""The change-message codec: its own round trip, and the messages increment.lua and
write.lua encode (on a real Redis) read back exactly as the Python encoder's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as redis_asyncio

from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.boards import Board, ResetPeriod
from store.models import MAX_EXACT_SCORE, ScoreChange, ScoreIncrement
from store.redis import RedisRankingStore
from store.redis.changes import change_of, decode, encode
from store.redis.keys import KeyLayout
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

BOARDS = (Board("global", ResetPeriod.MONTHLY),)
PERIOD = "2026-05"
RETENTION = timedelta(days=35)
USERNAMES = ["alice", 'quote"back\\slash', "slash/é/日本", "tab\tnew\nline", "max"]


def changes() -> list[ScoreChange]:
    """Changes with every kind of value: no previous standing, extreme scores, odd names."""
    return [
        ScoreChange(
            board="global",
            period=PERIOD,
            username=username,
            previous_score=None if number % 2 else -MAX_EXACT_SCORE + number,
            score=MAX_EXACT_SCORE - number,
            previous_rank=None if number % 2 else number + 1,
            rank=number + 1,
        )
        for number, username in enumerate(USERNAMES)
    ]


def test_decode_reads_what_encode_wrote() -> None:
    assert decode(encode(changes())) == changes()
    assert decode(encode([])) == []


def test_a_single_object_is_one_change() -> None:
    [change] = changes()[:1]
    assert decode(orjson.dumps(orjson.loads(encode([change]))[0])) == [change]


@pytest.mark.parametrize(
    "message",
    [
        b"not json",
        b'[{"board": "global"}]',
        b'[{"board": "g", "period": "p", "username": "u",'
        b' "previous_score": null, "score": "many", "previous_rank": null, "rank": 1}]',
        b"[1]",
    ],
)
def test_a_malformed_message_is_ignored_and_logged(
    message: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert decode(message) == []
    assert "malformed change message" in caplog.text


@pytest.fixture
async def raw() -> AsyncIterator[redis_asyncio.Redis]:
    """A plain client on the shared Redis, to listen as another instance would."""
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


# increment.lua, and write.lua (a board of another rule, order and tie-break).
SCRIPT_BOARDS = [
    BOARDS,
    (
        Board(
            "global",
            ResetPeriod.MONTHLY,
            update_rule=UpdateRule.LATEST,
            sort_order=SortOrder.ASC,
            tie_break=TieBreak.EARLIEST,
        ),
    ),
]


RULED = (Board("global", ResetPeriod.MONTHLY, update_rule=UpdateRule.INCREMENT, max_score=10**9),)
"""An INCREMENT board with a cap: write.lua's, ranked as increment.lua's boards are."""


@pytest.mark.parametrize("boards", SCRIPT_BOARDS, ids=["increment.lua", "write.lua"])
async def test_increment_lua_encodes_what_the_codec_encodes(
    redis_prefix: str, raw: redis_asyncio.Redis, boards: tuple[Board, ...]
) -> None:
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=redis_prefix, boards=boards, retention=RETENTION
    )
    pubsub = raw.pubsub()
    try:
        await store.load("global", PERIOD, [("max", MAX_EXACT_SCORE - 10), ("alice", -3)], [])
        await pubsub.subscribe(KeyLayout(redis_prefix, boards, RETENTION).channel("global"))
        # The raw listener stands for another instance's consumer, which holds the board.
        await store.watch("global")
        increments = [
            ScoreIncrement(
                board="global",
                period=PERIOD,
                username=username,
                delta=delta,
                event_id=f"e{number}",
                client_event_id=True,
            )
            for number, (username, delta) in enumerate(
                [(name, 7) for name in USERNAMES]
                + [("max", 3 if boards[0].plain else MAX_EXACT_SCORE)]
                + [("alice", -MAX_EXACT_SCORE + 4)]
            )
        ]
        # Published by the script itself: an unsharded board on a single Redis.
        outcomes = await store.increment(increments)
        async with asyncio.timeout(5):
            while (message := await pubsub.get_message(timeout=1)) is None or message[
                "type"
            ] != "message":
                pass
        lua_message: bytes = message["data"]
        expected = [change_of(outcome) for outcome in outcomes if outcome.changed]
        assert decode(lua_message) == expected
        assert any(change.previous_score is None for change in expected)
        assert any(change.score == MAX_EXACT_SCORE for change in expected)
        # Field for field, in the same order: one format, two encoders.
        assert orjson.loads(lua_message) == orjson.loads(encode(expected))
        assert [list(item) for item in orjson.loads(lua_message)] == [
            list(item) for item in orjson.loads(encode(expected))
        ]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await store.close()


async def _messages(pubsub: Any, seconds: float) -> list[bytes]:
    """The messages the raw subscriber gets within `seconds`."""
    received = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        message = await pubsub.get_message(timeout=left)
        if message is not None and message["type"] == "message":
            received.append(message["data"])
    return received


@pytest.mark.parametrize("select_ranks", [True, False], ids=["ranks", "no-ranks"])
@pytest.mark.parametrize("boards", [BOARDS, RULED], ids=["increment.lua", "write.lua"])
async def test_a_board_nobody_watches_publishes_nothing_and_a_watched_one_does(
    redis_prefix: str, raw: redis_asyncio.Redis, select_ranks: bool, boards: tuple[Board, ...]
) -> None:
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=redis_prefix, boards=boards, retention=RETENTION
    )
    layout = KeyLayout(redis_prefix, boards, RETENTION)
    pubsub = raw.pubsub()
    try:
        await store.load("global", PERIOD, [("alice", 10)], [])
        await pubsub.subscribe(layout.channel("global"))
        await _messages(pubsub, 0.2)  # the subscribe confirmation

        def bob(number: int) -> ScoreIncrement:
            return ScoreIncrement(
                board="global",
                period=PERIOD,
                username="bob",
                delta=5,
                event_id=f"b{number}",
                client_event_id=True,
            )

        # Nobody holds the board: the raw subscriber hears nothing, and the ranks are
        # computed only when asked for.
        (unwatched,) = await store.increment([bob(1)], ranks=select_ranks)
        assert unwatched.score == 5
        assert unwatched.applied
        # (write.lua always ranks.)
        assert unwatched.rank == (2 if select_ranks or not boards[0].plain else 0)
        assert await _messages(pubsub, 0.3) == []
        assert await raw.exists(layout.watched("global")) == 0

        # Held: every write publishes, with its ranks, whether the caller asked or not.
        await store.watch("global")
        assert await raw.exists(layout.watched("global")) == 1
        (watched,) = await store.increment([bob(2)], ranks=select_ranks)
        assert watched.rank == 1
        (message,) = await _messages(pubsub, 0.5)
        assert decode(message) == [change_of(watched)]
        assert decode(message)[0].previous_rank == 2

        # Released, and its marker lapsed (as an instance that stopped would let it):
        # nothing again.
        store.unwatch("global")
        await raw.delete(layout.watched("global"))
        await store.increment([bob(3)], ranks=select_ranks)
        assert await _messages(pubsub, 0.3) == []
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await store.close()
