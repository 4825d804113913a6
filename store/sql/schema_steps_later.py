"""The history's schema steps from version 9 on (the archive, writers' sequences, the player
registry); `schema_steps.MIGRATIONS` appends them to the earlier ones. Apart only to keep
each file readable; the rules of `schema_steps.py` hold.
"""

from __future__ import annotations

from typing import Final

from store.sql.dialect import Migration

LATER_MIGRATIONS: Final = (
    Migration(
        version=9,
        # The event archive (store/sql/archive.py, docs/history.md "Archive and retention"):
        # raw rows of final periods moved out of `score_events` by `leaderboard archive`.
        # Clustered on the natural key, so a period's rows are one range (rebuild reads,
        # retention deletes) and a row moved twice is one row; the username index serves
        # erasure and a player's periods. No totals index: rebuilds of archived periods are
        # rare operator work, and every index costs each moved row. `id_life` as in
        # migration 8: an event id applied again after the idempotency window is two rows.
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS score_events_archive (
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                event_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                id BIGINT NOT NULL,
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                delta BIGINT NOT NULL,
                client_event_id BOOL NOT NULL,
                created_at_ms BIGINT NOT NULL,
                applied_at_us BIGINT NULL,
                presence TINYINT NULL,
                id_life BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (board, period, event_id, id_life),
                KEY score_events_archive_username (username)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS score_events_archive (
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                event_id TEXT NOT NULL,
                id INTEGER NOT NULL,
                username TEXT NOT NULL,
                delta INTEGER NOT NULL,
                client_event_id INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                applied_at_us INTEGER NULL,
                presence INTEGER NULL,
                id_life INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (board, period, event_id, id_life)
            ) WITHOUT ROWID
            """,
            """
            CREATE INDEX IF NOT EXISTS score_events_archive_username
                ON score_events_archive (username)
            """,
        ),
    ),
    Migration(
        version=10,
        # Idempotency per writer (docs/reliability.md): the writerId and sequence of the
        # call an event came in, NULL without one (an audit trail: nothing reads them back).
        # Nullable columns only: no table copy, no index. `writer_sequences` holds each
        # writer's highest sequence per board period, upserted by the flush that appends the
        # events (same transaction): a rebuild reads its few rows by key instead of the
        # period's events, and no index on score_events costs every inserted row.
        mysql=(
            "ALTER TABLE score_events "
            "ADD COLUMN IF NOT EXISTS writer_id VARCHAR(128) CHARACTER SET ascii "
            "COLLATE ascii_bin NULL, ADD COLUMN IF NOT EXISTS writer_sequence BIGINT NULL",
            "ALTER TABLE score_events_archive "
            "ADD COLUMN IF NOT EXISTS writer_id VARCHAR(128) CHARACTER SET ascii "
            "COLLATE ascii_bin NULL, ADD COLUMN IF NOT EXISTS writer_sequence BIGINT NULL",
            """
            CREATE TABLE IF NOT EXISTS writer_sequences (
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                writer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                sequence BIGINT NOT NULL,
                PRIMARY KEY (board, period, writer_id)
            ) ENGINE=InnoDB
            """,
        ),
        sqlite=(
            "ALTER TABLE score_events ADD COLUMN writer_id TEXT NULL",
            "ALTER TABLE score_events ADD COLUMN writer_sequence INTEGER NULL",
            "ALTER TABLE score_events_archive ADD COLUMN writer_id TEXT NULL",
            "ALTER TABLE score_events_archive ADD COLUMN writer_sequence INTEGER NULL",
            """
            CREATE TABLE IF NOT EXISTS writer_sequences (
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                writer_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                PRIMARY KEY (board, period, writer_id)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=11,
        # The player registry (store/sql/registry.py, docs/history.md "The player
        # registry"): `player_periods` lists each (player, board, period) with rows in
        # `score_events`, `history_epoch` is the erasure epoch the flushes' caches follow.
        # They replace the username index of `score_events`, which cost every appended
        # row 20-40 % of MariaDB's CPU (docs/performance.md) and served moderation only.
        # The backfill must see every row: pre-11 instances must be stopped (they write
        # rows without registering them; docs/moderation.md, "Upgrading to schema 11").
        # The (board, period) key serves the archive forgetting a period's rows (an
        # insert into it is paid only by a flush's new registrations, not by every row).
        # Every statement may run again (an interrupted step is re-run whole); running the
        # step again bumps the epoch, harmless. The archive keeps its own username index.
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS player_periods (
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                PRIMARY KEY (username, board, period),
                KEY player_periods_period (board, period)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
            """
            CREATE TABLE IF NOT EXISTS history_epoch (
                id TINYINT NOT NULL PRIMARY KEY,
                epoch BIGINT NOT NULL
            ) ENGINE=InnoDB
            """,
            "INSERT INTO history_epoch (id, epoch) VALUES (1, 0) "
            "ON DUPLICATE KEY UPDATE epoch = epoch + 1",
            # Not INSERT IGNORE: every triple already registered (a re-run) would come
            # back as a warning, which aiomysql raises. Read on the totals index.
            "INSERT INTO player_periods (username, board, period) "
            "SELECT DISTINCT username, board, period FROM score_events "
            "ON DUPLICATE KEY UPDATE player_periods.username = player_periods.username",
            "ALTER TABLE score_events DROP INDEX IF EXISTS score_events_username",
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS player_periods (
                username TEXT NOT NULL,
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                PRIMARY KEY (username, board, period)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX IF NOT EXISTS player_periods_period ON player_periods (board, period)",
            """
            CREATE TABLE IF NOT EXISTS history_epoch (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                epoch INTEGER NOT NULL
            )
            """,
            "INSERT INTO history_epoch (id, epoch) VALUES (1, 0) "
            "ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1",
            # `WHERE true`: SQLite's parser needs it between a SELECT and an upsert clause.
            "INSERT INTO player_periods (username, board, period) "
            "SELECT DISTINCT username, board, period FROM score_events WHERE true "
            "ON CONFLICT (username, board, period) DO NOTHING",
            "DROP INDEX IF EXISTS score_events_username",
        ),
    ),
)
