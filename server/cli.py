"""The `leaderboard` command: serve, migrate, rebuild, reconcile, archive, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from schema.build import SDL_PATH, write_sdl
from server import archive_command
from server.http_timeouts import HEADER_TIMEOUT_VARIABLE
from server.logs import configure_logging, logging_config
from server.resources import open_history, open_recovery
from server.settings import LogFormat, Settings
from store.boards import Board
from store.errors import StoreUnavailable
from store.recovery import RepairProgress

logger = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int, workers: int, access_log: bool) -> int:
    """Run the service under uvicorn until SIGTERM/SIGINT, then drain and exit."""
    if workers > 1 and not settings.redis_url:
        print(
            "error: --workers > 1 needs LEADERBOARD_REDIS_URL: the embedded ranking store "
            "lives inside one process",
            file=sys.stderr,
        )
        return 2
    if settings.token_was_generated:
        # Every worker must accept the same token: hand the generated one down to them.
        os.environ["LEADERBOARD_WRITE_TOKEN"] = settings.write_tokens[0]
    # Read by the HTTP protocol uvicorn builds in each worker (server/http_timeouts.py).
    os.environ[HEADER_TIMEOUT_VARIABLE] = str(settings.header_timeout_seconds)
    _announce(settings, host, port)
    uvicorn.run(
        "server.app:create_serving_app",
        factory=True,
        # The app's __call__ is a plain function returning a coroutine (server/app.py,
        # ServiceApp): "auto" would take it for ASGI 2.
        interface="asgi3",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools with a deadline for each request head (uvicorn has none).
        http="server.http_timeouts:HeadTimeoutProtocol",
        # uvicorn's own WebSocket protocol, letting go of the handshake once it is sent.
        ws="server.websocket_protocol:LeanWebSocketProtocol",
        lifespan="on",
        # uvicorn applies it in every worker process it starts, so all of them log alike.
        log_config=logging_config(settings.log_format, settings.log_level),
        log_level=settings.log_level.lower(),
        access_log=access_log,
        timeout_graceful_shutdown=5,
        # A WebSocket message is a GraphQL document too: the same bound as an HTTP body.
        ws_max_size=settings.max_body_bytes,
        # Off unless asked for: a compressor and a decompressor per connection (zlib state,
        # ~40 KiB) doubled the memory of an idle subscriber to save bytes on messages of a
        # few hundred bytes (docs/performance.md, "Memory per WebSocket subscriber").
        ws_per_message_deflate=settings.websocket_compression,
        # X-Forwarded-For is read by the app itself, from LEADERBOARD_TRUSTED_PROXIES.
        proxy_headers=False,
    )
    return 0


def _announce(settings: Settings, host: str, port: int) -> None:
    """Say where the service listens, and the write token when one was generated.

    Plain lines on stdout for a person; log records in JSON mode, so that every line the
    process writes is JSON for the log shipper.
    """
    where = "embedded store" if not settings.redis_url else "Redis"
    history = "SQLite" if settings.history_url.startswith("sqlite") else "MySQL"
    lines = [
        (
            logging.INFO,
            f"leaderboard: serving on http://{host}:{port}/graphql ({where} + {history})",
        ),
        (logging.INFO, f"leaderboard: GraphiQL at http://{host}:{port}/graphql in a browser"),
        (
            logging.INFO,
            f"leaderboard: live overlay at http://{host}:{port}/overlay/global in a browser",
        ),
    ]
    if settings.token_was_generated:
        # A warning: it must show at any log level, and a fixed token belongs in production.
        lines.append(
            (
                logging.WARNING,
                "leaderboard: write token (generated; set LEADERBOARD_WRITE_TOKEN to fix it): "
                f"{settings.write_tokens[0]}",
            )
        )
    for level, line in lines:
        if settings.log_format is LogFormat.JSON:
            logger.log(level, line)
        else:
            print(line)
    sys.stdout.flush()


async def migrate(settings: Settings) -> int:
    """Create or upgrade the history tables."""
    history = open_history(settings)
    await history.connect()
    try:
        await history.migrate()
    finally:
        await history.close()
    print("leaderboard: history tables are up to date")
    return 0


async def rebuild(settings: Settings, board_id: str, period: str | None) -> int:
    """Rebuild one board period's live ranking from the history."""
    if not _has_redis(settings, "rebuild"):
        return 2
    async with open_recovery(settings) as (recovery, boards):
        periods = _board_periods(boards, [board_id], period)
        if periods is None:
            return 2
        ((board, board_period),) = periods
        with _progress_bars() as bars:
            steps = _steps(bars, f"{board}/{board_period}")
            players = await recovery.rebuild(board, board_period, steps)
    print(f"leaderboard: rebuilt {board}/{board_period} from the history: {players} players")
    return 0


