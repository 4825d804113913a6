"""Log lines as text or JSON (`LEADERBOARD_LOG_FORMAT`), each with the request id it belongs to.

One `logging.config.dictConfig` configuration serves every process: the command line
applies it itself, and `leaderboard serve` hands it to uvicorn (`log_config`), which
applies it again in each worker process, so the service's loggers, uvicorn's server log
and its access log all write through the same formatter to stderr.

The request id lives in a context variable set by the HTTP guard (server/http_guard.py) for
the duration of one HTTP request or WebSocket connection; tasks started meanwhile inherit it.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from server.settings import LogFormat

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request (or WebSocket connection) being served; None outside one."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

_ACCESS_LOGGER: Final = "uvicorn.access"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is
# written as a field of its own. uvicorn's `color_message` repeats the message with colours.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime", "request_id", "color_message"}

# uvicorn's access log record: '%s - "%s %s HTTP/%s" %d' over these values.
_ACCESS_FIELDS: Final = ("client", "method", "path", "http_version", "status")


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`; `-` in place of the id outside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = request_id.get() or "-"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, pid, request_id, extras.

    uvicorn's access lines also get their parts as fields (client, method, path,
    http_version, status), so log shippers need not parse the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            # Several worker processes write to the same stream.
            "pid": record.process,
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        if (
            record.name == _ACCESS_LOGGER
            and isinstance(record.args, tuple)
            and len(record.args) == len(_ACCESS_FIELDS)
        ):
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra of any type is written rather than losing the line.
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """The `dictConfig` of every process: root, uvicorn and its access log to stderr."""
    formatter = JsonFormatter if log_format is LogFormat.JSON else TextFormatter
    return {
        "version": 1,
        # Module loggers (`logging.getLogger(__name__)`) exist before this runs: keep them.
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's own configuration gives its loggers handlers of their own; ours
        # removes them, so its lines reach the root handler (and its formatter) instead.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", _ACCESS_LOGGER)
        },
    }


def configure_logging(log_format: LogFormat, level: str) -> None:
    """Log to stderr in the given format and level; Python warnings included."""
    logging.config.dictConfig(logging_config(log_format, level))
    logging.captureWarnings(True)
