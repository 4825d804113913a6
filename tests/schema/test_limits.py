"""Bounded work per request: every abuse bound refuses early, with a coded GraphQL error.

Each bound is checked on both sides (just within it is served, just over it is refused), and
"refused before the stores" is proven on the real store: the ranking store's calls are
counted, and on Redis every command the app sends under the test's key prefix is watched
(MONITOR) while the request runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import httpx
import pytest
import redis.asyncio as redis_asyncio
from httpx_ws import (
    WebSocketDisconnect,
    WebSocketUpgradeError,
)
from starlette.applications import Starlette

from schema.documents import CACHE_BYTES, MAX_DOCUMENT_CHARS, PLAN_CACHE_BYTES
from server.app import create_app
from tests.support.asgi_app import TOKEN, make_settings, refusal_code, websocket
from tests.support.background import is_background
from tests.support.documents import dense_document, padded_document
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp, Json
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

TOP_FIELDS = "{ username score rank }"
STORE_METHODS = (
    "top",
    "player",
    "neighborhood",
    "player_count",
    "increment",
    "totals",
    "players",
    "page",
)
GAME = "https://game.example"
EVIL = "https://evil.example"


class AppFactory(Protocol):
    def __call__(self, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Started]: ...


class Started:
    """A running app with its own settings, an HTTP client, and instruments on its stores."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient, backend: str, prefix: str) -> None:
        self.app = app
        self.http = http
        self.gql = GraphQLHttp(http, token=TOKEN)
        self.backend = backend
        self.prefix = prefix
        self.store_calls: Counter[str] = Counter()
        resources = app.state.resources
        for name in STORE_METHODS:
            # Counted where the service sends them: the top cache first, when on, for the
            # calls it fronts (a cache hit is still a call the request made).
            cache = resources.top_cache
            store = cache if cache is not None and hasattr(cache, name) else resources.ranking
            setattr(store, name, self._counted(name, getattr(store, name)))

    def _counted(self, name: str, method: Callable[..., Awaitable[Any]]) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.store_calls[name] += 1
            return await method(*args, **kwargs)

        return counted

    @contextlib.asynccontextmanager
    async def store_work(self) -> AsyncIterator[list[str]]:
        """Collects what reached the stores while the block runs: the ranking store's calls,
        and on Redis every command naming one of the app's keys (but its background loops':
        `tests.support.background`)."""
        seen: list[str] = []
        calls_before = sum(self.store_calls.values())
        if self.backend != "redis-mysql":
            yield seen
            seen.extend(["store call"] * (sum(self.store_calls.values()) - calls_before))
            return
        watcher = redis_asyncio.Redis.from_url(REDIS_URL)
        marker = redis_asyncio.Redis.from_url(REDIS_URL)
        sentinel = f"{self.prefix}:sentinel:{secrets.token_hex(4)}"
        try:
            async with watcher.monitor() as monitor:
                yield seen
                await marker.exists(sentinel)
                while True:
                    command = (await asyncio.wait_for(monitor.next_command(), 10))["command"]
                    if sentinel in command:
                        break
                    if self.prefix in command and not is_background(command, self.prefix):
                        seen.append(command)
        finally:
            await watcher.aclose()
            await marker.aclose()
        seen.extend(["store call"] * (sum(self.store_calls.values()) - calls_before))


@pytest.fixture
def start(
    backend: str, redis_prefix: str, mysql_database_url: str, sqlite_database_url: str
) -> AppFactory:
    """Starts the app on the backend under test with some settings overridden."""

    @contextlib.asynccontextmanager
    async def started(**overrides: Any) -> AsyncIterator[Started]:
        settings = make_settings(
            backend,
            redis_prefix=redis_prefix,
            mysql_url=mysql_database_url,
            sqlite_url=sqlite_database_url,
            **overrides,
        )
        application = create_app(settings)
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(application), base_url="http://testserver"
            ) as client,
        ):
            yield Started(application, client, backend, redis_prefix)

    return started


@pytest.fixture
async def running(start: AppFactory) -> AsyncIterator[Started]:
    """The app with its default limits."""
    async with start() as app:
        yield app


def codes(body: Json) -> list[str]:
    assert body.get("errors"), body
    return [error["extensions"]["code"] for error in body["errors"]]


def messages(body: Json) -> str:
    return " | ".join(error["message"] for error in body.get("errors", []))


