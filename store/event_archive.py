"""Which raw event rows may leave the hot table, and moving them (`leaderboard archive`).

Two rules, both on whole periods (docs/history.md, "Archive and retention"):

- **Archive** (`before`): the rows of every period that ended before the cutoff period
  started (in each board's own time zone) move to `score_events_archive`.
- **Retention** (`retention_days`, `LEADERBOARD_EVENT_RETENTION_DAYS`): the rows of every
  period that ended more than that many days ago are deleted, from both tables.

Either applies only to a **final** period (its standings frozen and its result stored:
`period_results`), which every past read answers from. A live period (not ended) and a
pending one (ended, not yet frozen: the finalizer still folds its rows) are never
touched, nor a NEVER board's `all`, which never ends. Whole periods, never single old
rows: half a period would rebuild to wrong totals, and a period's rows are all older
than its end anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from store.boards import Board, ResetPeriod
from store.periods import parse_period, start_of_local_date, zone_named
from store.sql.archive import ARCHIVE, HOT

if TYPE_CHECKING:
    from store.sql.archive import SqlEventArchive
    from store.sql.standings import SqlStandings

BATCH_ROWS: Final = 1_000
"""Rows per transaction: a few hundred kB of undo per batch, never a giant transaction."""

Progress = Callable[[str, str, str, int], None]
"""Told after every committed batch: (what: "archived" or "deleted", board, period, rows)."""


@dataclass(slots=True)
class ArchiveReport:
    """What one run did: rows per (board, period), and the periods left alone."""

    archived: dict[tuple[str, str], int] = field(default_factory=dict)
    deleted: dict[tuple[str, str], int] = field(default_factory=dict)
    pending: list[tuple[str, str]] = field(default_factory=list)
    """Ended periods that would qualify but are not final yet (not touched)."""
    compacted: bool = False
    """Whether the hot table was rebuilt afterwards (`compact`, MySQL only)."""


def cutoff_date(period: str) -> date:
    """The first local date of a period id of any reset (2026-11-23, 2026-W48, 2026-11);
    ValueError when it is none of them."""
    for reset in (ResetPeriod.DAILY, ResetPeriod.WEEKLY, ResetPeriod.MONTHLY):
        first = parse_period(reset, period)
        if first is not None:
            return first
    raise ValueError(
        f"{period!r} is not a period id: use a day (2026-11-23), an ISO week (2026-W48) "
        "or a month (2026-11)"
    )


def _no_progress(what: str, board: str, period: str, rows: int) -> None:
    pass


async def archive_events(
    archive: SqlEventArchive,
    standings: SqlStandings,
    boards: Iterable[Board],
    *,
    now: datetime,
    before: date | None,
    retention_days: int | None,
    batch_rows: int = BATCH_ROWS,
    progress: Progress = _no_progress,
    compact: bool = False,
) -> ArchiveReport:
    """Apply both rules to every board's periods, batch by batch; safe to interrupt and
    to run again (a rerun finds only what is left), also from two processes at once.

    `compact`: once rows left the hot table, rebuild it online (`SqlEventArchive.compact`)
    so its indexes shrink to the rows that are left (docs/history.md, "After a big archive")."""
    report = ArchiveReport()
    left_hot = False  # whether retention deleted rows of the hot table
    expired = None if retention_days is None else now - timedelta(days=retention_days)
    for board in boards:
        if board.reset is ResetPeriod.NEVER:
            continue
        cutoff = (
            None if before is None else start_of_local_date(zone_named(board.time_zone), before)
        )
        finals = await standings.final_periods(board.id)
        hot = set(await standings.periods_with_events(board.id))
        cold = set(await archive.archived_periods(board.id))
        for period in sorted(hot | cold):
            end = board.period_end(period)
            if end is None or end > now:
                continue  # live (or not a period of this board: left as it is)
            purge = expired is not None and end <= expired
            move = cutoff is not None and end <= cutoff and period in hot
            if not (purge or move):
                continue
            if period not in finals:
                report.pending.append((board.id, period))
                continue
            # Its writers' sequences first, so an interrupted run leaves none behind (a rerun
            # may find the rows all moved and skip the period). Safe before the rows go: a
            # writer's calls land in the current period, never in an ended one, so whatever
            # may still rebuild a final period (moderation) checks no sequence in it.
            await archive.forget_writers(board.id, period)
            if purge:
                for table in (HOT, ARCHIVE):
                    while rows := await archive.purge(table, board.id, period, batch_rows):
                        left_hot = left_hot or table == HOT
                        key = (board.id, period)
                        report.deleted[key] = report.deleted.get(key, 0) + rows
                        progress("deleted", board.id, period, rows)
            else:
                while rows := await archive.move(board.id, period, batch_rows):
                    key = (board.id, period)
                    report.archived[key] = report.archived.get(key, 0) + rows
                    progress("archived", board.id, period, rows)
            # No hot rows of the period are left: its registry rows go too (the archive
            # finds its rows by its own username index). A run interrupted before this
            # leaves them behind, harmless: the registry may list more, never fewer.
            while await archive.forget_players(board.id, period, batch_rows):
                pass
    if compact and (report.archived or left_hot):
        report.compacted = await archive.compact()
    return report
