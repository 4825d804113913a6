"""Key expiry of boards in a time zone: a period's keys live until its LOCAL end plus the
retention (a clock injected into the layout, no Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.boards import Board, ResetPeriod
from store.redis.keys import MIN_EXPIRY, KeyLayout

pytestmark = pytest.mark.unit

RETENTION = timedelta(days=2)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def layout(board: Board, now: datetime, retention: timedelta = RETENTION) -> KeyLayout:
    return KeyLayout("p", [board], retention, clock=now.timestamp)


@pytest.mark.parametrize(
    ("zone", "reset", "period", "local_end"),
    [
        # Spring forward: a 23-hour day, ending at midnight EDT (UTC-4).
        ("America/New_York", ResetPeriod.DAILY, "2026-03-08", datetime(2026, 3, 9, 4, tzinfo=UTC)),
        # Fall back: a 25-hour day, ending at midnight EST (UTC-5).
        ("America/New_York", ResetPeriod.DAILY, "2026-11-01", datetime(2026, 11, 2, 5, tzinfo=UTC)),
        # The local Monday ends the week.
        (
            "America/Los_Angeles",
            ResetPeriod.WEEKLY,
            "2026-W10",
            datetime(2026, 3, 9, 7, tzinfo=UTC),
        ),
        (
            "Pacific/Kiritimati",
            ResetPeriod.MONTHLY,
            "2026-05",
            datetime(2026, 5, 31, 10, tzinfo=UTC),
        ),
        ("UTC", ResetPeriod.DAILY, "2026-03-08", datetime(2026, 3, 9, tzinfo=UTC)),
    ],
)
def test_keys_expire_the_retention_after_the_local_end(
    zone: str, reset: ResetPeriod, period: str, local_end: datetime
) -> None:
    board = Board("b", reset, time_zone=zone)
    assert board.period_end(period) == local_end
    # A clock long before: neither the live-period rule nor MIN_EXPIRY moves the answer.
    keys = layout(board, datetime(2026, 1, 1, tzinfo=UTC))
    assert keys.expire_at_ms("b", period) == ms(local_end + RETENTION)


def test_keys_written_late_in_a_west_zone_day_outlive_it() -> None:
    # 02:00 UTC on 9 March is still 8 March (18:00) in Los Angeles: the period is live for
    # another 6 hours; the UTC midnight has passed. Without retention, the keys must not
    # expire before the local end (an expiry at the UTC end would have fallen back on
    # MIN_EXPIRY: gone at 03:00 UTC, mid-period).
    board = Board("b", ResetPeriod.DAILY, time_zone="America/Los_Angeles")
    now = datetime(2026, 3, 9, 2, tzinfo=UTC)
    assert board.period_at(now) == "2026-03-08"
    local_end = datetime(2026, 3, 9, 7, tzinfo=UTC)
    keys = layout(board, now, retention=timedelta(0))
    assert keys.expire_at_ms("b", "2026-03-08") == ms(local_end)
    assert keys.expire_at_ms("b", "2026-03-08") > ms(now + MIN_EXPIRY)


def test_an_empty_live_period_of_a_zoned_board_keeps_its_expiry() -> None:
    # Live by the local calendar (the clock is inside the local day): not the short
    # expiry of an empty far period.
    board = Board("b", ResetPeriod.DAILY, time_zone="Pacific/Kiritimati")
    now = datetime(2026, 3, 8, 9, tzinfo=UTC)  # 23:00 on 8 March in Kiritimati
    keys = layout(board, now)
    assert keys.expire_at_ms("b", "2026-03-08", empty=True) == ms(
        datetime(2026, 3, 8, 10, tzinfo=UTC) + RETENTION
    )
