"""Player moderation (admin scope): remove a player from a period, ban and unban, erase.

How each one stays exact against the history (docs/moderation.md has the argument):

- A removal takes the player out of the live ranking in one script (a board of any kind)
  and answers the score it removed; a removal row (delta = minus that score, presence -1,
  and on boards that keep instants the removal's instant, where a rebuild's replay starts
  the player afresh) then goes through the write batcher like any event, so it is durable
  (the answer waits for its flush) and never acknowledged and lost. Sums commute: the
  rebuild's per-player sum is exact whatever order the removal row and events other
  instances still buffer reach the history in; each event that gave the player a score it
  did not have carries presence +1, so whether the player scored again after its last
  removal is a sum too.
- A ban is a row in `player_bans` that every instance loads into a set the write path
  checks (store/ban_registry.py); the player is taken out of every period it has history
  in and of every board's current period, with no history row: the rebuild leaves banned
  players out, and an unban puts back what the history holds (the sum, or on boards that
  keep instants the replayed kept score and instant).
- An erasure waits for this instance's write buffer to reach the history, deletes the
  player's rows and Redis entries, waits for the fence (every live instance has written what
  it applied before: the rebuild's fence, resolvers/instances.py), and deletes again: a
  rebuild afterwards finds nothing.

The caller has checked the admin token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TypeVar

from batcher import WriteBatcher, WriteRefused
from resolvers import validation
from resolvers.errors import bad_input, unavailable
from resolvers.service import LeaderboardService
from store.ban_registry import BanRegistry
from store.board_model import replay
from store.errors import RankingNotLoaded, StoreUnavailable
from store.models import REMOVAL_ID_PREFIX, ScoreEvent, value_type
from store.ports import RankingModeration
from store.profiles import PlayerProfiles
from store.recovery import Fence, RankingRecovery
from store.sql.players import BanRecord, SqlPlayerRecords
from store.sql.standings import SqlStandings

logger = logging.getLogger(__name__)

T = TypeVar("T")

REASON_MAX_LENGTH = 512
_REFUSED = frozenset({"Cc", "Cf", "Cs"})
_RECOVERY_ATTEMPTS = 4


@value_type
class Removal:
    """What a moderation or erasure did (the contract's `PlayerRemoval`)."""

    username: str
    rankings_changed: int
    events_deleted: int


def reason(value: str | None) -> str | None:
    """A ban's reason: null, or 1..512 characters without control or format characters."""
    if value is None:
        return None
    if not 1 <= len(value) <= REASON_MAX_LENGTH:
        raise bad_input(f"reason must be 1..{REASON_MAX_LENGTH} characters long")
    # Control and format characters (bidi overrides among them) and lone surrogates, which
    # no database column can store; private-use and unassigned characters are fine.
    if any(unicodedata.category(character) in _REFUSED for character in value):
        raise bad_input("reason must not hold control or format characters")
    return value


class PlayerModeration:
    """removePlayer, banPlayer, unbanPlayer, erasePlayer and the ban lookup."""

    def __init__(
        self,
        *,
        service: LeaderboardService,
        ranking: RankingModeration,
        batcher: WriteBatcher,
        recovery: RankingRecovery,
        bans: BanRegistry,
        records: SqlPlayerRecords,
        fence: Fence,
        clock: Callable[[], float] = time.time,
        profiles: PlayerProfiles | None = None,
        standings: SqlStandings | None = None,
    ) -> None:
        self._service = service
        self._ranking = ranking
        self._batcher = batcher
        self._recovery = recovery
        self._bans = bans
        self._records = records
        self._fence = fence
        self._profiles = profiles
        self._standings = standings
        self._clock = clock
        # Erasures are logged under a keyed hash: lines of one erasure can be matched in
        # this process's log, the username cannot be read back from it.
        self._log_salt = secrets.token_bytes(16)

    # removePlayer

    async def remove(self, username: str, board_id: str, period: str | None) -> Removal:
        """Take the player off one board period (a removal row makes it durable)."""
        board, period_id = self._service.period(board_id, period)
        validation.username(username)
        try:
            final = await self._final(board.id, period_id)
        except StoreUnavailable as error:
            raise unavailable(f"the removal was not made, retry: {error}") from None
        if final:
            raise bad_input(
                f"period {period_id!r} of board {board.id!r} is final: its standings stay as "
                "they were rewarded; removePlayer changes live periods (erasePlayer reaches "
                "final ones too)"
            )
        try:
            with self._batcher.reserve(1) as reservation:
                if self._service.instances is not None:  # a survivor reconciles if we die
                    await self._service.instances.declared([(board.id, period_id)])
                removed = await self._recovering(
                    lambda: self._ranking.remove(board.id, period_id, username)
                )
                if removed is None:
                    return Removal(username=username, rankings_changed=0, events_deleted=0)
                persisted = reservation.commit(
                    [
                        ScoreEvent(
                            board=board.id,
                            period=period_id,
                            username=username,
                            delta=-removed.score,
                            event_id=f"{REMOVAL_ID_PREFIX}{secrets.token_hex(12)}",
                            client_event_id=False,
                            created_at_ms=int(self._clock() * 1000),
                            presence=-1,
                            # Where a replay of the board's writes starts the player afresh.
                            applied_at_us=removed.instant,
                        )
                    ]
                )
        except WriteRefused as error:
            raise unavailable(f"writes are refused for now ({error.reason}); retry later") from None
        try:
            await persisted
        except StoreUnavailable as error:
            raise unavailable(f"the removal may not be in the history: {error}") from None
        logger.info("removed a player from %s/%s", board.id, period_id)
        return Removal(username=username, rankings_changed=1, events_deleted=0)

    # banPlayer, unbanPlayer, bannedPlayer

    async def ban(self, username: str, why: str | None) -> Removal:
        """Ban a player: writes refused everywhere, taken off every live ranking."""
        validation.username(username)
        why = reason(why)
        try:
            await self._bans.ban(username, why, int(self._clock() * 1000))
            # Periods are found from the history: this instance's buffered events must be
            # there first, or a period the clock has just left keeps the player (found by
            # the embedded state machine: a ban right after a month boundary).
            await self._batcher.persisted_so_far()
            changed = 0
            for board, period in await self._live_periods(username):
                if await self._final(board, period):
                    continue  # frozen as rewarded (docs/moderation.md)
                try:
                    if await self._ranking.remove(board, period, username) is not None:
                        changed += 1
                except RankingNotLoaded:
                    pass  # its rebuild leaves banned players out
        except StoreUnavailable as error:
            raise unavailable(f"the ban is stored only in part, retry: {error}") from None
        return Removal(username=username, rankings_changed=changed, events_deleted=0)

    async def unban(self, username: str) -> bool:
        """Lift a ban and put the player's history back into the live rankings; False when
        the player was not banned."""
        validation.username(username)
        try:
            record = await self._bans.record(username)
            if record is None:
                return False
            # What the history must hold first: every event a live instance applied before
            # now (those acknowledged before the ban among them), this one's included.
            await self._fence()
            # Restored while still banned everywhere: no write of the player can land in
            # between and be overwritten.
            for (board, period), kept in (await self._kept_scores(username)).items():
                if not await self._final(board, period):  # frozen without the player
                    await self._ranking.restore(board, period, username, *kept)
            return await self._bans.unban(username)
        except StoreUnavailable as error:
            raise unavailable(f"the ban could not be lifted, retry: {error}") from None

    async def _kept_scores(self, username: str) -> dict[tuple[str, str], tuple[int, int]]:
        """What a rebuild would rank the player with in each served period it has history
        in, ignoring the ban: (kept score, instant reached). Summed boards sum (removals
        counted by presence); boards that keep instants replay the writes, a removal
        starting the player afresh (as recovery does)."""
        kept: dict[tuple[str, str], tuple[int, int]] = {}
        replayed: dict[tuple[str, str], list[tuple[int, int | None]]] | None = None
        for entry in await self._records.periods(username):
            if not self._served(entry.board):
                continue
            board = self._service.board(entry.board)
            if not board.keeps_instants:
                if entry.present:
                    kept[(entry.board, entry.period)] = (entry.total, 0)
                continue
            if replayed is None:
                replayed = await self._records.writes(username)
            found = replay(
                board.update_rule, board.sort_order, replayed.get((entry.board, entry.period), [])
            )
            if found is not None:
                kept[(entry.board, entry.period)] = found
        return kept

    async def ban_record(self, username: str) -> BanRecord | None:
        """The player's ban, or None."""
        validation.username(username)
        try:
            return await self._bans.record(username)
        except StoreUnavailable as error:
            raise unavailable(str(error)) from None

    # erasePlayer

    async def erase(self, username: str) -> Removal:
        """Delete everything stored about the player (see the module doc)."""
        validation.username(username)
        tag = hmac.new(self._log_salt, username.encode(), hashlib.sha256).hexdigest()[:16]
        try:
            await self._batcher.persisted_so_far()
            first = await self._erase_once(username)
            # Events other instances applied before now are in the history after the fence.
            await self._fence()
            second = await self._erase_once(username)
            await self._bans.unban(username)  # tells the others; the row is gone already
        except StoreUnavailable as error:
            raise unavailable(f"the erasure did not finish, retry it: {error}") from None
        removal = Removal(
            username=username,
            rankings_changed=first.rankings_changed + second.rankings_changed,
            events_deleted=first.events_deleted + second.events_deleted,
        )
        logger.info(
            "erased player %s: %d history rows, %d live rankings",
            tag,
            removal.events_deleted,
            removal.rankings_changed,
        )
        return removal

    async def _erase_once(self, username: str) -> Removal:
        event_ids: dict[tuple[str, str], list[str]] = {}
        for board, period, event_id in await self._records.client_event_ids(username):
            event_ids.setdefault((board, period), []).append(event_id)
        changed = 0
        for board, period in await self._live_periods(username):
            ids = event_ids.get((board, period), [])
            changed += await self._ranking.erase(board, period, username, ids)
        erased = await self._records.erase(username)  # the profile row too
        if self._profiles is not None:
            await self._profiles.forget(username)
        # Final periods (seasons): their frozen standings and stored results; this instance's
        # cached player counts of them (other instances keep theirs: docs/moderation.md).
        held = 0 if self._standings is None else await self._standings.erase(username)
        if held and self._service.seasons is not None:
            self._service.seasons.forget_counts()
        return Removal(username=username, rankings_changed=changed, events_deleted=erased.events)

    # Helpers

    async def _final(self, board_id: str, period: str) -> bool:
        """Whether the period's standings are frozen (seasons): removals, bans and unbans
        leave them as they were rewarded; only an erasure reaches them."""
        seasons = self._service.seasons
        if seasons is None:
            return False
        return await seasons.frozen(self._service.board(board_id), period) is not None

    def _served(self, board_id: str) -> bool:
        return any(board.id == board_id for board in self._service.boards)

    async def _live_periods(self, username: str) -> list[tuple[str, str]]:
        """Every period the player has history in, and every board's current period
        (events still buffered somewhere are in no history yet)."""
        now = self._clock()
        periods = {(board.id, board.period_at_timestamp(now)) for board in self._service.boards}
        periods.update(
            (entry.board, entry.period)
            for entry in await self._records.periods(username)
            if self._served(entry.board)
        )
        return sorted(periods)

    async def _recovering(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a store operation, rebuilding a period it finds not loaded, then retrying."""
        for _ in range(_RECOVERY_ATTEMPTS):
            try:
                return await operation()
            except RankingNotLoaded as missing:
                try:
                    # Parked: a rebuild's fence need not wait for a write that applied nothing.
                    with self._batcher.parking():
                        await self._recovery.ensure_loaded(missing.board, missing.period)
                except StoreUnavailable as error:
                    raise unavailable(str(error)) from None
            except StoreUnavailable as error:
                raise unavailable(f"storage is unavailable; nothing was changed: {error}") from None
        raise unavailable("the ranking is being rebuilt; retry later")
