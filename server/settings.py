"""Every setting of the service, read once from the environment (and `.env`), in one object."""

from __future__ import annotations

import enum
import ipaddress
import secrets
from datetime import timedelta
from functools import cached_property
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from store.boards import Board, parse_boards
from store.rate_limits import Rate, parse_rate

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///leaderboard.db"


class AckMode(enum.Enum):
    """When a mutation answers: once Redis has applied it, or once MySQL has committed it too."""

    BUFFERED = "buffered"
    PERSISTED = "persisted"


class LogFormat(enum.Enum):
    """How log lines are written."""

    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """The service's configuration: `LEADERBOARD_*` environment variables, or a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="LEADERBOARD_", env_file=".env", extra="ignore", frozen=True
    )

    redis_url: str = ""
    """Empty: the embedded in-process ranking store."""
    redis_cluster: bool = False
    """Treat `redis_url` as the seed of a Redis Cluster (any one node; the rest is discovered)."""
    database_url: str = ""
    """A `databases` URL; empty: SQLite at ./leaderboard.db."""
    database_read_url: str = ""
    """A read replica for history reads (recovery, reconcile); empty: `database_url`."""
    write_token: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Comma-separated tokens accepted for mutations (several, to rotate); empty: one is made."""
    admin_token: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Comma-separated tokens accepted for admin operations (boards at run time); they may
    also write. Empty: admin operations are refused (never open; none is generated)."""
    boards_spec: str = Field("global:monthly", validation_alias="LEADERBOARD_BOARDS")
    max_boards: int = Field(1_000, ge=1, le=1_000_000)
    """Most boards the `boards` table may hold (createLeaderboard refuses more)."""
    boards_reload_seconds: float = Field(1.0, gt=0, le=3_600)
    """How often each instance re-reads the `boards` table: the safety net for a lost
    notice, so a board created elsewhere is served within this time."""
    flush_interval_ms: int = Field(100, ge=1, le=60_000)
    flush_max_events: int = Field(500, ge=1, le=10_000)
    flush_catch_up_events: int = Field(5_000, ge=1, le=100_000)
    """Most events one flush writes when more than `flush_max_events` are waiting (at least
    `flush_max_events`)."""
    max_buffered_events: int = Field(100_000, ge=1)
    max_delta: int = Field(1_000_000, ge=1, le=2**53 - 1)
    key_prefix: str = Field("lb", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    retention_days: int = Field(35, ge=0)
    """How long a finished period stays in Redis; older ones are read back from the history."""
    event_id_window_seconds: int = Field(86_400, ge=1, le=366 * 86_400)
    """The idempotency window: a client eventId is remembered at least this long (at most
    twice as long) and then forgotten, whatever the board's period; a replay within it is
    not applied again. Redis memory for eventIds is rate x 1..2 windows
    (docs/scaling.md)."""
    event_retention_days: int | None = Field(None, ge=1)
    """Raw history rows of final periods that ended more than this many days ago are
    deleted by `leaderboard archive` (archived ones too); unset: kept forever. At least
    `retention_days`: an erasure finds the past rankings still in Redis by the rows."""
    rebuild_claim_seconds: float = Field(60.0, gt=0)
    """Expiry of a rebuild claim, so a crashed rebuilder does not block the others forever."""
    rebuild_wait_seconds: float = Field(30.0, gt=0)
    """How long a request waits for another instance's rebuild before answering UNAVAILABLE."""
    heartbeat_seconds: float = Field(0.5, gt=0, le=60)
    """How often each instance beats in the instance registry (Redis) and looks for a
    rebuild fence to pass: a rebuild's fence takes about one beat."""
    heartbeat_timeout_seconds: float = Field(5.0, gt=0, le=3_600)
    """An instance that has not beaten for this long is dead: fences stop waiting for it
    and one survivor reconciles the board periods it may not have flushed. Also how long
    a fence waits, after Redis lost its data, for instances to register again."""
    drain_timeout_seconds: float = Field(30.0, gt=0)
    ack: AckMode = AckMode.BUFFERED
    resync_interval_seconds: float = Field(5.0, gt=0)
    top_cache_staleness_ms: int = Field(100, ge=0, le=60_000)
    """topPlayers answers may be served from a per-instance snapshot at most this old
    (refreshed early by change events and this instance's own writes); 0: no cache."""
    max_query_depth: int = Field(8, ge=2)
    max_aliases: int = Field(30, ge=1)
    max_query_tokens: int = Field(2_000, ge=50)
    max_field_repeats: int = Field(10, ge=1)
    """How often one response name may be selected in one selection set (validation of
    repeats is quadratic: 495 repeats cost 0.85 s of CPU)."""
    big_document_chars: int = Field(2_048, ge=1)
    """Documents longer than this many characters are parsed, validated and executed one
    at a time per instance, and the hot operations' shortcut does not look at them: the
    API's own operations are under 1 KB, and a big document's parse (graphql-core lexes
    comments and strings a character at a time) blocks the event loop, so 8 clients
    sending cap-size documents get one parse at a time, not 8 (docs/security.md)."""
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Time a client has to send a request's head (slowloris); then it is disconnected."""
    body_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Time a client has to send a request's body once it starts reading; then 408."""
    max_batch_increments: int = Field(1000, ge=1, le=10_000)
    max_websocket_connections: int = Field(5_000, ge=1)
    """WebSocket connections one instance accepts; more are refused until some close."""
    max_subscriptions_per_connection: int = Field(20, ge=1)
    websocket_init_timeout_seconds: float = Field(10.0, gt=0)
    """How long a WebSocket may stay open without its GraphQL connection_init."""
    websocket_compression: bool = False
    """Accept permessage-deflate when a client offers it (browsers do): about 40 KiB of zlib
    state per connection for messages of a few hundred bytes; see docs/performance.md."""
    rate_limit_reads: Rate | None = None
    """Requests one client address may make (`100/s burst 200`, `off`); see docs/security.md.
    Off by default: who "one client" is depends on `trusted_proxies` (behind a proxy not
    listed there, every client shares the proxy's address and would share one limit)."""
    rate_limit_writes: Rate | None = None
    """Requests one write token may make (mutations, and anything else it sends); off by
    default: the token's holder is the operator's own backend."""
    trusted_proxies: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = (ipaddress.ip_network("127.0.0.1"),)
    """Comma-separated addresses or CIDRs of the proxies in front (nginx); a request from
    one of them is counted (and logged) as the client its `X-Forwarded-For` names. The
    default is uvicorn's own; empty: trust no proxy."""
    introspection: bool = True
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    # Seasons (docs/seasons.md)
    seasons_tick_seconds: float = Field(0.5, gt=0, le=60)
    """How often each instance records its flushed-through watermark and looks for ended
    periods to finalize."""
    seasons_settle_seconds: float = Field(30.0, gt=0)
    """An instance whose heartbeat is older than this is gone: a period's result stops
    waiting for its watermark (what it had not written is lost with it)."""
    seasons_claim_seconds: float = Field(300.0, gt=0)
    """The lease of the claim to compute a period's result; another instance takes over
    when it expires."""
    webhook_url: str = ""
    """Where each PeriodResult is POSTed (signed, at least once); empty: no webhook."""
    webhook_secret: SecretStr | None = None
    """The HMAC-SHA256 key of `X-Leaderboard-Signature`; required with a webhook URL."""
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """One delivery attempt's time limit (connect, send, answer)."""
    webhook_retry_initial_seconds: float = Field(1.0, gt=0)
    """Wait after the first failed attempt; doubled after each failure."""
    webhook_retry_max_seconds: float = Field(900.0, gt=0)
    """Longest wait between attempts."""
    webhook_retry_window_seconds: float = Field(3 * 86_400.0, ge=86_400)
    """How long a result is retried before it is abandoned (at least 24 h)."""
    webhook_poll_seconds: float = Field(1.0, gt=0, le=60)
    """How often each instance looks for due deliveries in the outbox."""

    @field_validator("write_token", "admin_token", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(token.strip() for token in value.split(",") if token.strip())
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("rate_limit_reads", "rate_limit_writes", mode="before")
    @classmethod
    def _parse_rate(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            try:
                return parse_rate(value)
            except ValueError as error:
                raise ValueError(f"LEADERBOARD_{str(info.field_name).upper()}: {error}") from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(
                    ipaddress.ip_network(proxy.strip())
                    for proxy in value.split(",")
                    if proxy.strip()
                )
            except ValueError as error:
                raise ValueError(f"LEADERBOARD_TRUSTED_PROXIES: {error}") from None
        return value

    @field_validator("boards_spec")
    @classmethod
    def _check_boards(cls, value: str) -> str:
        parse_boards(value)
        return value

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Settings:
        if self.heartbeat_timeout_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                "LEADERBOARD_HEARTBEAT_TIMEOUT_SECONDS must be at least twice "
                "LEADERBOARD_HEARTBEAT_SECONDS (one late beat is not a death)"
            )
        return self

    @model_validator(mode="after")
    def _check_event_retention(self) -> Settings:
        if self.event_retention_days is not None and self.event_retention_days < max(
            1, self.retention_days
        ):
            raise ValueError(
                "LEADERBOARD_EVENT_RETENTION_DAYS must be at least LEADERBOARD_RETENTION_DAYS: "
                "an erasure finds the past periods Redis still holds by their history rows"
            )
        return self

    @model_validator(mode="after")
    def _check_read_replica(self) -> Settings:
        if self.database_read_url and not self.database_url.startswith("mysql"):
            raise ValueError(
                "LEADERBOARD_DATABASE_READ_URL is a MySQL read replica: it needs "
                "LEADERBOARD_DATABASE_URL to name the MySQL primary"
            )
        return self

    @model_validator(mode="after")
    def _check_webhook(self) -> Settings:
        if self.webhook_url:
            if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
                raise ValueError(
                    "LEADERBOARD_WEBHOOK_URL is set: LEADERBOARD_WEBHOOK_SECRET is required "
                    "(the receiver checks the HMAC-SHA256 signature made with it)"
                )
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError("LEADERBOARD_WEBHOOK_URL must be an http:// or https:// URL")
        return self

    @cached_property
    def boards(self) -> tuple[Board, ...]:
        """The configured boards; `global` (monthly) always among them."""
        return parse_boards(self.boards_spec)

    @cached_property
    def write_tokens(self) -> tuple[str, ...]:
        """Tokens accepted for mutations; a random one when none is configured."""
        if self.write_token:
            return tuple(token.get_secret_value() for token in self.write_token)
        return (secrets.token_urlsafe(32),)

    @cached_property
    def admin_tokens(self) -> tuple[str, ...]:
        """Tokens accepted for admin operations; none unless configured."""
        return tuple(token.get_secret_value() for token in self.admin_token)

    @property
    def token_was_generated(self) -> bool:
        """Whether the write token was made up at start (and must be shown to the operator)."""
        return not self.write_token

    @property
    def history_url(self) -> str:
        """The history database URL, the embedded SQLite file when unset."""
        return self.database_url or EMBEDDED_DATABASE_URL

    @property
    def flush_interval(self) -> float:
        """Seconds between flushes of the write buffer."""
        return self.flush_interval_ms / 1000

    @property
    def event_id_window(self) -> timedelta:
        """How long a client eventId is remembered at least."""
        return timedelta(seconds=self.event_id_window_seconds)

    @property
    def retention(self) -> timedelta:
        """How long a finished period stays in the live store."""
        return timedelta(days=self.retention_days)
