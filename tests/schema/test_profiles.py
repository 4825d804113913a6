"""Player profiles over HTTP on both backends (#14): setPlayerProfile's rules, clearing,
display names and metadata on every kind of answer, one fetch per answer."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from tests.support.asgi_app import subscription_to
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp
from tests.support.operations import score

pytestmark = pytest.mark.integration

SET = """
mutation($username: String!, $displayName: String, $metadata: JSON) {
  setPlayerProfile(username: $username, displayName: $displayName, metadata: $metadata)
}"""

TOP = "{ topPlayers { username displayName metadata } }"


async def set_profile(gql: GraphQLHttp, username: str, **fields: Any) -> None:
    data = await gql.data(SET, {"username": username, **fields})
    assert data == {"setPlayerProfile": True}


async def shown(gql: GraphQLHttp) -> dict[str, tuple[Any, Any]]:
    data = await gql.data(TOP)
    return {row["username"]: (row["displayName"], row["metadata"]) for row in data["topPlayers"]}


async def test_set_clear_and_leave_each_field(gql: GraphQLHttp) -> None:
    await score(gql, "ana", 5)
    await score(gql, "bo", 3)
    assert await shown(gql) == {"ana": (None, None), "bo": (None, None)}
    await set_profile(gql, "ana", displayName="Ana ⚔️", metadata={"country": "FR", "lvl": 3})
    assert await shown(gql) == {
        "ana": ("Ana ⚔️", {"country": "FR", "lvl": 3}),
        "bo": (None, None),
    }
    await set_profile(gql, "ana", displayName="Ana the Great")  # metadata left as it is
    assert (await shown(gql))["ana"] == ("Ana the Great", {"country": "FR", "lvl": 3})
    await set_profile(gql, "ana", metadata={})  # cleared; the name left
    assert (await shown(gql))["ana"] == ("Ana the Great", None)
    await set_profile(gql, "ana", displayName="")
    assert (await shown(gql))["ana"] == (None, None)
    await set_profile(gql, "nobody-yet", displayName="Later")  # a profile before any score
    await score(gql, "nobody-yet", 1)
    assert (await shown(gql))["nobody-yet"] == ("Later", None)


async def test_profiles_show_on_every_read(gql: GraphQLHttp) -> None:
    for name, delta in [("ana", 9), ("bo", 5), ("cy", 1)]:
        await score(gql, name, delta)
    await set_profile(gql, "bo", displayName="Bo", metadata={"a": [1, {"b": None}]})
    fields = "username displayName metadata"
    documents = {
        "player": f'{{ player(username: "bo") {{ {fields} }} }}',
        "neighborhood": f'{{ neighborhood(username: "bo", radius: 0) {{ {fields} }} }}',
        "players": f'{{ players(usernames: ["bo"]) {{ {fields} }} }}',
        "ranking": f"{{ ranking(first: 2) {{ edges {{ node {{ {fields} }} }} }} }}",
    }
    bo = {"username": "bo", "displayName": "Bo", "metadata": {"a": [1, {"b": None}]}}
    assert (await gql.data(documents["player"]))["player"] == bo
    assert (await gql.data(documents["neighborhood"]))["neighborhood"] == [bo]
    assert (await gql.data(documents["players"]))["players"] == [bo]
    edges = (await gql.data(documents["ranking"]))["ranking"]["edges"]
    assert [edge["node"] for edge in edges][1] == bo
    fragment = (
        "{ topPlayers { ...P } } fragment P on RankedPlayer { username ... on RankedPlayer "
        "{ displayName } }"
    )
    rows = (await gql.data(fragment))["topPlayers"]
    assert rows[1] == {"username": "bo", "displayName": "Bo"}


async def test_a_write_token_is_needed(gql: GraphQLHttp) -> None:
    anonymous = GraphQLHttp(gql.client)
    codes = await anonymous.error_codes(SET, {"username": "ana", "displayName": "x"})
    assert codes == ["UNAUTHENTICATED"]
    codes = await gql.error_codes(SET, {"username": "ana", "displayName": "x"}, token="wrong")
    assert codes == ["UNAUTHENTICATED"]


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"in": value}
    return value


@pytest.mark.parametrize(
    "fields",
    [
        {"displayName": "x" * 65},
        {"displayName": "tab\there"},
        {"displayName": "new\nline"},
        {"displayName": "nul\x00"},
        {"displayName": "evil\u202ename"},  # right-to-left override
        {"displayName": "iso\u2066late"},
        {"displayName": "   "},
        {"displayName": "\u200b"},  # zero-width space: nothing to see
        {"metadata": [1, 2]},
        {"metadata": "text"},
        {"metadata": 5},
        {"metadata": {"blob": "x" * 1020}},
        {"metadata": deep(5)},
        {"metadata": {"a": [[[[1]]]]}},
    ],
    ids=lambda fields: repr(fields)[:50],
)
async def test_bad_profiles_are_refused_and_change_nothing(
    gql: GraphQLHttp, fields: dict[str, Any]
) -> None:
    await score(gql, "ana", 1)
    await set_profile(gql, "ana", displayName="Ana", metadata={"k": "v"})
    codes = await gql.error_codes(SET, {"username": "ana", **fields})
    assert codes == ["BAD_USER_INPUT"]
    assert (await shown(gql))["ana"] == ("Ana", {"k": "v"})


@pytest.mark.parametrize(
    "fields",
    [
        {"displayName": "x" * 64},
        {"displayName": "👨\u200d👩\u200d👧 family"},
        {"displayName": "<script>alert(1)</script>"},
        {"metadata": deep(4)},
        {"metadata": {"a": [[[1]]]}},
        {"metadata": {"blob": "x" * 1000}},
    ],
    ids=lambda fields: repr(fields)[:50],
)
async def test_profiles_at_the_limits_are_kept(gql: GraphQLHttp, fields: dict[str, Any]) -> None:
    await score(gql, "ana", 1)
    await set_profile(gql, "ana", **fields)
    name, metadata = (await shown(gql))["ana"]
    assert name == fields.get("displayName")
    assert metadata == fields.get("metadata")


async def test_bad_usernames_are_refused(gql: GraphQLHttp) -> None:
    for username in ["", "a b", "x" * 65]:
        codes = await gql.error_codes(SET, {"username": username, "displayName": "x"})
        assert codes == ["BAD_USER_INPUT"]


async def test_reads_without_profile_fields_fetch_no_profile(
    app: Starlette, gql: GraphQLHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    await score(gql, "ana", 1)
    service = app.state.resources.service
    calls: list[list[str]] = []
    fetch = service.profiles

    async def counted(usernames: list[str]) -> Any:
        calls.append(list(usernames))
        return await fetch(usernames)

    monkeypatch.setattr(service, "profiles", counted)
    await gql.data("{ topPlayers { username rank } }")
    await gql.data("{ ranking { edges { node { username } } } }")
    assert calls == []
    await gql.data("{ topPlayers(limit: 100) { displayName } }")
    assert calls == [["ana"]]  # one fetch for the whole answer


RANK_NAMED = """
subscription($username: String!) {
  rankChanged(username: $username) { username rank displayName }
}"""
TOP_NAMED = """
subscription { topPlayersChanged(limit: 3) { username displayName metadata topPercent } }"""


async def test_subscriptions_show_display_names(gql: GraphQLHttp, app: Starlette) -> None:
    await score(gql, "ana", 10)
    await score(gql, "bo", 5)
    await set_profile(gql, "bo", displayName="Bo <b>", metadata={"flag": "🇫🇷"})
    async with (
        subscription_to(app, TRANSPORT_WS) as ranks,
        subscription_to(app, TRANSPORT_WS) as tops,
    ):
        await ranks.start(RANK_NAMED, {"username": "ana"})
        first = (await ranks.next())["data"]["rankChanged"]
        assert first == {"username": "ana", "rank": 1, "displayName": "ana"}  # the fallback
        await tops.start(TOP_NAMED)
        top = (await tops.next())["data"]["topPlayersChanged"]
        assert top == [
            {"username": "ana", "displayName": None, "metadata": None, "topPercent": 50.0},
            {
                "username": "bo",
                "displayName": "Bo <b>",
                "metadata": {"flag": "🇫🇷"},
                "topPercent": 100.0,
            },
        ]
        await set_profile(gql, "ana", displayName="Ana")
        await score(gql, "bo", 10)  # bo passes ana
        passed = (await ranks.next())["data"]["rankChanged"]
        assert passed == {"username": "ana", "rank": 2, "displayName": "Ana"}
        top = (await tops.next())["data"]["topPlayersChanged"]
        assert [(row["username"], row["displayName"]) for row in top] == [
            ("bo", "Bo <b>"),
            ("ana", "Ana"),
        ]
