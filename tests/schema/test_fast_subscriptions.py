"""The subscriptions' shortcut sends the frames Strawberry sends, on both protocols.

Each case runs on two WebSocket connections at once, over the same data: one subscribed
with the shortcut on, the other with it off. Every frame either receives (raw text, by
operation id) must be the same, from the first answer through changes to the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from resolvers.errors import ApiError, ErrorCode
from resolvers.live import RankUpdate
from schema.context import ApiContext
from schema.fast_subscriptions import FastSubscriptions, Payloads
from store.models import RankedPlayer
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp
from tests.support.operations import RANK_CHANGED, TOP_CHANGED, score

pytestmark = pytest.mark.integration

MAX_SUBSCRIPTIONS = 2
BOARDS = ("global", "daily-race", "alltime")
WAIT_SECONDS = 5.0

Case = tuple[str, dict[str, Any], str | None, bool]
"""A document, its variables, its operationName, and whether the shortcut takes it."""

CASES: list[Case] = [
    (TOP_CHANGED, {}, None, True),
    (TOP_CHANGED, {"limit": 1}, None, True),
    (TOP_CHANGED, {"limit": 2, "board": "daily-race"}, None, True),
    (TOP_CHANGED, {"limit": 2, "board": "alltime"}, None, True),
    (TOP_CHANGED, {"limit": 0}, None, False),
    (TOP_CHANGED, {"limit": 101}, None, False),
    (TOP_CHANGED, {"board": "nope"}, None, False),
    (TOP_CHANGED, {"limit": "3"}, None, False),
    (TOP_CHANGED, {"limit": None}, None, False),
    (TOP_CHANGED, {"limit": 2**31}, None, False),
    (TOP_CHANGED, {"limit": True}, None, False),
    (TOP_CHANGED, {"board": 7}, None, False),
    (RANK_CHANGED, {"username": "ana"}, None, True),
    (RANK_CHANGED, {"username": "ana", "board": "alltime"}, None, True),
    (RANK_CHANGED, {"username": "bad name"}, None, False),
    (RANK_CHANGED, {"username": "ana", "board": "nope"}, None, False),
    (RANK_CHANGED, {}, None, False),
    ("subscription { top: topPlayersChanged(limit: 2) { rank username score } }", {}, None, True),
    ('subscription { topPlayersChanged(limit: 1, board: "global") { score } }', {}, None, True),
    ("subscription($l: Int = 2) { topPlayersChanged(limit: $l) { username } }", {}, None, True),
    (
        "subscription($l: Int = 2) { topPlayersChanged(limit: $l) { rank } }",
        {"l": None},
        None,
        False,
    ),
    (
        'subscription Named { rankChanged(username: "ana") '
        "{ previousRank rank score period board username } }",
        {},
        "Named",
        True,
    ),
    ('subscription Named { rankChanged(username: "ana") { rank } }', {}, "Other", False),
    ('subscription { rankChanged(username: "ana") { rank rank } }', {}, None, False),
    ('subscription { rankChanged(username: "ana") { r: rank } }', {}, None, False),
    (
        "subscription { topPlayersChanged { ...F } } fragment F on RankedPlayer { rank }",
        {},
        None,
        False,
    ),
    ("subscription { topPlayersChanged { rank __typename } }", {}, None, False),
    ("subscription { topPlayersChanged @include(if: true) { rank } }", {}, None, False),
    ("subscription { topPlayersChanged(limit: 2) { nope } }", {}, None, False),
    (
        'subscription { rankChanged(username: "ana") { rank } topPlayersChanged { rank } }',
        {},
        None,
        False,
    ),
    ("subscription { topPlayersChanged(", {}, None, False),
    ("{ topPlayers(limit: 2) { username } }", {}, None, False),
    ('mutation { incrementScore(username: "ana") { score } }', {}, None, False),
]


@pytest.fixture(params=[TRANSPORT_WS, LEGACY_WS])
def protocol(request: pytest.FixtureRequest) -> str:
    """The WebSocket subprotocol under test."""
    return str(request.param)


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """Few subscriptions per connection, so that the limit is part of every case."""
    return {"max_subscriptions_per_connection": MAX_SUBSCRIPTIONS}


@pytest.fixture
async def seeded(gql: GraphQLHttp) -> GraphQLHttp:
    """Four players on `global` and `alltime`; `daily-race` is empty."""
    for board in ("global", "alltime"):
        for username, delta in [("ana", 15), ("bo", 20), ("cy", 20), ("dee", 5)]:
            await score(gql, username, delta, board=board)
    return gql


class Recorder:
    """One GraphQL WebSocket connection that records every frame it receives."""

    def __init__(self, socket: AsyncWebSocketSession, protocol: str) -> None:
        self.socket = socket
        self.protocol = protocol
        self.frames: list[tuple[str | None, str]] = []
        """(operation id, raw text) of every frame, in arrival order; a close is one too."""
        self.closed = False
        self._arrived = asyncio.Condition()

    async def read(self) -> None:
        """Record frames until the server closes the connection."""
        while True:
            try:
                text = await self.socket.receive_text()
            except WebSocketDisconnect as closed:
                self.closed = True
                await self._record(None, f"closed {closed.code} {closed.reason}")
                return
            await self._record(json.loads(text).get("id"), text)

    async def _record(self, operation_id: str | None, text: str) -> None:
        async with self._arrived:
            self.frames.append((operation_id, text))
            self._arrived.notify_all()

    async def wait(self, condition: Callable[[], bool]) -> None:
        """Until the condition holds (or the connection closed)."""
        async with asyncio.timeout(WAIT_SECONDS), self._arrived:
            await self._arrived.wait_for(lambda: self.closed or condition())

    def of(self, operation_id: str) -> list[dict[str, Any]]:
        """The frames of one operation, decoded."""
        return [json.loads(text) for frame_id, text in self.frames if frame_id == operation_id]

    def by_operation(self) -> dict[str | None, list[str]]:
        """Raw frames grouped by operation id: the order between operations is the server's
        task scheduling (which watcher's mailbox wakes first), the order within one is not."""
        grouped: dict[str | None, list[str]] = {}
        for operation_id, text in self.frames:
            grouped.setdefault(operation_id, []).append(text)
        return grouped

    def live(self, operation_id: str) -> bool:
        """Whether the operation sent data and has not ended."""
        frames = self.of(operation_id)
        return bool(frames) and all(_is_data(frame) for frame in frames)

    def ended(self, operation_id: str) -> bool:
        """Whether the server ended the operation."""
        return any(frame["type"] in ("complete", "error") for frame in self.of(operation_id))

    async def wait_until_ended(self, *operation_ids: str) -> None:
        """Until the server ended every one of the operations."""
        await self.wait(lambda: all(self.ended(operation_id) for operation_id in operation_ids))

    async def wait_for_more(self, counts: dict[str, int]) -> None:
        """Until each operation has more frames than `counts` says it had."""
        await self.wait(
            lambda: all(
                len(self.of(operation_id)) > count for operation_id, count in counts.items()
            )
        )

    async def send(self, message: dict[str, Any]) -> None:
        """Send one protocol message."""
        await self.socket.send_text(json.dumps(message))

    async def start(
        self, operation_id: str, query: str, variables: dict[str, Any], name: str | None
    ) -> None:
        """Start an operation and wait until it is live or ended (a query or mutation: ended)."""
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables, "operationName": name}
        await self.send({"id": operation_id, "type": kind, "payload": payload})
        one_shot = not query.lstrip().startswith("subscription")
        await self.wait(
            lambda: self.ended(operation_id) or (not one_shot and self.live(operation_id))
        )

    async def stop(self, operation_id: str) -> None:
        """Stop an operation (the legacy protocol answers with `complete`)."""
        kind = "complete" if self.protocol == TRANSPORT_WS else "stop"
        await self.send({"id": operation_id, "type": kind})
        if self.protocol == LEGACY_WS:
            await self.wait(lambda: self.of(operation_id)[-1]["type"] == "complete")

    async def barrier(self) -> None:
        """A request answered after every frame the server sent before it."""
        if self.closed:
            return
        if self.protocol == TRANSPORT_WS:
            await self.send({"type": "ping"})
            await self.wait(lambda: self.frames[-1][1] == '{"type":"pong"}')
        else:
            await self.start("barrier", "subscription { nope }", {}, None)