async def reconcile(settings: Settings, board_ids: Sequence[str], period: str | None) -> int:
    """Repair drift between the live rankings and the history (history wins); print it."""
    if not _has_redis(settings, "reconcile"):
        return 2
    corrected = 0
    async with open_recovery(settings) as (recovery, boards):
        periods = _board_periods(boards, board_ids, period)
        if periods is None:
            return 2
        with _progress_bars() as bars:
            overall = bars.add_task("boards", total=len(periods))
            for board, board_period in periods:
                steps = _steps(bars, f"{board}/{board_period}")
                drifts = await recovery.reconcile(board, board_period, steps)
                for drift in drifts:
                    print(
                        f"{board}/{board_period}: {drift.username}: live {drift.live} "
                        f"-> history {drift.history}"
                    )
                print(f"leaderboard: {board}/{board_period}: {len(drifts)} players corrected")
                corrected += len(drifts)
                bars.advance(overall)
    print(f"leaderboard: reconcile done, {corrected} players corrected")
    return 0


@contextlib.contextmanager
def _progress_bars() -> Iterator[Progress]:
    """Progress bars on stderr while a repair runs; nothing unless stderr is a terminal,
    so scripts and log files get only the result lines on stdout."""
    console = Console(stderr=True)
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    with bars:
        yield bars


def _steps(bars: Progress, label: str) -> RepairProgress:
    """A bar for one board period, advanced by the repair's progress reports."""
    task: TaskID = bars.add_task(label, total=None)

    def report(what: str, done: int, total: int) -> None:
        bars.update(task, description=f"{label}: {what}", completed=done, total=total)

    return report


def _has_redis(settings: Settings, command: str) -> bool:
    """Whether the repair commands apply (a Redis store); else print why not."""
    if not settings.redis_url:
        print(
            f"error: {command} needs LEADERBOARD_REDIS_URL: the embedded store is rebuilt at "
            "every start",
            file=sys.stderr,
        )
        return False
    return True


