"""Opening and closing everything the service runs on, in order, from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from batcher import WriteBatcher
from resolvers.auth import WriteTokens
from resolvers.boards import BoardAdmin
from resolvers.instances import InstanceObserver, Instances, unload_and_rebuild
from resolvers.live import LiveRankings
from resolvers.moderation import PlayerModeration
from resolvers.seasons import Seasons
from resolvers.service import LeaderboardService
from server.metrics import Metrics
from server.rate_limit import RateLimits
from server.settings import AckMode, Settings
from server.webhook import WebhookSender
from store.ban_registry import BanRegistry
from store.board_notices import BoardNotices, NoNotices, RedisBoardNotices
from store.board_registry import BoardRegistry, board_of
from store.boards import Board, BoardIndex
from store.cached_ranking import TopCache
from store.embedded_profiles import InProcessProfileCache
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import StoreUnavailable
from store.observer import StoreObserver
from store.period_notices import InProcessPeriodNotices, PeriodNotices, RedisPeriodNotices
from store.ports import RankingStore, ScoreHistory, TopFront
from store.profiles import PlayerProfiles
from store.recovery import RankingRecovery, RebuildObserver
from store.redis import RedisRankingStore
from store.sql import SqlScoreHistory

logger = logging.getLogger(__name__)

_STARTUP_RETRY_SECONDS = 1.0


@dataclass
class Resources:
    """The running components of one service process."""

    settings: Settings
    ranking: RankingStore
    """The live ranking store: every call but those sent through `top_cache`."""
    history: ScoreHistory
    batcher: WriteBatcher
    recovery: RankingRecovery
    service: LeaderboardService
    live: LiveRankings
    tokens: WriteTokens
    rate_limits: RateLimits
    registry: BoardRegistry
    board_admin: BoardAdmin
    metrics: Metrics = field(default_factory=Metrics)
    started: bool = False
    seasons: Seasons | None = None
    webhook: WebhookSender | None = None
    bans: BanRegistry | None = None
    moderation: PlayerModeration | None = None
    instances: Instances | None = None
    top_cache: TopCache | None = None
    """The per-instance top() cache in front of `ranking`'s `TopFront`, when enabled."""


def open_ranking(
    settings: Settings,
    observer: StoreObserver | None = None,
    boards: Sequence[Board] | None = None,
) -> RankingStore:
    """The live ranking store the settings name: Redis, or the embedded one; serving
    `boards` (a registry's shared index) or else the declared boards."""
    boards = settings.boards if boards is None else boards
    if settings.redis_url:
        return RedisRankingStore.from_url(
            settings.redis_url,
            key_prefix=settings.key_prefix,
            boards=boards,
            retention=settings.retention,
            cluster=settings.redis_cluster,
            observer=observer,
            event_id_window=settings.event_id_window,
        )
    return EmbeddedRankingStore(
        boards=boards, event_id_window_seconds=settings.event_id_window_seconds
    )


def cache_top(settings: Settings, ranking: TopFront) -> TopCache | None:
    """The per-instance top() cache in front of the ranking store, when the settings enable it.

    Redis only: the embedded store's top() is already a read of this process's memory.
    """
    if settings.top_cache_staleness_ms == 0 or not settings.redis_url:
        return None
    return TopCache(ranking, settings.top_cache_staleness_ms / 1000)


def open_profiles(history: SqlScoreHistory, ranking: RankingStore) -> PlayerProfiles:
    """Player profiles in the history database, cached on the ranking store's Redis (or in
    process when embedded)."""
    if isinstance(ranking, RedisRankingStore):
        return PlayerProfiles(history.profile_table(), ranking.profile_cache())
    return PlayerProfiles(history.profile_table(), InProcessProfileCache())


def open_history(settings: Settings, observer: StoreObserver | None = None) -> SqlScoreHistory:
    """The score history the settings name: MySQL, or the embedded SQLite file."""
    return SqlScoreHistory(
        settings.history_url,
        read_url=settings.database_read_url,
        observer=observer,
    )


