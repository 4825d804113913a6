"""Moderation in the history: removal rows and presence in the rebuild's totals, bans, a
player's periods and erasure; on the real shared MariaDB and on SQLite."""

from __future__ import annotations

import pytest

from store.models import ScoreEvent
from store.sql import SqlScoreHistory
from store.sql.players import BanRecord, ErasedRows, PlayerPeriod
from tests.support.history_database import (
    history_epoch,
    query_history,
    registered_players,
    unregistered_rows,
)

pytestmark = pytest.mark.integration

BOARD = "global"
PERIOD = "2026-11"


_ids = iter(range(1_000_000))


def event(
    username: str,
    delta: int,
    presence: int = 0,
    *,
    period: str = PERIOD,
    event_id: str | None = None,
) -> ScoreEvent:
    """A score event (presence +1: it gave the player a score), generated id by default."""
    return ScoreEvent(
        board=BOARD,
        period=period,
        username=username,
        delta=delta,
        event_id=event_id or f"~{next(_ids)}",
        client_event_id=event_id is not None,
        created_at_ms=1_790_000_000_000,
        presence=presence,
    )


def removal(username: str, total: int) -> ScoreEvent:
    """The row a removal of a player with `total` writes."""
    return ScoreEvent(
        board=BOARD,
        period=PERIOD,
        username=username,
        delta=-total,
        event_id=f"!{next(_ids)}",
        client_event_id=False,
        created_at_ms=1_790_000_000_000,
        presence=-1,
    )


async def totals(history: SqlScoreHistory) -> dict[str, int]:
    return dict(await history.totals(BOARD, PERIOD))


async def test_a_removed_player_is_left_out_until_it_scores_again(
    history: SqlScoreHistory,
) -> None:
    await history.append([event("ann", 10, 1), event("ann", 5), event("bob", 3, 1)])
    await history.append([removal("ann", 15)])
    assert await totals(history) == {"bob": 3}
    await history.append([event("ann", 4, 1)])
    assert await totals(history) == {"ann": 4, "bob": 3}
    # Present with a total of 0: scored after the removal, then lost it all again.
    await history.append([event("ann", -4)])
    assert await totals(history) == {"ann": 0, "bob": 3}
    await history.append([removal("ann", 0), removal("bob", 3)])
    assert await totals(history) == {}


async def test_the_order_rows_arrive_in_does_not_matter(history: SqlScoreHistory) -> None:
    # Another instance's buffered event reaches the history after the removal that
    # counted it: the sums are the same.
    await history.append([removal("cid", 7)])
    await history.append([event("cid", 2, 1), event("cid", 5)])
    assert await totals(history) == {}


async def test_rows_from_before_the_presence_column_count_as_one_start(
    history: SqlScoreHistory, history_url: str
) -> None:
    await query_history(
        history_url,
        "INSERT INTO score_events (board, period, username, delta, event_id, "
        f"client_event_id, created_at_ms, presence) VALUES ('{BOARD}', '{PERIOD}', 'dan', 5, "
        "'~old1', 0, 1, NULL), "
        f"('{BOARD}', '{PERIOD}', 'dan', 2, '~old2', 0, 1, NULL)",
    )
    assert await totals(history) == {"dan": 7}
    await history.append([removal("dan", 7)])
    assert await totals(history) == {}
    await history.append([event("dan", 2, 1)])
    assert await totals(history) == {"dan": 2}


async def test_banned_players_are_left_out_of_the_totals(history: SqlScoreHistory) -> None:
    records = history.player_records()
    await history.append([event("ann", 10, 1), event("bob", 3, 1)])
    await records.store_ban("ann", "cheating", 1_790_000_000_000)
    assert await totals(history) == {"bob": 3}
    assert await records.banned_usernames() == {"ann"}
    assert await records.ban("ann") == BanRecord(
        username="ann", reason="cheating", banned_at_ms=1_790_000_000_000
    )
    # Banned again: the reason changes, the time stays.
    await records.store_ban("ann", None, 1_800_000_000_000)
    assert await records.ban("ann") == BanRecord(
        username="ann", reason=None, banned_at_ms=1_790_000_000_000
    )
    assert await records.delete_ban("ann")
    assert not await records.delete_ban("ann")
    assert await records.ban("ann") is None
    assert await totals(history) == {"ann": 10, "bob": 3}


