"""Seasons on every kind of board (#13 x #12): a period of every update rule x sort order x
tie-break is frozen following the board's rule, order and tie-break, its `PeriodResult`
and every past read (topPlayers, player, neighborhood, players, ranking pages, playerCount)
equal the plain model's, from the frozen standings alone; removals and bans are honoured by
the fold. On Redis + MariaDB, on a Redis Cluster with every kind sharded, and on the
embedded default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resolvers.service import IncrementRequest, LeaderboardService
from server.resources import Resources
from store.board_kinds import UpdateRule
from store.board_model import BoardSpec
from store.boards import Board, ResetPeriod
from store.models import RankedPlayer
from tests.support.board_model import KINDS, PeriodModel, kind_id
from tests.support.seasons import (
    SharedClock,
    backend_fixture,
    delete_cluster_keys,
    delete_period_events,
    instance,
    season_settings,
    until,
    utc,
)
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration

DAY = "2026-12-05"
NAMES = ("a", "Bob", "bob", "é", "z")
# Ties are the rule: equal values, a better one, a worse one, a repeat of the kept one.
VALUES = (3, 5, 3, 7, 5, 1, 3, 9, 5, 3, -2, 7, 3, 5, 1)


backend = backend_fixture()
"""Each backend (the cluster's boards are sharded below)."""


def specs(sharded: bool) -> list[BoardSpec]:
    """A daily board of every kind; on a cluster each spread over 4 shards."""
    return [
        BoardSpec(
            id=kind_id(rule, order, tie),
            reset=ResetPeriod.DAILY,
            update_rule=rule,
            sort_order=order,
            tie_break=tie,
            shards=4 if sharded else 1,
        )
        for rule, order, tie in KINDS
    ]


async def write_everything(
    service: LeaderboardService, boards: list[Board]
) -> dict[str, PeriodModel]:
    """The same tie-rich writes on every board, each answer's instant kept in the model."""
    models = {board.id: PeriodModel(board) for board in boards}
    for index, value in enumerate(VALUES):
        name = NAMES[(index * 3) % len(NAMES)]
        for board in boards:
            if board.update_rule is UpdateRule.INCREMENT:
                [outcome] = await service.increment([IncrementRequest(name, value, board.id, None)])
            else:
                outcome = await service.set_score(name, value, board.id, None)
            score, _ = models[board.id].write(name, value, outcome.instant)
            assert outcome.score == score, board.id
    return models


async def compare(service: LeaderboardService, board: Board, want: list[RankedPlayer]) -> None:
    """Every past read of the period against the model's standings."""
    where = board.id
    assert await service.top(board.id, DAY, 100) == want, where
    assert await service.top(board.id, DAY, 2, offset=1) == want[1:3], where
    assert await service.player_count(board.id, DAY) == len(want), where
    for position, player in enumerate(want):
        found = await service.player(board.id, DAY, player.username)
        assert found == player, where
        assert found is not None
        assert found.top_percent == 100 * player.rank / len(want)
        around = await service.neighborhood(board.id, DAY, player.username, 1)
        assert around == want[max(0, position - 1) : position + 2], where
    assert await service.neighborhood(board.id, DAY, want[0].username, 1, True) == want[:3]
    assert await service.neighborhood(board.id, DAY, want[-1].username, 1, True) == want[-3:]
    assert await service.player(board.id, DAY, "nobody") is None
    assert await service.players(board.id, DAY, [*NAMES, "nobody"]) == sorted(
        want, key=lambda player: (player.rank, player.username)
    ), where
    pages: list[RankedPlayer] = []
    after: str | None = None
    while True:
        page = await service.ranking(board.id, DAY, 2, after)
        assert page.total == len(want)
        pages += page.players
        if not page.has_next:
            break
        after = page.cursors[-1]
    assert pages == want, where


async def test_every_kind_of_board_is_frozen_by_its_rule_order_and_tie_break(
    backend: dict[str, Any],
) -> None:
    clock = SharedClock(utc(f"{DAY}T20:00:00"))
    settings = season_settings(**backend)
    sharded = bool(backend.get("redis_cluster"))
    cursors: dict[str, tuple[str, list[RankedPlayer]]] = {}
    async with instance(settings, clock) as resources:
        for spec in specs(sharded):
            await resources.registry.create(spec, max_boards=100)
        boards = [resources.service.board(spec.id) for spec in specs(sharded)]
        models = await write_everything(resources.service, boards)
        for board in boards:
            # A cursor of the live period, to page on once it is final.
            page = await resources.service.ranking(board.id, DAY, 2, None)
            cursors[board.id] = (page.cursors[-1], models[board.id].standings()[2:4])
        clock.set(utc("2026-12-06T00:00:01"))
        await until(all_final(resources, boards), timeout=60, what="every board's result")
        for board in boards:
            want = models[board.id].standings()
            assert resources.seasons is not None
            result = await resources.seasons._standings.result(board.id, DAY)
            assert result is not None
            assert result.player_count == len(want), board.id
            assert [(p.username, p.score, p.rank) for p in result.top] == [
                (p.username, p.score, p.rank) for p in want
            ], board.id
    await forget_the_period(settings, backend)
    # A new instance, without the period's events or live keys: only the frozen standings.
    async with instance(settings, clock) as resources:
        for board in boards:
            want = models[board.id].standings()
            await compare(resources.service, board, want)
            cursor, following = cursors[board.id]
            page = await resources.service.ranking(board.id, DAY, 2, cursor)
            assert list(page.players) == following, board.id


def all_final(resources: Resources, boards: list[Board]) -> Callable[[], Awaitable[bool]]:
    """Whether every board's period has its stored result."""

    async def check() -> bool:
        assert resources.seasons is not None
        for board in boards:
            if await resources.seasons._standings.result(board.id, DAY) is None:
                return False
        return True

    return check


async def forget_the_period(settings: Any, backend: dict[str, Any]) -> None:
    """Move the period's raw events out of the history and drop every live key."""
    await delete_period_events(settings.history_url, DAY)
    if backend.get("redis_cluster"):
        await delete_cluster_keys(backend["redis_url"], backend["key_prefix"])
    elif "key_prefix" in backend:
        await delete_prefix(backend["key_prefix"])


async def test_removals_and_bans_are_honoured_by_the_fold(backend: dict[str, Any]) -> None:
    clock = SharedClock(utc(f"{DAY}T20:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": "daily:daily"} | backend))
    async with instance(settings, clock) as resources:
        service, moderation = resources.service, resources.moderation
        assert moderation is not None
        for name, delta in (("ana", 10), ("bob", 5), ("cy", 7), ("dee", 8)):
            await service.increment([IncrementRequest(name, delta, "daily", None)])
        await moderation.remove("bob", "daily", None)  # gone: removed, never back
        await moderation.remove("cy", "daily", None)
        await service.increment([IncrementRequest("cy", 2, "daily", None)])  # back, afresh
        await moderation.ban("dee", None)  # hidden from the period
        live = await service.top("daily", DAY, 10)
        assert [(p.username, p.score) for p in live] == [("ana", 10), ("cy", 2)]
        clock.set(utc("2026-12-06T00:00:01"))
        board = service.board("daily")
        await until(all_final(resources, [board]), timeout=60, what="the result")
        assert await service.top("daily", DAY, 10) == live
        assert await service.player("daily", DAY, "bob") is None
        assert await service.player("daily", DAY, "dee") is None
        assert await service.player_count("daily", DAY) == 2