def _is_data(frame: dict[str, Any]) -> bool:
    return frame["type"] in ("next", "data") and not frame["payload"].get("errors")


@contextlib.asynccontextmanager
async def recorder(app: Starlette, protocol: str) -> AsyncIterator[Recorder]:
    """An initialised connection to the app, recording what it receives."""
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws(
            "/graphql", client, subprotocols=[protocol], session_class=AsyncWebSocketSession
        ) as socket,
    ):
        connection = Recorder(socket, protocol)
        reading = asyncio.create_task(connection.read())
        try:
            await connection.send({"type": "connection_init", "payload": {}})
            await connection.wait(lambda: bool(connection.frames))
            yield connection
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


@contextlib.contextmanager
def shortcut(app: Starlette, *, enabled: bool) -> Iterator[list[bool]]:
    """The shortcut on or off for the operations started inside; yields, per operation,
    whether the shortcut took it."""
    fast: FastSubscriptions = app.state.graphql.fast_subscriptions
    taken: list[bool] = []
    original_open = fast.open

    def open_or_not(
        context: ApiContext, query: object, variables: object, name: object
    ) -> Payloads | None:
        payloads = original_open(context, query, variables, name) if enabled else None
        taken.append(payloads is not None)
        return payloads

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "open", open_or_not)
        yield taken


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0][:60]} {case[1]} {case[2]}")
async def test_shortcut_sends_what_strawberry_sends(
    app: Starlette, seeded: GraphQLHttp, protocol: str, case: Case
) -> None:
    query, variables, name, simple = case
    async with recorder(app, protocol) as fast, recorder(app, protocol) as slow:
        for connection, enabled in ((fast, True), (slow, False)):
            with shortcut(app, enabled=enabled) as taken:
                # One more than a connection may have: the last one is refused.
                for operation_id in map(str, range(1, MAX_SUBSCRIPTIONS + 2)):
                    if not connection.closed:
                        await connection.start(operation_id, query, variables, name)
            if enabled:
                # Strawberry's own per-connection limit refuses the last before it gets here.
                assert set(taken) == {simple}, taken
        assert fast.by_operation() == slow.by_operation()

        live = [operation_id for operation_id in ("1", "2") if fast.live(operation_id)]
        if simple:
            assert live == ["1", "2"]
        # Every live operation gets one new frame per change (ana passes the leaders on
        # each board, then falls back).
        for delta in (10, -10):
            counts = {operation_id: len(fast.of(operation_id)) for operation_id in live}
            for board in BOARDS:
                await score(seeded, "ana", delta, board=board)
            for connection in (fast, slow):
                await connection.wait_for_more(counts)
        for connection in (fast, slow):
            for operation_id in live:
                await connection.stop(operation_id)
            await connection.barrier()
        assert fast.by_operation() == slow.by_operation()


