"""The history's schema, step by step: each numbered `Migration` and the statements that
reach it on MySQL/MariaDB and on SQLite (`migrations.py` applies the ones a database lacks);
steps 9 on are in `schema_steps_later.py`.

Never edit a released step: add a new version instead. Steps may only use what both
dialects' `steps()` understand (store/sql/dialect.py).
"""

from __future__ import annotations

from typing import Final

from store.sql.dialect import Migration
from store.sql.schema_steps_later import LATER_MIGRATIONS

MIGRATIONS: Final = (
    Migration(
        version=1,
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS score_events (
                id BIGINT NOT NULL AUTO_INCREMENT,
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                delta BIGINT NOT NULL,
                event_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                client_event_id BOOL NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (id),
                UNIQUE KEY score_events_event (board, period, event_id),
                KEY score_events_totals (board, period, username, delta)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS score_events (
                id INTEGER PRIMARY KEY,
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                username TEXT NOT NULL,
                delta INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                client_event_id INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                CONSTRAINT score_events_event UNIQUE (board, period, event_id)
            )
            """,
            """
            CREATE INDEX IF NOT EXISTS score_events_totals
                ON score_events (board, period, username, delta)
            """,
        ),
    ),
    Migration(
        version=2,
        # Boards created at run time (and those LEADERBOARD_BOARDS declares): the source of
        # truth every instance loads (store/sql/boards.py). `version` grows on every change.
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS boards (
                id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                reset VARCHAR(8) CHARACTER SET ascii NOT NULL,
                update_rule VARCHAR(9) CHARACTER SET ascii NOT NULL,
                sort_order VARCHAR(4) CHARACTER SET ascii NOT NULL,
                tie_break VARCHAR(8) CHARACTER SET ascii NOT NULL,
                time_zone VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                min_score BIGINT NULL,
                max_score BIGINT NULL,
                max_delta BIGINT NULL,
                shards INT NOT NULL,
                active BOOL NOT NULL,
                version BIGINT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (id)
            ) ENGINE=InnoDB
            """,
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS boards (
                id TEXT NOT NULL PRIMARY KEY,
                reset TEXT NOT NULL,
                update_rule TEXT NOT NULL,
                sort_order TEXT NOT NULL,
                tie_break TEXT NOT NULL,
                time_zone TEXT NOT NULL,
                min_score INTEGER NULL,
                max_score INTEGER NULL,
                max_delta INTEGER NULL,
                shards INTEGER NOT NULL,
                active INTEGER NOT NULL,
                version INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=3,
        # The instant write.lua applied a write of a BEST, LATEST or EARLIEST board (Redis
        # TIME, µs, strictly increasing per ranking): a rebuild replays a player's writes in
        # that order and ranks EARLIEST ties by it (docs/boards.md). NULL on other boards.
        mysql=("ALTER TABLE score_events ADD COLUMN IF NOT EXISTS applied_at_us BIGINT NULL",),
        sqlite=("ALTER TABLE score_events ADD COLUMN applied_at_us INTEGER NULL",),
    ),
    Migration(
        version=4,
        # Player profiles (setPlayerProfile): per player, shared by every board; the source
        # of truth of the Redis cache (store/sql/profiles.py). `version` grows on every change.
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS player_profiles (
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                display_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
                metadata TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
                version BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                PRIMARY KEY (username)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS player_profiles (
                username TEXT NOT NULL PRIMARY KEY,
                display_name TEXT NULL,
                metadata TEXT NULL,
                version INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=5,
        # Player moderation (resolvers/moderation.py, docs/moderation.md). `presence` on each
        # event: +1 when it gave the player a score they did not have, -1 on a removal row
        # (event id '!...', delta = minus the total removed), 0 otherwise, NULL on rows stored
        # before this step (they all predate any removal). A rebuild keeps a removed player
        # only while the sum says present (store/sql/history.py). The username index serves
        # erasure and a player's periods (ban, unban); the bans table is the source of truth
        # every instance loads (store/ban_registry.py).
        mysql=(
            "ALTER TABLE score_events ADD COLUMN IF NOT EXISTS presence TINYINT NULL, "
            "ADD KEY IF NOT EXISTS score_events_username (username)",
            """
            CREATE TABLE IF NOT EXISTS player_bans (
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                reason VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
                banned_at_ms BIGINT NOT NULL,
                PRIMARY KEY (username)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ),
        sqlite=(
            "ALTER TABLE score_events ADD COLUMN presence INTEGER NULL",
            "CREATE INDEX IF NOT EXISTS score_events_username ON score_events (username)",
            """
            CREATE TABLE IF NOT EXISTS player_bans (
                username TEXT NOT NULL PRIMARY KEY,
                reason TEXT NULL,
                banned_at_ms INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=6,
        # Seasons (docs/seasons.md): the frozen final standings of ended periods, their
        # results, the claim that lets one instance compute them, each instance's flushed-
        # through watermark, and the webhook outbox (store/sql/standings.py, outbox.py).
        mysql=(
            """
            CREATE TABLE IF NOT EXISTS period_standings (
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                position BIGINT NOT NULL,
                username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                score BIGINT NOT NULL,
                player_rank BIGINT NOT NULL,
                PRIMARY KEY (board, period, position),
                UNIQUE KEY period_standings_player (board, period, username)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
            """
            CREATE TABLE IF NOT EXISTS period_results (
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                player_count BIGINT NOT NULL,
                body MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                finalized_at_ms BIGINT NOT NULL,
                PRIMARY KEY (board, period)
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS period_claims (
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                owner VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                expires_ms BIGINT NOT NULL,
                PRIMARY KEY (board, period)
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS instance_watermarks (
                instance VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                flushed_through_ms BIGINT NOT NULL,
                heartbeat_ms BIGINT NOT NULL,
                PRIMARY KEY (instance)
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS webhook_outbox (
                delivery_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                body MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                attempts INT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                next_attempt_ms BIGINT NOT NULL,
                claimed_until_ms BIGINT NOT NULL,
                done_at_ms BIGINT NULL,
                last_error VARCHAR(255) CHARACTER SET utf8mb4 NULL,
                PRIMARY KEY (delivery_id),
                KEY webhook_outbox_due (done_at_ms, next_attempt_ms)
            ) ENGINE=InnoDB
            """,
        ),
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS period_standings (
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                position INTEGER NOT NULL,
                username TEXT NOT NULL,
                score INTEGER NOT NULL,
                player_rank INTEGER NOT NULL,
                PRIMARY KEY (board, period, position),
                CONSTRAINT period_standings_player UNIQUE (board, period, username)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS period_results (
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                player_count INTEGER NOT NULL,
                body TEXT NOT NULL,
                finalized_at_ms INTEGER NOT NULL,
                PRIMARY KEY (board, period)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS period_claims (
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                owner TEXT NOT NULL,
                expires_ms INTEGER NOT NULL,
                PRIMARY KEY (board, period)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS instance_watermarks (
                instance TEXT NOT NULL PRIMARY KEY,
                flushed_through_ms INTEGER NOT NULL,
                heartbeat_ms INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS webhook_outbox (
                delivery_id TEXT NOT NULL PRIMARY KEY,
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                body TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                next_attempt_ms INTEGER NOT NULL,
                claimed_until_ms INTEGER NOT NULL,
                done_at_ms INTEGER NULL,
                last_error TEXT NULL
            )
            """,
            """
            CREATE INDEX IF NOT EXISTS webhook_outbox_due
                ON webhook_outbox (done_at_ms, next_attempt_ms)
            """,
        ),
    ),
    Migration(
        version=7,
        # Seasons on every board kind: when each player of an EARLIEST board's final period
        # reached its score (µs, as `applied_at_us`), the tie-break its position follows and
        # what its paging cursors name (store/sql/frozen_rows.py). NULL on other boards.
        mysql=("ALTER TABLE period_standings ADD COLUMN IF NOT EXISTS reached_us BIGINT NULL",),
        sqlite=("ALTER TABLE period_standings ADD COLUMN reached_us INTEGER NULL",),
    ),
    Migration(
        version=8,
        # The idempotency window (docs/reliability.md): a client event id is forgotten
        # after the window, and the same id applied again later is a new event. `id_life`
        # (the window bucket the live store recorded a client id in, 0 otherwise:
        # `IncrementOutcome.id_life`) tells its rows apart, so the unique key still skips a
        # flush's retried row but keeps the later life, and a rebuild restores the ids of
        # the buckets still checked. SQLite cannot change a table's constraint: the table
        # is copied into one with the new key.
        mysql=(
            "ALTER TABLE score_events ADD COLUMN IF NOT EXISTS id_life BIGINT NOT NULL DEFAULT 0, "
            "DROP INDEX score_events_event, "
            "ADD UNIQUE KEY score_events_event (board, period, event_id, id_life)",
        ),
        sqlite=(
            """
            CREATE TABLE score_events_v8 (
                id INTEGER PRIMARY KEY,
                board TEXT NOT NULL,
                period TEXT NOT NULL,
                username TEXT NOT NULL,
                delta INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                client_event_id INTEGER NOT NULL,
                created_at_ms INTEGER NOT NULL,
                applied_at_us INTEGER NULL,
                presence INTEGER NULL,
                id_life INTEGER NOT NULL DEFAULT 0,
                CONSTRAINT score_events_event UNIQUE (board, period, event_id, id_life)
            )
            """,
            "INSERT INTO score_events_v8 (id, board, period, username, delta, event_id, "
            "client_event_id, created_at_ms, applied_at_us, presence) SELECT id, board, period, "
            "username, delta, event_id, client_event_id, created_at_ms, applied_at_us, presence "
            "FROM score_events",
            "DROP TABLE score_events",
            "ALTER TABLE score_events_v8 RENAME TO score_events",
            "CREATE INDEX score_events_totals ON score_events (board, period, username, delta)",
            "CREATE INDEX score_events_username ON score_events (username)",
        ),
    ),
    *LATER_MIGRATIONS,
)

SCHEMA_VERSION: Final = MIGRATIONS[-1].version