def make_recovery(
    settings: Settings,
    ranking: RankingStore,
    history: ScoreHistory,
    observer: RebuildObserver | None = None,
    boards: Sequence[Board] | None = None,
    instances: Instances | None = None,
    top_cache: TopCache | None = None,
) -> RankingRecovery:
    """Recovery of the live rankings from the history, with the configured timings, for
    `boards` (a registry's shared index) or else the declared boards; its loads wait for
    the fence of `instances` and go through `top_cache` when there is one."""
    return RankingRecovery(
        ranking,
        history,
        claim_seconds=settings.rebuild_claim_seconds,
        wait_seconds=settings.rebuild_wait_seconds,
        fence=None if instances is None else instances.fence,
        observer=observer,
        boards=settings.boards if boards is None else boards,
        loads=top_cache,
        event_id_window_seconds=settings.event_id_window_seconds,
    )


def make_instances(
    settings: Settings,
    ranking: RankingStore,
    batcher: WriteBatcher | None,
    observer: InstanceObserver | None = None,
) -> Instances:
    """This process in the instance registry on the ranking's Redis (none when embedded:
    the fence is then the batcher's barrier alone). Without a batcher (the repair
    commands) it only asks for fences and waits for the serving instances."""
    registry = ranking.instances() if isinstance(ranking, RedisRankingStore) else None
    return Instances(
        registry,
        batcher,
        heartbeat_seconds=settings.heartbeat_seconds,
        timeout_seconds=settings.heartbeat_timeout_seconds,
        fence_wait_seconds=settings.rebuild_wait_seconds,
        observer=observer,
    )


@contextlib.asynccontextmanager
async def open_recovery(
    settings: Settings,
) -> AsyncIterator[tuple[RankingRecovery, BoardIndex]]:
    """Both stores connected and a recovery over them, for the repair commands (their
    loads wait for the serving instances' fence); with every board: the declared ones and
    those of the `boards` table (created at run time), the table's row winning as it does
    when serving."""
    history = open_history(settings)
    ranking: RankingStore | None = None
    try:
        await history.connect()
        # As `serve` does: the boards table must exist to be read (a no-op when up to date).
        await history.migrate()
        boards = BoardIndex(settings.boards)
        for spec, _ in await history.board_table().all():
            boards.put(board_of(spec))
        ranking = open_ranking(settings, boards=boards)
        instances = make_instances(settings, ranking, None)
        yield make_recovery(settings, ranking, history, boards=boards, instances=instances), boards
    finally:
        await history.close()
        if ranking is not None:
            await ranking.close()


def board_notices(settings: Settings, channel: str = "boards") -> BoardNotices:
    """How board changes (or, on channel "bans", bans) reach the other instances: Redis
    pub/sub, or nothing when embedded."""
    if settings.redis_url:
        return RedisBoardNotices(settings.redis_url, f"{settings.key_prefix}:{channel}")
    return NoNotices()


def period_notices(settings: Settings) -> PeriodNotices:
    """How period results reach every instance: Redis pub/sub, or in-process when embedded."""
    if settings.redis_url:
        return RedisPeriodNotices(settings.redis_url, f"{settings.key_prefix}:period-ended")
    return InProcessPeriodNotices()