def _board_periods(
    every_board: Sequence[Board], board_ids: Sequence[str], period: str | None
) -> list[tuple[str, str]] | None:
    """The (board, period) pairs a repair command works on (no board ids: every board,
    declared or created at run time), or None after printing why the arguments cannot be
    served."""
    boards = [board for board in every_board if not board_ids or board.id in board_ids]
    unknown = set(board_ids) - {board.id for board in boards}
    if unknown:
        known = ", ".join(board.id for board in every_board)
        print(
            f"error: unknown board {', '.join(sorted(unknown))} (known: {known})",
            file=sys.stderr,
        )
        return None
    pairs = []
    for board in boards:
        board_period = period or board.current_period()
        if not board.is_valid_period(board_period):
            print(
                f"error: {board_period!r} is not a period of {board.id!r} ({board.reset.value})",
                file=sys.stderr,
            )
            return None
        pairs.append((board.id, board_period))
    return pairs


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written: they hold lists."""


_MAIN_DESCRIPTION = """\
Real-time game leaderboards over GraphQL: live rankings in Redis sorted sets, the durable
score history in MySQL (or, with neither configured, an in-process store and SQLite).
"""

_MAIN_EPILOG = """\
configuration:
  Every setting is a LEADERBOARD_* environment variable (or a line of a .env file in the
  working directory); the README lists them all. The most used:
    LEADERBOARD_REDIS_URL      Redis of the live rankings (empty: embedded store)
    LEADERBOARD_DATABASE_URL   the history: mysql+aiomysql://user:pass@host:3306/db
                               (empty: sqlite+aiosqlite:///leaderboard.db)
    LEADERBOARD_WRITE_TOKEN    token(s) mutations need (empty: one is generated)
    LEADERBOARD_BOARDS         id:reset pairs, e.g. global:monthly,arena:daily
    LEADERBOARD_LOG_FORMAT     text or json (one JSON object per line)
    LEADERBOARD_LOG_LEVEL      DEBUG, INFO, WARNING, ERROR

Run `leaderboard COMMAND --help` for what a command does and its options.
Exit status: 0 done, 2 bad arguments or configuration, 1 a failure (a store unreachable).
"""

_SERVE_DESCRIPTION = """\
Run the service: GraphQL over HTTP and WebSocket on /graphql (GraphiQL in a browser),
/healthz, /readyz and Prometheus /metrics. It migrates the history tables, rebuilds the
current periods' rankings when Redis lost them, and waits up to a minute for the stores
at start. SIGTERM or Ctrl-C stops it gracefully: the write buffer is drained to the
history first (up to LEADERBOARD_DRAIN_TIMEOUT_SECONDS).
"""

_SERVE_EPILOG = """\
Logs go to stderr (LEADERBOARD_LOG_FORMAT, LEADERBOARD_LOG_LEVEL), each line with the id
of the request it belongs to (X-Request-ID). Access lines are logged at INFO: pass
--no-access-log, or set LEADERBOARD_LOG_LEVEL=WARNING, to leave them out.
"""

_MIGRATE_DESCRIPTION = """\
Create the history tables, or upgrade them to this version's schema, in the database of
LEADERBOARD_DATABASE_URL. Safe to run any number of times, also from several processes at
once; `serve` does it too.
"""

_REBUILD_DESCRIPTION = """\
Rebuild one board period's live ranking in Redis from the history (MySQL): every player's
total and the client event ids already applied (so retries stay idempotent). The running
instances keep serving; the ranking is replaced in one step at the end. Use it when Redis
and MySQL disagree for a known board, e.g. after MySQL got events Redis lost.
Needs LEADERBOARD_REDIS_URL.
"""

_RECONCILE_DESCRIPTION = """\
After a crash or a Redis failover: compare each board period's live ranking with the
history, print every player whose totals differ (live -> history), and rebuild the
rankings that differ from the history, which is the truth. Run it while the boards are
quiet: events acknowledged but not yet written to the history count as drift.
Needs LEADERBOARD_REDIS_URL.
"""

_PROGRESS_EPILOG = "A progress bar is shown on stderr when it is a terminal."

_EXPORT_DESCRIPTION = """\
Write the GraphQL schema (SDL) this version serves, for clients and code generators.
"""


def parser() -> argparse.ArgumentParser:
    """The command line's grammar, with the help of every command and option."""
    main = argparse.ArgumentParser(
        prog="leaderboard",
        description=_MAIN_DESCRIPTION,
        epilog=_MAIN_EPILOG,
        formatter_class=_HelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_command = commands.add_parser(
        "serve",
        help="run the service (migrates first)",
        description=_SERVE_DESCRIPTION,
        epilog=_SERVE_EPILOG,
        formatter_class=_HelpFormatter,
    )
    serve_command.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    serve_command.add_argument(
        "--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)"
    )
    serve_command.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port; more than 1 needs LEADERBOARD_REDIS_URL "
        "(default: %(default)s)",
    )
    serve_command.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per HTTP request, at INFO (default: on)",
    )

    commands.add_parser(
        "migrate",
        help="create or upgrade the history tables",
        description=_MIGRATE_DESCRIPTION,
        formatter_class=_HelpFormatter,
    )

    rebuild_command = commands.add_parser(
        "rebuild",
        help="rebuild a board's live ranking in Redis from the history",
        description=_REBUILD_DESCRIPTION,
        epilog=_PROGRESS_EPILOG,
        formatter_class=_HelpFormatter,
    )
    rebuild_command.add_argument(
        "--board",
        required=True,
        help="id of the board (declared in LEADERBOARD_BOARDS or created at run time)",
    )
    rebuild_command.add_argument(
        "--period",
        default=None,
        help="period id, e.g. 2026-11, 2026-W48, 2026-11-23 or all (default: the current one)",
    )

    reconcile_command = commands.add_parser(
        "reconcile",
        help="find drift between Redis and the history (after a crash) and repair Redis",
        description=_RECONCILE_DESCRIPTION,
        epilog=_PROGRESS_EPILOG,
        formatter_class=_HelpFormatter,
    )
    reconcile_command.add_argument(
        "--board",
        action="append",
        default=[],
        help="id of a board to check; repeat for several (default: every board)",
    )
    reconcile_command.add_argument(
        "--period",
        default=None,
        help="period id, checked on every board given (default: each board's current one)",
    )

    archive_command.add_parser(commands)

    export_command = commands.add_parser(
        "export-schema",
        help="write the GraphQL SDL",
        description=_EXPORT_DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    export_command.add_argument(
        "--output",
        default=str(SDL_PATH),
        help="file to write, replaced when it exists (default: %(default)s)",
    )
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leaderboard` console script."""
    arguments = parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        match arguments.command:
            case "serve":
                return serve(
                    settings,
                    arguments.host,
                    arguments.port,
                    arguments.workers,
                    arguments.access_log,
                )
            case "migrate":
                return asyncio.run(migrate(settings))
            case "rebuild":
                return asyncio.run(rebuild(settings, arguments.board, arguments.period))
            case "reconcile":
                return asyncio.run(reconcile(settings, arguments.board, arguments.period))
            case "archive":
                return asyncio.run(
                    archive_command.archive(
                        settings, arguments.before, arguments.batch_rows, compact=arguments.compact
                    )
                )
            case "export-schema":
                print(f"leaderboard: wrote {write_sdl(Path(arguments.output))}")
                return 0
    except StoreUnavailable as error:
        # An operator's mistake or an outage, not a bug: the reason, without a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
