"""`leaderboard archive`: move old periods' raw events out of the hot table, apply retention.

The rules are `store.event_archive`'s; this module is the command line around them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from server.resources import open_history
from server.settings import Settings
from store.board_registry import board_of
from store.boards import BoardIndex
from store.event_archive import BATCH_ROWS, archive_events, cutoff_date

DESCRIPTION = """\
Move the raw score events of periods that ended before PERIOD started (in each board's time
zone) from the hot table to the archive table, in batches of --batch-rows rows, each its
own transaction: safe to interrupt and to run again. With LEADERBOARD_EVENT_RETENTION_DAYS
set, the events of periods that ended more than that many days ago are deleted instead
(from the archive too). Only final periods are touched (their standings frozen, which every
past read answers from): never a live period nor one whose result is still pending.
Archived events still serve rebuilds, reconcile and erasure.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare the `archive` command and its options."""
    command = commands.add_parser(
        "archive",
        help="move old periods' raw events to the archive table; apply event retention",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--before",
        default=None,
        metavar="PERIOD",
        help="a period id (2026-11, 2026-W48, 2026-11-23): archive the periods that ended "
        "before it started (default: archive nothing, only apply the retention)",
    )
    command.add_argument(
        "--batch-rows",
        type=int,
        default=BATCH_ROWS,
        help="rows moved or deleted per transaction (default: %(default)s)",
    )
    command.add_argument(
        "--compact",
        action="store_true",
        help="afterwards, when rows left the hot table, rebuild it online (MySQL: ALTER "
        "TABLE score_events FORCE, ALGORITHM=INPLACE, LOCK=NONE) so its indexes shrink to "
        "the rows that are left; copies the remaining rows, see docs/history.md",
    )


async def archive(
    settings: Settings, before: str | None, batch_rows: int, *, compact: bool = False
) -> int:
    """Run the archive and retention rules once over every board; print what moved."""
    cutoff: date | None = None
    if before is not None:
        try:
            cutoff = cutoff_date(before)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if batch_rows < 1:
        print("error: --batch-rows must be at least 1", file=sys.stderr)
        return 2
    if cutoff is None and settings.event_retention_days is None:
        print("leaderboard: nothing to do (no --before, LEADERBOARD_EVENT_RETENTION_DAYS unset)")
        return 0
    history = open_history(settings)
    await history.connect()
    try:
        await history.migrate()
        boards = BoardIndex(settings.boards)
        for spec, _ in await history.board_table().all():
            boards.put(board_of(spec))
        report = await archive_events(
            history.archive(),
            history.standings(),
            boards,
            now=datetime.now(UTC),
            before=cutoff,
            retention_days=settings.event_retention_days,
            batch_rows=batch_rows,
            compact=compact,
        )
    finally:
        await history.close()
    for (board, period), rows in sorted(report.deleted.items()):
        print(f"{board}/{period}: {rows} events deleted (retention)")
    for (board, period), rows in sorted(report.archived.items()):
        print(f"{board}/{period}: {rows} events archived")
    for board, period in report.pending:
        print(f"{board}/{period}: left in place, its result is still pending")
    if report.compacted:
        print("score_events rebuilt (compacted)")
    print(
        f"leaderboard: archive done, {sum(report.archived.values())} events archived, "
        f"{sum(report.deleted.values())} deleted"
    )
    return 0
