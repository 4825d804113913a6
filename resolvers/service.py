"""The leaderboard service: what every resolver calls. Validates, then reads or writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from batcher import WriteBatcher
from resolvers import cursors, validation
from resolvers.errors import (
    ApiError,
    ErrorCode,
    bad_input,
    forbidden,
    reading,
    unavailable,
    write_refusals,
)
from resolvers.write_stamps import WriteStamps, history_event
from store.board_kinds import UpdateRule
from store.boards import Board, board_index
from store.errors import (
    PartiallyApplied,
    RankingNotLoaded,
    StoreUnavailable,
)
from store.models import (
    LEAVE,
    NO_PROFILE,
    IncrementOutcome,
    PlayerProfile,
    RankedPlayer,
    ScoreIncrement,
    value_type,
)
from store.ports import RankingReads, RankingWrites, TopReads
from store.profiles import PlayerProfiles
from store.recovery import RankingRecovery

if TYPE_CHECKING:
    from resolvers.final_periods import FinalPeriod
    from resolvers.instances import Instances
    from resolvers.seasons import Seasons

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ServedRanking(RankingReads, RankingWrites, Protocol):
    """The part of the live ranking store the service uses: its reads and its one write."""


class ServedTop(TopReads, RankingWrites, Protocol):
    """What the service sends through the top cache: top reads, and the writes that must
    drop the snapshots they change before they return."""


# A store call can meet several lost rankings in a row, one per period it touches: each is
# rebuilt once. A period reported lost again right after its rebuild (Redis lost it again,
# or the rebuild is another instance's and still running) is retried this many times.
_RECOVERY_REPEATS = 3

BANNED = "player is banned"
"""The FORBIDDEN message of every write of a banned player."""


class IncrementRequest(NamedTuple):
    """One increment as a client asked for it, before validation: a tuple, so that
    schema/fast_path.py can pass a plain `(username, delta, board, event_id)` per item of a
    batch of up to 1000 (no object to build per item: ~6 ns against ~130 ns, timeit)."""

    username: str
    delta: int
    board: str
    event_id: str | None


@value_type
class RankingPageView:
    """A page of `ranking` as clients see it: players best first, each one's cursor."""

    players: tuple[RankedPlayer, ...]
    cursors: tuple[str, ...]
    total: int
    has_next: bool


