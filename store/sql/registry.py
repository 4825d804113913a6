"""The player registry (migration 11): which players have rows in which board periods of
`score_events`, so moderation and erasure find a player's rows without an index on
`username` that every appended row would pay for (docs/history.md, "The player registry").

`player_periods (username, board, period)` lists, for every row of `score_events`, its
(player, board, period); it may list more (a triple whose rows were archived, or whose
erasure was rolled back), never fewer. A flush upserts only the triples its instance's
`PlayerRegistry` cache has not seen registered, in the transaction of its rows.

`history_epoch` is one row whose `epoch` grows whenever registry rows are deleted (an
erasure, the archive forgetting a period). The rules that keep "never fewer" true:

1. A flush reads the epoch first in its transaction with a share lock (SQLite: inside its
   IMMEDIATE transaction, which serialises it against every writer) and trusts its cache
   only for that epoch (a new epoch empties it).
2. Whatever deletes registry rows bumps the epoch first, in the same transaction: the
   bump waits for every flush in flight (their share locks) and holds new flushes until it
   commits; those then read the new epoch and register their triples again.
3. The cache takes a flush's triples only after its commit, and only if the epoch the
   flush read is still the cache's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from store.sql.dialect import Row

EPOCH_READ: Final = "SELECT epoch FROM history_epoch WHERE id = 1"
"""The epoch (SQLite; its IMMEDIATE transaction already excludes every other writer)."""
EPOCH_READ_LOCKED: Final = EPOCH_READ + " LOCK IN SHARE MODE"
"""The epoch, share-locked until the flush commits (MySQL/MariaDB)."""
EPOCH_BUMP: Final = "UPDATE history_epoch SET epoch = epoch + 1 WHERE id = 1"
"""The first statement of a transaction that deletes registry rows (rule 2)."""

PLAYER_COLUMNS: Final = "username, board, period"
"""The columns of one `player_periods` row, in `player_rows` order."""
PLAYER_COLUMN_COUNT: Final = 3

CACHE_LIMIT: Final = 500_000
"""The most triples one instance remembers (about 100 bytes each: the usernames are the
events' own strings); past it the cache starts again empty, which costs one upsert per
player and live period on the next flushes, never a missed registration."""


def player_rows(rows: Iterable[Row]) -> set[Row]:
    """The distinct (username, board, period) of event rows (`EVENT_COLUMNS` order)."""
    return {(row[2], row[0], row[1]) for row in rows}


_NONE: Final[frozenset[str]] = frozenset()


class PlayerRegistry:
    """One instance's cache of the triples registered at the current epoch."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self._limit = limit
        self._epoch: int | None = None
        self._known: dict[tuple[str, str], set[str]] = {}
        self._count = 0

    def unregistered(self, epoch: int | None, rows: Iterable[Row]) -> list[Row]:
        """The (username, board, period) of event rows (`EVENT_COLUMNS` order) to upsert in
        a flush that read `epoch` (None: no epoch row, so nothing is trusted), distinct and
        in key order (so concurrent flushes lock the registry rows they share in one
        order); a changed epoch empties the cache."""
        if epoch is None or epoch != self._epoch:
            self._reset(epoch)
            return sorted(player_rows(rows))
        # The usual flush is one board period of players all registered already: one
        # lookup per period and a set probe per row, no tuple built.
        known = self._known
        new: set[Row] = set()
        board = period = None
        players: set[str] | frozenset[str] = _NONE
        for row in rows:
            if row[0] != board or row[1] != period:
                board, period = row[0], row[1]
                players = known.get((board, period), _NONE)
            if row[2] not in players:
                new.add((row[2], board, period))
        return sorted(new)

    def registered(self, epoch: int | None, triples: Iterable[Row]) -> None:
        """Remember triples a flush that read `epoch` has committed; ignored when the cache
        has moved to another epoch meanwhile (another flush saw an erasure)."""
        if epoch is None or epoch != self._epoch:
            return
        for username, board, period in triples:
            players = self._known.setdefault((board, period), set())
            if username not in players:
                players.add(username)
                self._count += 1
        if self._count > self._limit:
            self._reset(epoch)

    def _reset(self, epoch: int | None) -> None:
        self._epoch = epoch
        self._known = {}
        self._count = 0
