"""`leaderboard --help` for every command, and the repair commands' progress bars."""

from __future__ import annotations

import re

import pytest

from store.boards import parse_boards
from store.models import ScoreEvent
from store.sql import SqlScoreHistory
from tests.support.cli import leaderboard
from tests.support.service_fixtures import BOARDS

pytestmark = pytest.mark.integration

COMMANDS = {
    "serve": ["--host", "--port", "--workers", "--access-log"],
    "migrate": [],
    "rebuild": ["--board", "--period"],
    "reconcile": ["--board", "--period"],
    "export-schema": ["--output"],
}
# What makes rich draw on a pipe as on a terminal.
TERMINAL = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
PERIOD = parse_boards(BOARDS)[0].current_period()
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


async def test_help_explains_every_command_and_option() -> None:
    code, output = await leaderboard({}, "--help")
    assert code == 0
    for command in COMMANDS:
        assert f"\n    {command}" in output, output
    assert "LEADERBOARD_REDIS_URL" in output
    for command, options in COMMANDS.items():
        code, output = await leaderboard({}, command, "--help")
        assert code == 0, output
        # A description paragraph between the usage and the options.
        usage, description = output.split("\n\n")[:2]
        assert usage.startswith(f"usage: leaderboard {command}")
        assert len(description.split()) >= 10, output
        for option in options:
            (line,) = [line for line in output.splitlines() if line.strip().startswith(option)]
            help_text = line.split(maxsplit=2)[-1]
            assert len(help_text.split()) >= 3 or "\n" in output, line


@pytest.fixture
async def history_with_players(
    redis_mysql_environment: dict[str, str],
) -> dict[str, str]:
    """The environment of a MySQL history holding 30 players of `global`, Redis empty."""
    history = SqlScoreHistory(redis_mysql_environment["LEADERBOARD_DATABASE_URL"])
    await history.connect()
    try:
        await history.migrate()
        await history.append(
            [
                ScoreEvent(
                    board="global",
                    period=PERIOD,
                    username=f"p{index}",
                    delta=index + 1,
                    event_id=f"~{index:032x}",
                    client_event_id=False,
                    created_at_ms=0,
                )
                for index in range(30)
            ]
        )
    finally:
        await history.close()
    return redis_mysql_environment


async def test_rebuild_shows_its_steps_on_a_terminal(history_with_players: dict[str, str]) -> None:
    code, output = await leaderboard(
        history_with_players | TERMINAL, "rebuild", "--board", "global"
    )
    assert code == 0, output
    assert f"global/{PERIOD}: 30 players loaded" in output
    assert "4/4" in output
    assert output.rstrip().endswith(f"rebuilt global/{PERIOD} from the history: 30 players")


async def test_reconcile_shows_a_bar_per_board_and_one_over_all(
    history_with_players: dict[str, str],
) -> None:
    code, output = await leaderboard(history_with_players | TERMINAL, "reconcile")
    assert code == 0, output
    assert f"global/{PERIOD}: 30 players loaded" in output
    assert "alltime/all: 0 players loaded" in output
    assert "boards" in output
    assert "2/2" in output
    assert "leaderboard: reconcile done, 30 players corrected" in output


async def test_no_progress_bar_when_not_on_a_terminal(history_with_players: dict[str, str]) -> None:
    code, output = await leaderboard(history_with_players, "reconcile")
    assert code == 0, output
    assert "\x1b" not in output
    results = [line for line in output.splitlines() if not LOG_LINE.match(line)]
    drifts = [
        f"global/{PERIOD}: p{index}: live None -> history {index + 1}"
        for index in sorted(range(30), key=lambda index: f"p{index}")
    ]
    assert results == [
        *drifts,
        f"leaderboard: global/{PERIOD}: 30 players corrected",
        "leaderboard: alltime/all: 0 players corrected",
        "leaderboard: reconcile done, 30 players corrected",
    ]


async def test_an_unreachable_store_is_an_error_line_not_a_traceback(
    redis_mysql_environment: dict[str, str],
) -> None:
    environment = redis_mysql_environment | {
        "LEADERBOARD_DATABASE_URL": "mysql+aiomysql://root@127.0.0.1:1/nothing"
    }
    code, output = await leaderboard(environment, "rebuild", "--board", "global")
    assert code == 1
    assert output.startswith("error: history database unreachable"), output
    assert "Traceback" not in output
