"""The `leaderboard` command: migrate, rebuild, export-schema, help and its errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from schema.build import SDL_PATH
from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.boards import Board, ResetPeriod, parse_boards
from store.redis import RedisRankingStore
from tests.support.cli import INCREMENTS, leaderboard
from tests.support.graphql_client import GraphQLHttp
from tests.support.history_database import history_totals
from tests.support.service_fixtures import BOARDS, TOKEN, ProcessFactory
from tests.support.shared_services import REDIS_URL, delete_prefix

pytestmark = pytest.mark.integration


async def test_help_lists_every_command() -> None:
    code, output = await leaderboard({}, "--help")
    assert code == 0
    for command in ("serve", "migrate", "rebuild", "archive", "export-schema"):
        assert command in output


async def test_migrate_creates_the_history_and_is_idempotent(mysql_database_url: str) -> None:
    environment = {"LEADERBOARD_DATABASE_URL": mysql_database_url}
    for _ in range(2):
        code, output = await leaderboard(environment, "migrate")
        assert code == 0, output
    assert await history_totals(mysql_database_url) == {}


async def test_rebuild_restores_a_board_from_mysql(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    process = service_process(redis_mysql_environment)
    await process.start()
    async with httpx.AsyncClient(base_url=process.url) as client:
        increments = [{"username": f"p{index}", "delta": index + 1} for index in range(40)]
        await GraphQLHttp(client, token=TOKEN).data(INCREMENTS, {"increments": increments})
    assert await process.terminate()
    prefix = redis_mysql_environment["LEADERBOARD_KEY_PREFIX"]
    await delete_prefix(prefix)

    code, output = await leaderboard(redis_mysql_environment, "rebuild", "--board", "global")
    assert code == 0, output
    assert "40 players" in output
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=prefix, boards=parse_boards(BOARDS), retention=timedelta(days=1)
    )
    try:
        board = parse_boards(BOARDS)[0]
        totals = await store.totals("global", board.current_period())
        assert totals == {f"p{index}": index + 1 for index in range(40)}
        alltime_loaded = await store.is_loaded("alltime", "all")
        assert not alltime_loaded  # only the board asked for
    finally:
        await store.close()


async def test_rebuild_refuses_unknown_boards_and_periods(
    redis_mysql_environment: dict[str, str],
) -> None:
    code, output = await leaderboard(redis_mysql_environment, "rebuild", "--board", "nope")
    assert code == 2
    assert "unknown board" in output
    code, output = await leaderboard(
        redis_mysql_environment, "rebuild", "--board", "global", "--period", "2026-W01"
    )
    assert code == 2
    assert "not a period" in output


CREATE_LAPS = """
mutation {
  createLeaderboard(input: {
    id: "laps", reset: WEEKLY, timeZone: "America/New_York"
    updateRule: BEST, sortOrder: ASC, tieBreak: EARLIEST
  }) { id currentPeriod }
}"""
SET_LAP = """
mutation($username: String!, $score: Long!) {
  setScore(username: $username, score: $score, board: "laps") { score rank }
}"""


async def test_rebuild_and_reconcile_serve_a_board_created_at_run_time(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    admin = "cli-admin-token"
    environment = redis_mysql_environment | {"LEADERBOARD_ADMIN_TOKEN": admin}
    process = service_process(environment)
    await process.start()
    async with httpx.AsyncClient(base_url=process.url) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        created = await gql.data(CREATE_LAPS, token=admin)
        period = created["createLeaderboard"]["currentPeriod"]
        for username, lap in (("ana", 61250), ("bo", 59875), ("cy", 61250), ("ana", 70000)):
            await gql.data(SET_LAP, {"username": username, "score": lap})
    assert await process.terminate()
    prefix = environment["LEADERBOARD_KEY_PREFIX"]
    await delete_prefix(prefix)

    code, output = await leaderboard(environment, "rebuild", "--board", "laps")
    assert code == 0, output
    assert f"rebuilt laps/{period} from the history: 3 players" in output
    laps = Board(
        "laps",
        ResetPeriod.WEEKLY,
        time_zone="America/New_York",
        update_rule=UpdateRule.BEST,
        sort_order=SortOrder.ASC,
        tie_break=TieBreak.EARLIEST,
    )
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=prefix, boards=[laps], retention=timedelta(days=1)
    )
    try:
        # Fastest first, equal laps by who set them first: the instants came from MariaDB.
        top = await store.top("laps", period, 10, 0)
        assert [(p.username, p.score, p.rank) for p in top] == [
            ("bo", 59875, 1),
            ("ana", 61250, 2),
            ("cy", 61250, 3),
        ]
    finally:
        await store.close()
    # reconcile, every board: the runtime one included, nothing to correct.
    code, output = await leaderboard(environment, "reconcile")
    assert code == 0, output
    assert f"laps/{period}: 0 players corrected" in output
    code, output = await leaderboard(environment, "rebuild", "--board", "nope")
    assert code == 2
    assert "unknown board nope" in output
    assert "laps" in output  # the known boards listed include it


async def test_export_schema_writes_the_live_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    code, output = await leaderboard({}, "export-schema", "--output", str(target))
    assert code == 0, output
    assert target.read_text() == SDL_PATH.read_text()