def build_resources(
    settings: Settings, metrics: Metrics | None = None, clock: Callable[[], float] = time.time
) -> Resources:
    """Wire the components together (nothing is connected yet). `clock` (Unix seconds)
    decides the live period and when periods end; tests move it by hand."""
    metrics = metrics or Metrics()
    history = open_history(settings, observer=metrics)
    registry = BoardRegistry(
        history.board_table(),
        board_notices(settings),
        settings.boards,
        reload_seconds=settings.boards_reload_seconds,
    )
    # Every component serves the registry's index: a board created at run time reaches all.
    boards = registry.index
    records = history.player_records()
    # The ban reload shares the boards' interval: both bound how soon every instance obeys.
    bans = BanRegistry(
        records, board_notices(settings, "bans"), reload_seconds=settings.boards_reload_seconds
    )
    ranking = open_ranking(settings, observer=metrics, boards=boards)
    top_cache = cache_top(settings, ranking)
    # What can change a top goes through the cache when there is one (`TopFront`): top
    # reads, writes, loads, moderation, and the change feed the live updates follow.
    front: TopFront = ranking if top_cache is None else top_cache
    profiles = open_profiles(history, ranking)
    batcher = WriteBatcher(
        history,
        flush_interval=settings.flush_interval,
        flush_max_events=settings.flush_max_events,
        flush_catch_up_events=settings.flush_catch_up_events,
        max_buffered_events=settings.max_buffered_events,
        observer=metrics,
    )
    instances = make_instances(settings, ranking, batcher, observer=metrics)
    recovery = make_recovery(
        settings,
        ranking,
        history,
        observer=metrics,
        boards=boards,
        instances=instances,
        top_cache=top_cache,
    )
    if isinstance(ranking, RedisRankingStore):
        instances.reconcile = unload_and_rebuild(ranking, recovery)
    standings = history.standings()
    seasons = Seasons(
        standings=standings,
        batcher=batcher,
        boards=boards,
        notices=period_notices(settings),
        # The rebuild's fold, reading without a time limit: a period of millions of events
        # folds for longer than a request may wait (docs/seasons.md).
        fold=RankingRecovery(
            ranking,
            history.patient_reads(),
            claim_seconds=settings.rebuild_claim_seconds,
            wait_seconds=settings.rebuild_wait_seconds,
            boards=boards,
        ).fold,
        clock=clock,
        webhook=bool(settings.webhook_url),
        tick_seconds=settings.seasons_tick_seconds,
        settle_seconds=settings.seasons_settle_seconds,
        claim_seconds=settings.seasons_claim_seconds,
    )
    bans.heard = seasons.forget_counts  # another instance's erasure lowers final counts
    webhook = None
    if settings.webhook_url and settings.webhook_secret is not None:
        webhook = WebhookSender(
            history.outbox(),
            url=settings.webhook_url,
            secret=settings.webhook_secret.get_secret_value().encode(),
            timeout=settings.webhook_timeout_seconds,
            retry_initial=settings.webhook_retry_initial_seconds,
            retry_max=settings.webhook_retry_max_seconds,
            retry_window=settings.webhook_retry_window_seconds,
            poll_seconds=settings.webhook_poll_seconds,
            clock=clock,
            observer=metrics,
        )
        sender = webhook
        metrics.track_webhook(lambda: sender.depth)
    service = LeaderboardService(
        ranking=ranking,
        top=front,
        batcher=batcher,
        recovery=recovery,
        boards=boards,
        max_delta=settings.max_delta,
        max_batch_increments=settings.max_batch_increments,
        persisted_ack=settings.ack is AckMode.PERSISTED,
        banned=bans.names,
        profiles=profiles,
        clock=clock,
        seasons=seasons,
    )
    if isinstance(ranking, RedisRankingStore):
        service.instances = instances
    live = LiveRankings(front, service, boards, resync_interval=settings.resync_interval_seconds)
    metrics.track(
        batcher_depth=lambda: batcher.depth,
        subscriptions=lambda: live.subscriber_count,
    )
    if top_cache is not None:
        metrics.track_top_cache(top_cache)
    tokens = WriteTokens(settings.write_tokens, admin=settings.admin_tokens)
    moderation = PlayerModeration(
        service=service,
        ranking=front,
        batcher=batcher,
        recovery=recovery,
        bans=bans,
        records=records,
        fence=instances.fence,
        profiles=profiles,
        standings=standings,
    )
    return Resources(
        settings=settings,
        ranking=ranking,
        history=history,
        batcher=batcher,
        recovery=recovery,
        service=service,
        live=live,
        tokens=tokens,
        rate_limits=RateLimits.from_settings(settings, tokens, metrics.registry),
        registry=registry,
        board_admin=BoardAdmin(registry, max_boards=settings.max_boards),
        metrics=metrics,
        seasons=seasons,
        webhook=webhook,
        bans=bans,
        moderation=moderation,
        instances=instances,
        top_cache=top_cache,
    )


