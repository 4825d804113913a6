"""The score history on MySQL/MariaDB or SQLite, through `databases` (one module per concern).

- `history.py`: `SqlScoreHistory`, the `ScoreHistory` the service uses (reads, writes, lifecycle).
- `dialect.py`: the interface of what differs between the databases, and the event row layout.
- `mysql.py`, `sqlite.py`: the two dialects (driver calls, batch INSERT, migration locking).
  `literals.py`: the MySQL INSERT's value literals (the driver's escaping, done cheaper).
- `schema_steps.py`: the schema, step by step; `migrations.py`: the loop that applies the
  steps a database lacks.
- `standings.py`, `outbox.py`: the seasons' tables (final standings, results, claims,
  watermarks; the webhook outbox); `frozen_rows.py` (a final period's rows in the board's
  order) and `final_reads.py` (the reads of final periods).
- `archive.py`: the event archive (final periods' rows moved out of `score_events` in
  bounded transactions, and deleted by retention); `event_reads.py`: a period's events
  as a rebuild reads them, from both tables once some are archived.
- `replica.py`: reads on a MySQL/MariaDB replica once it has caught up (GTID wait).
- `profiles.py`: the `player_profiles` table (versioned upserts, reads of many players).
- `pool.py`: one database's connection pool: time limits, error wrapping, timing.

Owns every SQL statement of the service. May import the standard library, `databases`
and its drivers, and `store.errors`, `store.models`, `store.observer`, `store.board_kinds`
(plain enums); nothing outside `store`.
"""

from store.sql.dialect import EVENT_COLUMNS, event_row
from store.sql.history import SqlScoreHistory
from store.sql.replica import REPLICA_RETRY_SECONDS, REPLICA_WAIT_SECONDS
from store.sql.schema_steps import SCHEMA_VERSION

__all__ = [
    "EVENT_COLUMNS",
    "REPLICA_RETRY_SECONDS",
    "REPLICA_WAIT_SECONDS",
    "SCHEMA_VERSION",
    "SqlScoreHistory",
    "event_row",
]