def operation_counts(app: Starlette) -> dict[tuple[str, ...], float]:
    """The operation counter's samples, by (type, field, code)."""
    registry = app.state.resources.metrics.registry
    return {
        (sample.labels["type"], sample.labels["field"], sample.labels["code"]): sample.value
        for metric in registry.collect()
        if metric.name == "leaderboard_graphql_operations"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def counted_since(
    app: Starlette, before: dict[tuple[str, ...], float]
) -> dict[tuple[str, ...], float]:
    """What the operation counter counted since `before`."""
    return {
        labels: value - before.get(labels, 0.0)
        for labels, value in operation_counts(app).items()
        if value != before.get(labels, 0.0)
    }


ENDINGS: dict[str, BaseException | None] = {
    "ends": None,
    "unavailable": ApiError(ErrorCode.UNAVAILABLE, "storage is unavailable"),
    "unexpected": RuntimeError("boom"),
}
ENDING_DOCUMENTS = {
    "topPlayersChanged": (TOP_CHANGED, {}),
    "rankChanged": (RANK_CHANGED, {"username": "ana"}),
}


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("field", ENDING_DOCUMENTS)
async def test_a_stream_that_ends_by_itself_ends_as_with_strawberry(
    app: Starlette,
    protocol: str,
    ending: str,
    field: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = app.state.resources.live
    update = RankUpdate("ana", "global", "2026-11", 15, 2, 3)

    async def one_then_end(*_: object) -> AsyncIterator[Any]:
        yield (
            [
                RankedPlayer(username="bo", score=20, rank=1),
                RankedPlayer(username="ana", score=15, rank=2),
            ]
            if field != "rankChanged"
            else update
        )
        error = ENDINGS[ending]
        if error is not None:
            raise error

    monkeypatch.setattr(live, "watch_top", one_then_end)
    monkeypatch.setattr(live, "watch_player", one_then_end)
    query, variables = ENDING_DOCUMENTS[field]
    frames: list[dict[str | None, list[str]]] = []
    counted: list[dict[tuple[str, ...], float]] = []
    for enabled in (True, False):
        before = operation_counts(app)
        async with recorder(app, protocol) as connection:
            with shortcut(app, enabled=enabled) as taken:
                await connection.start("1", query, variables, None)
                await connection.wait_until_ended("1")
            assert taken == [enabled]
            await connection.barrier()
            frames.append(connection.by_operation())
        counted.append(counted_since(app, before))
    assert frames[0] == frames[1]
    assert counted[0] == counted[1]
    assert counted[0]  # the subscription was counted once it ended


async def test_closing_live_updates_ends_subscriptions_as_with_strawberry(
    app: Starlette, seeded: GraphQLHttp, protocol: str
) -> None:
    before = operation_counts(app)
    async with recorder(app, protocol) as fast, recorder(app, protocol) as slow:
        for connection, enabled in ((fast, True), (slow, False)):
            with shortcut(app, enabled=enabled) as taken:
                await connection.start("1", TOP_CHANGED, {}, None)
                await connection.start("2", RANK_CHANGED, {"username": "ana"}, None)
            assert taken == [enabled, enabled]
        await app.state.resources.live.close()
        for connection in (fast, slow):
            await connection.wait_until_ended("1", "2")
            await connection.barrier()
        assert fast.by_operation() == slow.by_operation()
    assert counted_since(app, before) == {
        ("subscription", "topPlayersChanged", "OK"): 2.0,
        ("subscription", "rankChanged", "OK"): 2.0,
    }


async def test_watchers_of_one_top_list_share_its_payload(
    app: Starlette, seeded: GraphQLHttp
) -> None:
    fast: FastSubscriptions = app.state.graphql.fast_subscriptions
    resources = app.state.resources
    context = ApiContext(service=resources.service, live=resources.live, authorized=False)
    first = fast.open(context, TOP_CHANGED, {"limit": 2}, None)
    second = fast.open(context, TOP_CHANGED, {"limit": 2}, None)
    other = fast.open(context, "subscription { topPlayersChanged(limit: 2) { rank } }", {}, None)
    assert first is not None
    assert second is not None
    assert other is not None
    try:
        shared = await anext(first)
        assert await anext(second) is shared
        assert await anext(other) is not shared  # another selection: another payload
        assert orjson.loads(orjson.dumps(shared)) == {
            "data": {
                "topPlayersChanged": [
                    {"username": "bo", "score": 20, "rank": 1},
                    {"username": "cy", "score": 20, "rank": 1},
                ]
            }
        }
    finally:
        for payloads in (first, second, other):
            await payloads.aclose()