@contextlib.asynccontextmanager
async def running(resources: Resources, timeout: float = 60.0) -> AsyncIterator[Resources]:
    """Connect, migrate, rebuild the current periods, start the batcher and the live feed;
    on leaving, stop taking work, drain the write buffer to the history, close connections.

    Retries while the stores are unreachable, up to `timeout` seconds. Each component's
    closing is registered before the component opens, so a failure at any step (or the
    deadline) closes everything opened so far, in reverse order, and raises.
    """
    async with contextlib.AsyncExitStack() as stack:
        # Each close is safe on a component that never opened.
        stack.push_async_callback(resources.rate_limits.close)
        stack.push_async_callback(resources.ranking.close)
        if resources.top_cache is not None:
            # Stopped before the store it reads closes.
            stack.push_async_callback(resources.top_cache.close)
        stack.push_async_callback(resources.history.close)
        await _connect_stores(resources, timeout)
        stack.push_async_callback(resources.registry.stop)
        # After the migrations: the boards table exists. A declared board that differs
        # from its stored row stops the start-up here (BoardConflict).
        await resources.registry.start()
        if resources.bans is not None:
            stack.push_async_callback(resources.bans.stop)
            await resources.bans.start()
        if resources.seasons is not None:
            # Runs after the drain below: every event this instance acknowledged is written.
            stack.push_async_callback(resources.seasons.retire)
        if resources.instances is not None:
            # Leaves after the drain below: until then the others' fences wait for it.
            stack.push_async_callback(resources.instances.stop)
        stack.push_async_callback(_drain_batcher, resources)
        await resources.batcher.start()
        if resources.instances is not None:
            await resources.instances.start()
        for board in resources.settings.boards:
            await resources.recovery.ensure_loaded(board.id, board.current_period())
        stack.push_async_callback(resources.live.close)
        await resources.live.start()
        if resources.seasons is not None:
            stack.push_async_callback(resources.seasons.stop)
            await resources.seasons.start()
        if resources.webhook is not None:
            stack.push_async_callback(resources.webhook.stop)
            await resources.webhook.start()
        resources.started = True
        try:
            yield resources
        finally:
            resources.started = False


async def _connect_stores(resources: Resources, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await resources.history.connect()
            await resources.history.migrate()
            await resources.ranking.ping()
            return
        except StoreUnavailable as error:
            if time.monotonic() > deadline:
                raise
            logger.warning("waiting for the stores: %s", error)
            await resources.history.close()
            await asyncio.sleep(_STARTUP_RETRY_SECONDS)


async def _drain_batcher(resources: Resources) -> None:
    lost = await resources.batcher.close(resources.settings.drain_timeout_seconds)
    if lost:
        logger.error("%d acknowledged events could not be written to the history", lost)


async def ready(resources: Resources) -> tuple[bool, dict[str, str]]:
    """Whether the process may take traffic, and each dependency's state."""
    checks: dict[str, str] = {"startup": "done" if resources.started else "pending"}
    for name, ping in (("ranking", resources.ranking.ping), ("history", resources.history.ping)):
        try:
            await asyncio.wait_for(ping(), timeout=2.0)
            checks[name] = "ok"
        except (StoreUnavailable, TimeoutError) as error:
            checks[name] = f"unavailable: {error}"
    checks["batcher"] = "ok" if resources.batcher.healthy else "refusing writes"
    is_ready = all(value in ("ok", "done") for value in checks.values())
    # Informational only: history reads use the primary whenever the replica cannot be used.
    try:
        replica = await asyncio.wait_for(resources.history.replica_status(), timeout=2.0)
    except TimeoutError:
        replica = "unavailable: no answer within 2 s"
    if replica is not None:
        checks["history_replica"] = replica
    return is_ready, checks
