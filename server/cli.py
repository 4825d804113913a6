"""The `leaderboard` command: serve, migrate, rebuild, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import uvicorn

from schema.build import SDL_PATH, write_sdl
from server.resources import open_history, open_recovery
from server.settings import LogFormat, Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    """Log to stderr as text or JSON, at the configured level."""
    handler = logging.StreamHandler()
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


def serve(settings: Settings, host: str, port: int, workers: int) -> int:
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
    where = "embedded store" if not settings.redis_url else "Redis"
    history = "SQLite" if settings.history_url.startswith("sqlite") else "MySQL"
    print(f"leaderboard: serving on http://{host}:{port}/graphql ({where} + {history})")
    print(f"leaderboard: GraphiQL at http://{host}:{port}/graphql in a browser")
    if settings.token_was_generated:
        print(
            f"leaderboard: write token (generated; set LEADERBOARD_WRITE_TOKEN to fix it): "
            f"{settings.write_tokens[0]}"
        )
    sys.stdout.flush()
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        # A WebSocket message is a GraphQL document too: the same bound as an HTTP body.
        ws_max_size=settings.max_body_bytes,
    )
    return 0


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
    periods = _board_periods(settings, [board_id], period, "rebuild")
    if periods is None:
        return 2
    ((board, board_period),) = periods
    async with open_recovery(settings) as recovery:
        players = await recovery.rebuild(board, board_period)
    print(f"leaderboard: rebuilt {board}/{board_period} from the history: {players} players")
    return 0


async def reconcile(settings: Settings, board_ids: Sequence[str], period: str | None) -> int:
    """Repair drift between the live rankings and the history (history wins); print it."""
    periods = _board_periods(settings, board_ids, period, "reconcile")
    if periods is None:
        return 2
    corrected = 0
    async with open_recovery(settings) as recovery:
        for board, board_period in periods:
            drifts = await recovery.reconcile(board, board_period)
            for drift in drifts:
                print(
                    f"{board}/{board_period}: {drift.username}: live {drift.live} "
                    f"-> history {drift.history}"
                )
            print(f"leaderboard: {board}/{board_period}: {len(drifts)} players corrected")
            corrected += len(drifts)
    print(f"leaderboard: reconcile done, {corrected} players corrected")
    return 0


def _board_periods(
    settings: Settings, board_ids: Sequence[str], period: str | None, command: str
) -> list[tuple[str, str]] | None:
    """The (board, period) pairs a repair command works on (no board ids: every board), or
    None after printing why the arguments cannot be served."""
    if not settings.redis_url:
        print(
            f"error: {command} needs LEADERBOARD_REDIS_URL: the embedded store is rebuilt at "
            "every start",
            file=sys.stderr,
        )
        return None
    boards = [board for board in settings.boards if not board_ids or board.id in board_ids]
    unknown = set(board_ids) - {board.id for board in boards}
    if unknown:
        known = ", ".join(board.id for board in settings.boards)
        print(
            f"error: unknown board {', '.join(sorted(unknown))} (configured: {known})",
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


def parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    main = argparse.ArgumentParser(
        prog="leaderboard",
        description="Real-time game leaderboards over GraphQL. Configured by LEADERBOARD_* "
        "environment variables (see the README).",
    )
    commands = main.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="run the service (migrates first)")
    serve_command.add_argument("--host", default="127.0.0.1")
    serve_command.add_argument("--port", type=int, default=8000)
    serve_command.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="create or upgrade the history tables")
    rebuild_command = commands.add_parser(
        "rebuild", help="rebuild a board's live ranking in Redis from the history"
    )
    rebuild_command.add_argument("--board", required=True)
    rebuild_command.add_argument("--period", default=None, help="default: the current period")
    reconcile_command = commands.add_parser(
        "reconcile",
        help="find drift between Redis and the history (after a crash) and repair Redis",
    )
    reconcile_command.add_argument(
        "--board", action="append", default=[], help="repeatable; default: every board"
    )
    reconcile_command.add_argument("--period", default=None, help="default: the current period")
    export_command = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export_command.add_argument("--output", default=str(SDL_PATH))
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leaderboard` console script."""
    arguments = parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings)
    match arguments.command:
        case "serve":
            return serve(settings, arguments.host, arguments.port, arguments.workers)
        case "migrate":
            return asyncio.run(migrate(settings))
        case "rebuild":
            return asyncio.run(rebuild(settings, arguments.board, arguments.period))
        case "reconcile":
            return asyncio.run(reconcile(settings, arguments.board, arguments.period))
        case "export-schema":
            print(f"leaderboard: wrote {write_sdl(Path(arguments.output))}")
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
