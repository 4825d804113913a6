"""A plain model of one board period of any rule, order and tie-break, for the store
contract suite and the state machine: kept scores and instants in dicts, ranks by the
written-out order of store/tiebreak.py."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.board_model import changes_kept_score, kept_score
from store.boards import Board, ResetPeriod
from store.models import RankedPlayer
from store.tiebreak import ranks_ahead

KINDS = tuple(itertools.product(UpdateRule, SortOrder, TieBreak))
"""Every rule x order x tie-break."""


def kind_id(rule: UpdateRule, order: SortOrder, tie: TieBreak) -> str:
    """The id of the test board of one kind, e.g. `best-asc-earliest`."""
    return f"{rule.value}-{order.value}-{tie.value}"


KIND_BOARDS = tuple(
    Board(
        kind_id(*kind),
        ResetPeriod.MONTHLY,
        update_rule=kind[0],
        sort_order=kind[1],
        tie_break=kind[2],
    )
    for kind in KINDS
)
RULED_BOARDS = (
    *KIND_BOARDS,
    Board("capped-total", ResetPeriod.MONTHLY, min_score=-10, max_score=100),
    Board(
        "capped-best",
        ResetPeriod.MONTHLY,
        update_rule=UpdateRule.BEST,
        sort_order=SortOrder.ASC,
        tie_break=TieBreak.EARLIEST,
        min_score=0,
        max_score=1000,
    ),
)
"""One unsharded board per kind, and two with caps (every backend serves them)."""
SHARDED_KINDS = tuple(dataclasses.replace(board, shards=4) for board in RULED_BOARDS)
"""The same boards, each spread over four shards: the results must not change."""


@dataclass
class PeriodModel:
    """One board period: each player's kept score and the instant it was reached."""

    board: Board
    kept: dict[str, int] = field(default_factory=dict)
    reached: dict[str, int] = field(default_factory=dict)

    def write(self, username: str, value: int, instant: int | None) -> tuple[int, bool]:
        """Apply a write; the kept score after it and whether it changed."""
        old = self.kept.get(username)
        rule, order = self.board.update_rule, self.board.sort_order
        changed = changes_kept_score(rule, order, old, value)
        self.kept[username] = kept_score(rule, order, old, value)
        if changed:
            self.reached[username] = instant or 0
        return self.kept[username], changed

    def _key(self, username: str) -> tuple[int, int, str]:
        instant = self.reached.get(username, 0) if self.earliest else 0
        return (self.kept[username], instant, username)

    @property
    def earliest(self) -> bool:
        """Whether ranks are unique (EARLIEST)."""
        return self.board.tie_break is TieBreak.EARLIEST

    def ordered(self) -> list[str]:
        """Usernames in the board's order (bubble-free: sorted by pairwise comparison)."""
        names = list(self.kept)
        order, tie = self.board.sort_order, self.board.tie_break
        # Insertion by the written-out comparison: independent of any sort key.
        result: list[str] = []
        for name in names:
            at = 0
            while at < len(result) and ranks_ahead(
                order, tie, self._key(result[at]), self._key(name)
            ):
                at += 1
            result.insert(at, name)
        return result

    def rank(self, username: str) -> int:
        """The player's rank: a position on EARLIEST boards, else 1 + players strictly ahead."""
        if self.earliest:
            return 1 + self.ordered().index(username)
        score = self.kept[username]
        order = self.board.sort_order
        ahead = sum(
            1
            for other in self.kept.values()
            if (other > score if order is SortOrder.DESC else other < score)
        )
        return 1 + ahead

    def rank_of_score(self, score: int) -> int:
        """Where a player with `score` and no instant would stand (SHARED arithmetic)."""
        order = self.board.sort_order
        return 1 + sum(
            1
            for other in self.kept.values()
            if (other > score if order is SortOrder.DESC else other < score)
        )

    def standings(self) -> list[RankedPlayer]:
        """Every player, best first."""
        return [
            RankedPlayer(username=name, score=self.kept[name], rank=self.rank(name))
            for name in self.ordered()
        ]