async def test_a_players_periods(history: SqlScoreHistory) -> None:
    records = history.player_records()
    await history.append(
        [
            event("ann", 10, 1),
            event("ann", 4, 1, period="2026-10"),
            event("ann", 1, 1, period="2026-09"),
            event("bob", 3, 1),
        ]
    )
    removed = ScoreEvent(
        board=BOARD,
        period="2026-10",
        username="ann",
        delta=-4,
        event_id="!gone",
        client_event_id=False,
        created_at_ms=1,
        presence=-1,
    )
    await history.append([removed])
    assert sorted(await records.periods("ann"), key=lambda entry: entry.period) == [
        PlayerPeriod(board=BOARD, period="2026-09", total=1, present=True),
        PlayerPeriod(board=BOARD, period="2026-10", total=0, present=False),
        PlayerPeriod(board=BOARD, period=PERIOD, total=10, present=True),
    ]
    assert await records.periods("nobody") == []


async def test_erase_deletes_every_row_of_the_player_and_counts_them(
    history: SqlScoreHistory, history_url: str
) -> None:
    records = history.player_records()
    await history.append(
        [
            event("ann", 10, 1, event_id="c1"),
            event("ann", 4, 1, period="2026-10"),
            event("bob", 3, 1, event_id="c2"),
            removal("ann", 10),
        ]
    )
    await records.store_ban("ann", "gdpr", 1)
    assert await records.client_event_ids("ann") == [(BOARD, PERIOD, "c1")]
    assert await records.erase("ann") == ErasedRows(events=3, bans=1)
    assert await records.erase("ann") == ErasedRows(events=0, bans=0)
    assert await query_history(history_url, "SELECT username FROM score_events") == [("bob",)]
    assert await records.ban("ann") is None
    assert await records.periods("ann") == []


async def test_erasure_after_cached_registration_still_finds_every_row(
    history: SqlScoreHistory, history_url: str
) -> None:
    # The first flush registers ann's periods; the next ones find them in the instance's
    # cache and register nothing: the erasure still reaches every row (migration 11).
    await history.append([event("ann", 1, 1), event("bob", 1, 1)])
    for number in range(3):
        await history.append([event("ann", number), event("ann", 2, 1, period="2026-10")])
    await history.append([event("ann", 1)])
    assert await unregistered_rows(history_url) == []
    assert await registered_players(history_url) == {
        ("ann", BOARD, PERIOD),
        ("ann", BOARD, "2026-10"),
        ("bob", BOARD, PERIOD),
    }
    assert await records_erase(history, "ann") == 8
    assert await query_history(history_url, "SELECT username FROM score_events") == [("bob",)]
    assert await registered_players(history_url) == {("bob", BOARD, PERIOD)}


async def test_writes_after_an_erasure_register_the_player_again(
    history: SqlScoreHistory, history_url: str
) -> None:
    # Another instance erases ann while this one's cache says ann is registered: the
    # erasure's new epoch makes this instance's next flush register ann again, so a
    # second erasure finds the new rows ("writes after an erasure create a new player").
    other = SqlScoreHistory(history_url)
    await other.connect()
    try:
        await history.append([event("ann", 5, 1)])
        epoch = await history_epoch(history_url)
        assert await records_erase(other, "ann") == 1
        assert await history_epoch(history_url) == epoch + 1
        await history.append([event("ann", 3, 1), event("bob", 1, 1)])
        assert await unregistered_rows(history_url) == []
        assert await history.player_records().periods("ann") == [
            PlayerPeriod(board=BOARD, period=PERIOD, total=3, present=True)
        ]
        assert await records_erase(other, "ann") == 1
        # The same instance erasing and writing again.
        await history.append([event("ann", 2, 1)])
        assert await records_erase(history, "ann") == 1
        await history.append([event("ann", 2, 1)])
        assert await unregistered_rows(history_url) == []
        assert await records_erase(history, "ann") == 1
        assert await query_history(history_url, "SELECT username FROM score_events") == [("bob",)]
    finally:
        await other.close()


async def records_erase(history: SqlScoreHistory, username: str) -> int:
    """Erase a player; how many history rows went."""
    return (await history.player_records().erase(username)).events