def aliased_tops(count: int) -> str:
    return (
        "{ " + " ".join(f"t{i}: topPlayers(limit: 100) {TOP_FIELDS}" for i in range(count)) + " }"
    )


def refused_json(response: httpx.Response, status: int) -> Json:
    """A request refused at the HTTP level: the status, and a coded GraphQL error in JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: Json = response.json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "data" not in body or body["data"] is None
    return body


@contextlib.contextmanager
def quick(seconds: float = 1.0) -> Iterator[None]:
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"took {elapsed:.2f} s"


# Documents: size, aliases, depth, repeated fields, fragments


async def test_two_thousand_aliased_top_lists_are_refused_before_the_stores(
    running: Started,
) -> None:
    await running.gql.data('mutation { incrementScore(username: "ana", delta: 1) { rank } }')
    async with running.store_work() as work:
        body = await running.gql.execute(aliased_tops(2000))
        over_tokens = await running.gql.execute(aliased_tops(160))  # 8,500 characters
    assert codes(body) == codes(over_tokens) == ["BAD_USER_INPUT"]
    assert "characters is larger than the limit" in messages(body)
    assert "tokens" in messages(over_tokens)
    assert work == []
    # The instruments see a document that is served.
    async with running.store_work() as work:
        data = await running.gql.data(aliased_tops(3))
    assert data["t2"] == [{"username": "ana", "score": 1, "rank": 1}]
    assert len(work) >= 3


async def test_aliases_over_the_limit_are_refused_before_the_stores(running: Started) -> None:
    async with running.store_work() as work:
        body = await running.gql.execute(aliased_tops(31))
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "31 aliases found. Allowed: 30" in messages(body)
    assert work == []
    async with running.store_work() as work:
        data = await running.gql.data(aliased_tops(30))
    assert len(data) == 30
    assert running.store_calls["top"] == 30


async def test_aliases_hidden_in_fragments_are_counted(running: Started) -> None:
    fragment = " ".join(f"t{i}: topPlayers(limit: 100) {TOP_FIELDS}" for i in range(16))
    document = (
        f"{{ ...A ...B }} fragment A on Query {{ {fragment} }} fragment B on Query {{ ...A }}"
    )
    async with running.store_work() as work:
        body = await running.gql.execute(document)
    assert "32 aliases found" in messages(body), body
    assert work == []


async def test_too_many_tokens_are_refused(running: Started) -> None:
    # `player(username: "a")` is 6 tokens, with its selection `{ rank }` 9.
    def players(count: int) -> str:
        return "{ " + 'player(username: "a") { rank } ' * count + "}"

    assert len((await running.gql.execute(players(221)))["errors"]) == 1  # 1,991 tokens: repeats
    async with running.store_work() as work:
        body = await running.gql.execute(players(223))  # 2,009 tokens
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "more than 2000 tokens" in messages(body)
    assert work == []
    # A huge string literal is one token; it is refused by the rules, not parsed for long.
    with quick():
        body = await running.gql.execute(
            "{ player(username: " + json.dumps("x" * 200_000) + ") { rank } }"
        )
    assert codes(body) == ["BAD_USER_INPUT"]


LIMIT = MAX_DOCUMENT_CHARS


@pytest.mark.parametrize(
    "head",
    [
        "{ topPlayers { username } }",  # the fast path's shape
        "{ topPlayers { username } leaderboards { id } }",  # Strawberry's
        "query { leaderboards { id } }",
    ],
)
async def test_documents_over_the_character_limit_are_refused(running: Started, head: str) -> None:
    # Comments, string literals and white space count: a 250 KB comment is one token.
    assert "errors" not in await running.gql.execute(padded_document(head, LIMIT))
    over = [
        padded_document(head, LIMIT + 1),
        padded_document(head, 250_000),
        head[:-1] + " " * LIMIT + "}",
        '{ player(username: "' + "x" * LIMIT + '") { rank } }',  # a string literal
    ]
    async with running.store_work() as work:
        for document in over:
            with quick(0.2):
                response = await running.gql.post(document)
            assert response.status_code in (200, 400)
            body = response.json()
            assert codes(body) == ["BAD_USER_INPUT"], body
            assert f"is larger than the limit of {LIMIT}" in messages(body)
    assert work == []
    query = {"query": padded_document("{ leaderboards { id } }", LIMIT + 1)}
    refused = await running.http.get("/graphql", params=query)
    assert refused.status_code in (200, 400)
    assert codes(refused.json()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_subscription_documents_over_the_character_limit_are_refused(
    running: Started, protocol: str
) -> None:
    head = "subscription { topPlayersChanged(limit: 3) { username } }"
    async with websocket(running.app, protocol) as connection:
        await connection.start(padded_document(head, LIMIT + 1))
        refused = await connection.next()
        assert codes(refused) == ["BAD_USER_INPUT"], refused
        assert f"is larger than the limit of {LIMIT}" in messages(refused)
        await connection.start(padded_document(head, LIMIT))
        assert (await connection.next())["data"]["topPlayersChanged"] == []


async def test_caches_hold_bounded_memory_after_many_unique_documents(
    running: Started,
) -> None:
    # Each dense document keeps about 0.4 MB alive once parsed: 80 unique ones kept 32 MB
    # in caches of 1,024 entries. Now what every cache keeps is bounded in bytes.
    graphql = running.app.state.graphql
    documents = [dense_document(number) for number in range(80)]
    fast = "{ topPlayers(limit: 1) { username } } #"
    # The shortcut plans documents up to `big_document_chars` (longer ones are not its own).
    big = running.app.state.graphql.schema.big_document_chars
    for document in documents:
        await running.gql.execute(document)
    for number in range(120):
        await running.gql.execute(padded_document(fast, big - number))
    # Measured where the caches are: each weighs what it keeps (tests/schema/test_documents.py).
    assert CACHE_BYTES // 2 < graphql.schema.documents.held_bytes <= CACHE_BYTES
    assert PLAN_CACHE_BYTES // 2 < graphql.fast_path.held_bytes <= PLAN_CACHE_BYTES


async def test_depth_over_the_limit_is_refused(running: Started) -> None:
    def nested(levels: int) -> str:
        return "{ " + "leaderboards { " * levels + "id" + " }" * levels + " }"

    # The schema is only 1 deep: deeper documents are refused by validation (unknown fields)
    # at depth 8, and by the depth limit, before validation, at 9.
    at_limit = await running.gql.execute(nested(8))
    assert codes(at_limit) == ["BAD_USER_INPUT"] * len(at_limit["errors"])
    assert "depth" not in messages(at_limit)
    over = await running.gql.execute(nested(9))
    assert codes(over) == ["BAD_USER_INPUT"]
    assert messages(over) == "'anonymous' exceeds maximum operation depth of 8"


async def test_deep_fragments_are_refused(running: Started) -> None:
    chain = " ".join(
        f"fragment F{i} on Query {{ leaderboards {{ ...F{i + 1} }} }}" for i in range(12)
    )
    document = f"query Deep {{ ...F0 }} {chain} fragment F12 on Query {{ leaderboards {{ id }} }}"
    body = await running.gql.execute(document)
    assert messages(body) == "'Deep' exceeds maximum operation depth of 8"
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_fragment_cycles_are_refused(running: Started) -> None:
    with quick():
        body = await running.gql.execute(
            "query { ...A } fragment A on Query { leaderboards { id } ...B } "
            "fragment B on Query { ...A }"
        )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "Cannot spread fragment 'A' within itself" in messages(body)


async def test_an_exponential_fragment_fan_out_is_refused_at_once(running: Started) -> None:
    # 60 fragments, each spreading the next twice: 2^60 copies of one field, in 800 tokens.
    # (Strawberry's depth and alias limiters walked every copy: the event loop hung.)
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    document = f"{{ ...F0 }} {fragments} fragment F60 on Query {{ leaderboards {{ id }} }}"
    async with running.store_work() as work:
        with quick():
            body = await running.gql.execute(document)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "'leaderboards' is selected 1152921504606846976 times" in messages(body)
    assert work == []


async def test_a_field_repeated_many_times_is_refused_before_validation(running: Started) -> None:
    # graphql-core compares every pair of same-named fields: 495 copies of one field (within the
    # token limit) cost most of a second of CPU to validate before the bound. The message is the
    # bound's own (RequestLimits sets the errors, so Strawberry never validates): no wall-clock
    # bound here, which failed under a loaded machine's scheduling rather than the code.
    body = await running.gql.execute("{ " + "leaderboards { id } " * 495 + "}")
    assert (
        messages(body) == "'leaderboards' is selected 495 times in one selection set. Allowed: 10"
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    # A few repeats are ordinary (fragments of a client overlap) and served.
    data = await running.gql.data("{ " + "leaderboards { id } " * 10 + "}")
    assert len(data["leaderboards"]) == 3


async def test_the_repeat_bound_is_a_setting(start: AppFactory) -> None:
    async with start(max_field_repeats=3) as running:
        assert codes(await running.gql.execute("{ " + "leaderboards { id } " * 4 + "}")) == [
            "BAD_USER_INPUT"
        ]
        data = await running.gql.data("{ " + "leaderboards { id } " * 3 + "}")
        assert len(data["leaderboards"]) == 3


async def test_deeply_nested_documents_and_json_are_refused(running: Started) -> None:
    nested_selection = "{" + "a{" * 900 + "b" + "}" * 901
    nested_list = "{ topPlayers(board: " + "[" * 1500 + "1" + "]" * 1500 + ") { rank } }"
    for document in (nested_selection, nested_list):
        body = await running.gql.execute(document)
        assert codes(body) == ["BAD_USER_INPUT"]
    nested_json = b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 50_000
    nested_json += b"]" * 50_000 + b"}}"
    response = await running.http.post(
        "/graphql", content=nested_json, headers={"content-type": "application/json"}
    )
    refused_json(response, 400)


# HTTP requests


async def test_body_over_the_limit_is_413_with_a_graphql_error(start: AppFactory) -> None:
    async with start(max_body_bytes=4096) as running:
        padding = {"query": "{ __typename }", "variables": {"pad": "x" * 4096}}
        async with running.store_work() as work:
            response = await running.http.post("/graphql", json=padding)
            refused_json(response, 413)

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
                yield b'{"query": "{ __typename }", "variables": {"pad": "'
                for _ in range(10):
                    yield b"x" * 1000
                yield b'"}}'

            response = await running.http.post(
                "/graphql", content=chunks(), headers={"content-type": "application/json"}
            )
            refused_json(response, 413)
        assert work == []
        small = {"query": "{ __typename }", "variables": {"pad": "x" * 3000}}
        response = await running.http.post("/graphql", json=small)
        assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{nope", "application/json"),
        (b'{"query": 1}', "application/json"),
        (b'{"query": "{ __typename }", "variables": []}', "application/json"),
        (b'{"query": "{ __typename }", "extensions": "x"}', "application/json"),
        (b"{}", "application/json"),
        (b'"{ __typename }"', "application/json"),
        (b"{ __typename }", "text/plain"),
        (b"\xff\xfe", "application/json"),
        (b'{"query": "{ __typename }", "operationName": 5}', "application/json"),
        (b'{"query": "query A { __typename }", "operationName": "Z"}', "application/json"),
    ],
    ids=[
        "bad JSON",
        "query not a string",
        "variables not an object",
        "extensions not an object",
        "no query",
        "a bare string",
        "text/plain",
        "not UTF-8",
        "operation name not a string",
        "unknown operation name",
    ],
)
async def test_malformed_requests_get_a_coded_graphql_error(
    running: Started, content: bytes, content_type: str
) -> None:
    response = await running.http.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )
    assert response.status_code < 500
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert codes(response.json()) == ["BAD_USER_INPUT"], response.text


async def test_a_batch_is_refused(running: Started) -> None:
    batch = [{"query": "{ __typename }"}, {"query": "{ leaderboards { id } }"}]
    refused_json(await running.http.post("/graphql", json=batch), 400)


async def test_increments_over_the_batch_maximum_are_refused(start: AppFactory) -> None:
    document = "mutation($i: [ScoreIncrement!]!) { incrementScores(increments: $i) { rank } }"
    async with start(max_batch_increments=5) as running:
        six = [{"username": f"p{index}", "delta": 1} for index in range(6)]
        async with running.store_work() as work:
            body = await running.gql.execute(document, {"i": six})
        assert codes(body) == ["BAD_USER_INPUT"]
        assert "1..5" in messages(body)
        assert work == []
        data = await running.gql.data(document, {"i": six[:5]})
        assert len(data["incrementScores"]) == 5


async def test_get_serves_queries_but_refuses_mutations(running: Started) -> None:
    response = await running.http.get("/graphql", params={"query": "{ leaderboards { id } }"})
    assert response.status_code == 200
    assert len(response.json()["data"]["leaderboards"]) == 3
    mutation = 'mutation { incrementScore(username: "ana", delta: 5) { score } }'
    async with running.store_work() as work:
        response = await running.http.get(
            "/graphql", params={"query": mutation}, headers={"X-Internal-Token": TOKEN}
        )
    body = refused_json(response, 400)
    assert "mutations are not allowed when using GET" in messages(body)
    assert work == []
    assert await running.gql.data('{ player(username: "ana") { score } }') == {"player": None}


async def test_other_methods_are_refused(running: Started) -> None:
    response = await running.http.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405


# Introspection and GraphiQL


async def test_introspection_and_graphiql_are_served_by_default(running: Started) -> None:
    data = await running.gql.data("{ __schema { queryType { name } } }")
    assert data["__schema"]["queryType"]["name"] == "Query"
    page = await running.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_introspection_off_refuses_introspection_and_graphiql(start: AppFactory) -> None:
    async with start(introspection=False) as running:
        for document in (
            "{ __schema { queryType { name } } }",
            '{ __type(name: "Query") { name } }',
            "{ leaderboards { id } __schema { types { name } } }",
        ):
            body = await running.gql.execute(document)
            assert set(codes(body)) == {"BAD_USER_INPUT"}, document
            assert "introspection" in messages(body).lower()
        # __typename is not introspection: clients (Apollo) add it everywhere.
        assert await running.gql.data("{ __typename }") == {"__typename": "Query"}
        page = await running.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code in (400, 404)
        assert "graphiql" not in page.text.lower()
        assert page.headers["content-type"].startswith("application/json")


# CORS


async def test_cors_is_off_by_default(running: Started) -> None:
    response = await running.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": GAME}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = await running.http.options(
        "/graphql",
        headers={"origin": GAME, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code < 500


async def test_cors_allows_the_configured_origin_only(start: AppFactory) -> None:
    async with start(cors_origins=(GAME,)) as running:
        preflight_headers = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-internal-token",
        }
        allowed = await running.http.options(
            "/graphql", headers={"origin": GAME, **preflight_headers}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == GAME
        assert "x-internal-token" in allowed.headers["access-control-allow-headers"].lower()
        refused = await running.http.options(
            "/graphql", headers={"origin": EVIL, **preflight_headers}
        )
        assert "access-control-allow-origin" not in refused.headers
        assert refused.status_code == 400
        query = {"query": "{ __typename }"}
        simple = await running.http.post("/graphql", json=query, headers={"origin": GAME})
        assert simple.headers["access-control-allow-origin"] == GAME
        other = await running.http.post("/graphql", json=query, headers={"origin": EVIL})
        assert "access-control-allow-origin" not in other.headers


# WebSocket


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_subscriptions_per_connection_are_bounded(running: Started, protocol: str) -> None:
    top = "subscription { topPlayersChanged(limit: 3) { username } }"
    async with websocket(running.app, protocol) as connection:
        for _ in range(20):
            await connection.start(top)
            assert (await connection.next())["data"]["topPlayersChanged"] == []
        await connection.start(top)
        refused = await connection.next()
        assert "limit" in messages(refused).lower(), refused
        assert codes(refused) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_subscription_documents_are_bounded_too(running: Started, protocol: str) -> None:
    aliased = (
        "subscription { "
        + " ".join(f"t{i}: topPlayersChanged(limit: 1) {{ username }}" for i in range(31))
        + " }"
    )
    fragments = " ".join(
        f"fragment F{i} on Subscription {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60)
    )
    last = "fragment F60 on Subscription { topPlayersChanged { rank } }"
    bomb = f"subscription {{ ...F0 }} {fragments} {last}"
    deep = "subscription { " + "a{" * 900 + "}" * 900 + " }"
    async with websocket(running.app, protocol) as connection:
        for document in (aliased, bomb):
            await connection.start(document)
            with quick():
                refused = await connection.next()
            assert codes(refused) == ["BAD_USER_INPUT"], refused
        # The connection is still usable.
        await connection.start("subscription { topPlayersChanged(limit: 3) { username } }")
        assert (await connection.next())["data"]["topPlayersChanged"] == []
        # A document that does not even parse: graphql-transport-ws closes the connection
        # (4400, as the protocol says); the legacy protocol answers with an error.
        await connection.start(deep)
        if protocol == TRANSPORT_WS:
            with pytest.raises(WebSocketDisconnect) as closed:
                await connection.next()
            assert closed.value.code == 4400
            assert "nested too deeply" in str(closed.value.reason)
        else:
            refused = await connection.next()
            assert codes(refused) == ["BAD_USER_INPUT"], refused
            assert "nested too deeply" in messages(refused)


async def handshake_refused(app: Starlette, headers: dict[str, str]) -> bool:
    refused = False
    try:
        async with websocket(app, TRANSPORT_WS, headers):
            pass
    except* (WebSocketDisconnect, WebSocketUpgradeError):
        refused = True
    return refused


async def test_websocket_origins_follow_the_cors_setting(start: AppFactory) -> None:
    async with start(cors_origins=(GAME,)) as running:
        async with websocket(running.app, TRANSPORT_WS, {"origin": GAME}) as connection:
            await connection.start("subscription { topPlayersChanged(limit: 1) { rank } }")
            assert (await connection.next())["data"]["topPlayersChanged"] == []
        assert await handshake_refused(running.app, {"origin": EVIL})
    async with start() as running:
        # Off by default: pages of other origins cannot subscribe; non-browser clients
        # (no Origin) and same-origin pages can.
        assert await handshake_refused(running.app, {"origin": GAME})
        assert not await handshake_refused(running.app, {})
        assert not await handshake_refused(running.app, {"origin": "http://testserver"})


async def test_websocket_connections_per_instance_are_bounded(start: AppFactory) -> None:
    async with start(max_websocket_connections=2) as running:
        async with (
            websocket(running.app, TRANSPORT_WS) as first,
            websocket(running.app, LEGACY_WS) as second,
        ):
            assert await refusal_code(running.app) == 1013  # "try again later"
            for connection in (first, second):  # the open ones still work
                await connection.start("subscription { topPlayersChanged(limit: 1) { rank } }")
                assert (await connection.next())["data"]["topPlayersChanged"] == []
        # Room again once they closed.
        async with websocket(running.app, TRANSPORT_WS) as third:
            await third.start("subscription { topPlayersChanged(limit: 1) { rank } }")
            assert (await third.next())["data"]["topPlayersChanged"] == []


# Player operations (#14): name lists, cursors, profiles


PLAYERS_OVER = [
    ("players", {"usernames": [f"p{index}" for index in range(101)]}),
    ("players", {"usernames": ["ana", "x" * 200_000]}),
    ("players", {"usernames": ["ana"] * 100}),
    ("ranking", {"after": "A" * 200_000}),
    ("ranking", {"first": 101}),
    ("ranking", {"first": 2**31 - 1}),
]


@pytest.mark.parametrize(("field", "variables"), PLAYERS_OVER, ids=lambda value: str(value)[:30])
async def test_player_reads_over_their_bounds_are_refused_before_the_stores(
    running: Started, field: str, variables: dict[str, Any]
) -> None:
    document = {
        "players": "query($usernames: [String!]!) { players(usernames: $usernames) { rank } }",
        "ranking": "query($first: Int! = 10, $after: String) "
        "{ ranking(first: $first, after: $after) { totalCount } }",
    }[field]
    async with running.store_work() as work:
        body = await running.gql.execute(document, variables)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert work == []


SET_PROFILE = """
mutation($username: String!, $displayName: String, $metadata: JSON) {
  setPlayerProfile(username: $username, displayName: $displayName, metadata: $metadata)
}"""


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "fields",
    [
        {"displayName": "x" * 200_000},
        {"metadata": {"blob": "x" * 200_000}},
        {"metadata": {f"k{index}": index for index in range(20_000)}},
        {"metadata": nested(900)},
        {"metadata": [nested(3)] * 10_000},
    ],
    ids=["200 KB name", "200 KB metadata", "20,000 keys", "900 deep", "10,000 items"],
)
async def test_oversized_profiles_are_refused_and_change_nothing(
    running: Started, fields: dict[str, Any]
) -> None:
    await running.gql.data(SET_PROFILE, {"username": "ana", "displayName": "Ana"})
    async with running.store_work() as work:
        body = await running.gql.execute(SET_PROFILE, {"username": "ana", **fields})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert work == []
    await running.gql.data('mutation { incrementScore(username: "ana", delta: 1) { rank } }')
    shown = await running.gql.data('{ player(username: "ana") { displayName metadata } }')
    assert shown == {"player": {"displayName": "Ana", "metadata": None}}
