"""An eventId is an idempotency key bound to one increment (issue 17 I): a replay answers
with the player's real standing; the same id for another player or delta is refused with
BAD_USER_INPUT and changes nothing, on an unsharded and on a sharded board alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.asgi_app import BOARDS
from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import INCREMENT, top

pytestmark = pytest.mark.integration

# ann, bob, eve and ivy land in four different shards of "spread" (CRC-32 mod 4).
OTHER_PLAYERS = ("bob", "eve", "ivy")


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """The usual boards and one spread over four shards."""
    return {"LEADERBOARD_BOARDS": f"{BOARDS},spread:monthly:shards=4"}


@pytest.mark.parametrize("board", ["global", "spread"])
async def test_an_event_id_reused_for_another_increment_is_refused(
    gql: GraphQLHttp, board: str
) -> None:
    first = await gql.data(
        INCREMENT, {"username": "ann", "delta": 5, "eventId": "same-id", "board": board}
    )
    assert first["incrementScore"]["applied"] is True
    reuses = [{"username": name, "delta": 5} for name in OTHER_PLAYERS]
    reuses.append({"username": "ann", "delta": 6})
    for reuse in reuses:
        variables = reuse | {"eventId": "same-id", "board": board}
        body = await gql.execute(INCREMENT, variables)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"] == "eventId already used for a different increment"
        # In a batch, the whole batch is refused.
        batch = (
            f'{{username: "zoe", delta: 1, board: "{board}"}}, '
            f'{{username: "{reuse["username"]}", delta: {reuse["delta"]}, board: "{board}", '
            'eventId: "same-id"}'
        )
        assert await gql.error_codes(
            f"mutation {{ incrementScores(increments: [{batch}]) {{ applied }} }}"
        ) == ["BAD_USER_INPUT"]
    assert await top(gql, board=board) == [("ann", 5, 1)]

    # The same increment again is a replay: not applied, ann's real standing.
    replay = await gql.data(
        INCREMENT, {"username": "ann", "delta": 5, "eventId": "same-id", "board": board}
    )
    assert {key: replay["incrementScore"][key] for key in ("score", "rank", "applied")} == {
        "score": 5,
        "rank": 1,
        "applied": False,
    }
    assert await top(gql, board=board) == [("ann", 5, 1)]