class LeaderboardService:
    """Reads and writes of the leaderboards, with the contract's rules and error codes."""

    def __init__(
        self,
        *,
        ranking: ServedRanking,
        top: ServedTop | None = None,
        batcher: WriteBatcher,
        recovery: RankingRecovery,
        boards: Sequence[Board],
        max_delta: int,
        max_batch_increments: int,
        persisted_ack: bool = False,
        clock: Callable[[], float] = time.time,
        seasons: Seasons | None = None,
        banned: Collection[str] = frozenset(),
        profiles: PlayerProfiles | None = None,
    ) -> None:
        self._ranking = ranking
        # Top reads and increments: through the top cache when there is one (every other
        # read goes straight to the ranking store).
        self._top: ServedTop = ranking if top is None else top
        self._batcher = batcher
        self._recovery = recovery
        self._boards = board_index(boards)  # live: boards created at run time show through
        self._max_delta = max_delta
        self._max_batch_increments = max_batch_increments
        self._persisted_ack = persisted_ack
        self._clock = clock
        self._stamps = WriteStamps()
        self.seasons = seasons
        """Final periods are read from their frozen standings (set once wired)."""
        self.instances: Instances | None = None  # set once wired; none when embedded
        self._profiles = profiles
        # The banned usernames (store/ban_registry.py keeps this set in step): one set
        # lookup per write, no round trip.
        self._banned = banned

    @property
    def boards(self) -> list[Board]:
        """The configured boards."""
        return list(self._boards.values())

    def board(self, board_id: str) -> Board:
        """A configured board, or NOT_FOUND."""
        board = self._boards.get(board_id)
        if board is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"unknown board {board_id!r}")
        return board

    def period(self, board_id: str, period: str | None) -> tuple[Board, str]:
        """A board and a valid period of it (the current one by default)."""
        board = self.board(board_id)
        return board, validation.period(board, period, self._clock())

    def subscribable_player(self, board_id: str, username: str) -> None:
        """Check the arguments of a player subscription."""
        self.board(board_id)
        validation.username(username)

    def subscribable_top(self, board_id: str, limit: int) -> None:
        """Check the arguments of a top-list subscription."""
        self.board(board_id)
        validation.limit(limit)

    # Writes

    def refuse_banned(self, username: str) -> None:
        """FORBIDDEN when the player is banned: every write of a player checks it first
        (increments inline in `_validated`, setScore and setPlayerProfile here)."""
        if username in self._banned:
            raise forbidden(BANNED)

    async def increment(
        self,
        requests: Sequence[tuple[str, int, str, str | None]],
        writer_id: str | None = None,
        sequence: int | None = None,
        *,
        ranks: bool = True,
    ) -> list[IncrementOutcome]:
        """Validate every increment, then apply all in order, or none; a call with a
        `writer_id` and `sequence` is not applied when the writer's last applied call in a
        board period it touches had that sequence or a later one (docs/reliability.md).
        Without `ranks`, the outcomes' ranks may be 0: the caller does not show them."""
        writer = validation.writer(writer_id, sequence)
        validation.batch_size(len(requests), self._max_batch_increments)
        # One instant for the whole call: a batch never straddles a period boundary.
        now = self._clock()
        boards: dict[str, tuple[str, int]] = {}
        increments = [self._validated(request, now, boards) for request in requests]
        if writer is not None:
            increments = self._stamps.of_writer(increments, writer)
        with write_refusals(), self._batcher.reserve(len(increments)) as reservation:
            if self.instances is not None:  # after reserving (resolvers/instances.py)
                await self.instances.declared(
                    (board, period) for board, (period, _) in boards.items()
                )
            partial: PartiallyApplied | None = None
            try:
                outcomes = await self._recovering(
                    lambda: self._top.increment(increments, ranks=ranks)
                )
            except PartiallyApplied as error:
                # What reached Redis must reach the history too; the client retries
                # the batch, and its eventIds keep the applied part from counting twice.
                outcomes, partial = error.outcomes, error
            now_ms = int(self._clock() * 1000)
            persisted = reservation.commit(
                [
                    history_event(outcome.increment, now_ms, outcome.instant, outcome)
                    for outcome in outcomes
                    if outcome.applied
                ]
            )
            if partial is not None:
                logger.warning("a batch was applied in part: %s", partial)
                raise unavailable(
                    "storage failed part-way: only some of the increments were applied; "
                    "retry with the same eventIds (or writerId and sequence)"
                )
        if self._persisted_ack:
            await persisted
        return outcomes

    def _validated(
        self,
        request: tuple[str, int, str, str | None],
        now: float,
        boards: dict[str, tuple[str, int]],
    ) -> ScoreIncrement:
        # Checked in this order (board, eventId, username, delta): the first failure is the
        # error reported. `boards`: the call's boards checked so far, with their period and
        # max delta (a batch of up to 1000 items names a board or two).
        username, delta, board_id, client_event_id = request  # IncrementRequest's fields
        known = boards.get(board_id)
        if known is None:
            known = boards[board_id] = self._incremented_board(board_id, now)
        period, max_delta = known
        if client_event_id is not None:
            validation.event_id(client_event_id)
        username = validation.username(username)
        if username in self._banned:  # `refuse_banned`, inline on the hot path
            raise forbidden(BANNED)
        # Positional, in ScoreIncrement's field order (board, period, username, delta,
        # event_id, client_event_id): half the cost of keywords, once per ingested event.
        return ScoreIncrement(
            board_id,
            period,
            username,
            validation.delta(delta, max_delta),
            client_event_id or self._stamps.event_id(),
            client_event_id is not None,
        )

    def _incremented_board(self, board_id: str, now: float) -> tuple[str, int]:
        """The period at `now` and the max delta of a board that takes increments."""
        board = self.board(board_id)
        if not board.active:
            raise forbidden(f"board {board_id!r} is archived: it takes no more writes")
        if board.update_rule is not UpdateRule.INCREMENT:
            raise bad_input(_use_set_score(board))
        return board.period_at_timestamp(now), board.max_delta or self._max_delta

    async def set_score(
        self,
        username: str,
        score: int,
        board_id: str,
        event_id: str | None,
        writer_id: str | None = None,
        sequence: int | None = None,
    ) -> IncrementOutcome:
        """Submit a score to a BEST or LATEST board: the outcome's `score` is the kept one,
        `changed` whether it changed (`improved`), `applied` false for a replayed eventId
        or writer's sequence."""
        writer = validation.writer(writer_id, sequence)
        board = self.board(board_id)
        if not board.active:
            raise forbidden(f"board {board_id!r} is archived: it takes no more writes")
        if board.update_rule is UpdateRule.INCREMENT:
            raise bad_input(f"board {board_id!r} adds scores: use incrementScore")
        client_event_id = validation.event_id(event_id)
        self.refuse_banned(validation.username(username))
        submission = ScoreIncrement(
            board=board_id,
            period=board.period_at_timestamp(self._clock()),
            username=username,
            delta=validation.score(score, board),
            event_id=client_event_id or self._stamps.event_id(),
            client_event_id=client_event_id is not None,
        )
        if writer is not None:
            (submission,) = self._stamps.of_writer([submission], writer)
        with write_refusals(), self._batcher.reserve(1) as reservation:
            if self.instances is not None:
                await self.instances.declared([(board_id, submission.period)])
            # One write on one key: it applies whole or not at all (no partial batch).
            (outcome,) = await self._recovering(lambda: self._top.increment([submission]))
            persisted = reservation.commit(
                [history_event(submission, int(self._clock() * 1000), outcome.instant, outcome)]
                if outcome.applied
                else []
            )
        if self._persisted_ack:
            await persisted
        return outcome

    # Reads

    async def top(
        self, board_id: str, period: str | None, limit: int, offset: int = 0
    ) -> list[RankedPlayer]:
        """The best players of a period, from rank offset+1."""
        board, period_id = self.period(board_id, period)
        validation.limit(limit)
        validation.offset(offset)
        if final := await self._final(board, period_id, period):
            return await reading(lambda: final.top(limit, offset))
        return await self._recovering(lambda: self._top.top(board.id, period_id, limit, offset))

    async def player(self, board_id: str, period: str | None, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score."""
        board, period_id = self.period(board_id, period)
        validation.username(username)
        if final := await self._final(board, period_id, period):
            return await reading(lambda: final.player(username))
        return await self._recovering(lambda: self._ranking.player(board.id, period_id, username))

    async def neighborhood(
        self, board_id: str, period: str | None, username: str, radius: int, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players above and below (with `fill`, 2 * radius + 1
        whenever the period has that many)."""
        board, period_id = self.period(board_id, period)
        validation.username(username)
        validation.radius(radius)
        if final := await self._final(board, period_id, period):
            return await reading(lambda: final.neighborhood(username, radius, fill))
        return await self._recovering(
            lambda: self._ranking.neighborhood(board.id, period_id, username, radius, fill=fill)
        )

    async def players(
        self, board_id: str, period: str | None, usernames: list[str]
    ) -> list[RankedPlayer]:
        """Up to 100 named players with their board-wide ranks, best first; those without a
        score left out."""
        board, period_id = self.period(board_id, period)
        validation.usernames(usernames)
        if final := await self._final(board, period_id, period):
            return await reading(lambda: final.players(usernames))
        return await self._recovering(lambda: self._ranking.players(board.id, period_id, usernames))

    async def ranking(
        self, board_id: str, period: str | None, first: int, after: str | None
    ) -> RankingPageView:
        """One page of the whole ranking after the cursor `after` (from the top without)."""
        board, period_id = self.period(board_id, period)
        validation.first(first)
        key = None if after is None else cursors.decode(after, board.id, period_id)
        if final := await self._final(board, period_id, period):
            page = await reading(lambda: final.page(first, key))
        else:
            page = await self._recovering(
                lambda: self._ranking.page(board.id, period_id, first, key)
            )
        return RankingPageView(
            players=page.players,
            cursors=tuple(cursors.encode(board.id, period_id, key) for key in page.keys),
            total=page.total,
            has_next=page.has_next,
        )

    async def player_count(self, board_id: str, period: str | None) -> int:
        """How many players scored in the period."""
        board, period_id = self.period(board_id, period)
        if final := await self._final(board, period_id, period):
            return final.player_count
        return await self._recovering(lambda: self._ranking.player_count(board.id, period_id))

    async def _final(self, board: Board, period: str, asked: str | None) -> FinalPeriod | None:
        """The reads of a final period's frozen standings (docs/seasons.md), else None.
        Reads of the live period (no period asked for) skip the check."""
        if asked is None:
            return None
        seasons = self.seasons
        if seasons is None:
            return None
        return await reading(lambda: seasons.frozen(board, period))

    # Profiles

    async def set_profile(
        self, username: str, display_name: str | None, metadata: object | None
    ) -> bool:
        """Set a player's display name and metadata (None leaves a field; "" and {} clear
        it), durably before answering."""
        validation.username(username)
        self.refuse_banned(username)
        name = LEAVE if display_name is None else validation.display_name(display_name)
        data = LEAVE if metadata is None else validation.metadata(metadata)
        if self._profiles is None:
            raise unavailable("player profiles are not configured on this instance")
        try:
            await self._profiles.change(username, name, data)
        except StoreUnavailable as error:
            logger.warning("profile store unavailable: %s", error)
            raise unavailable("storage is unavailable; the profile was not changed") from None
        return True

    async def profiles(self, usernames: Sequence[str]) -> dict[str, PlayerProfile]:
        """The profiles of the named players (`NO_PROFILE` when never set), in one fetch."""
        if self._profiles is None:
            return dict.fromkeys(usernames, NO_PROFILE)
        try:
            return await self._profiles.profiles(usernames)
        except StoreUnavailable as error:
            logger.warning("profile store unavailable: %s", error)
            raise unavailable("storage is unavailable; retry later") from None

    async def _recovering(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a store operation, rebuilding any period it finds not loaded, then retrying."""
        rebuilt: set[tuple[str, str]] = set()
        repeats = 0
        while True:
            try:
                return await operation()
            except RankingNotLoaded as missing:
                lost = (missing.board, missing.period)
                # Bounded by repeats, not by attempts: a batch may touch many lost periods.
                repeats += lost in rebuilt
                if repeats > _RECOVERY_REPEATS:
                    break
                rebuilt.add(lost)
                try:
                    with self._batcher.parking():  # batcher/barriers.py
                        await self._recovery.ensure_loaded(missing.board, missing.period)
                except StoreUnavailable as error:
                    raise unavailable(str(error)) from None
            except StoreUnavailable as error:
                logger.warning("store unavailable: %s", error)
                raise unavailable(
                    "storage is unavailable; nothing was applied, retry later"
                ) from None
        raise unavailable("the ranking is being rebuilt; retry later")


def _use_set_score(board: Board) -> str:
    kept = "best" if board.update_rule is UpdateRule.BEST else "latest"
    return f"board {board.id!r} keeps the {kept} score: use setScore"
