"""The `PeriodResult` message: one JSON format for the stored result, the `periodEnded`
notice between instances and the webhook body.

The object has the contract's field names at the top level (`board`, `period`,
`playerCount`, `top`), each player `username`, `score`, `rank` and `topPercent`
(100 * rank / playerCount), so the webhook body reads like the GraphQL `PeriodResult`.
Keys are sorted and the encoding is compact: the same result always has the same bytes,
so a signature computed once stays valid on every delivery attempt.
"""

from __future__ import annotations

from typing import Any

import orjson

from store.models import PeriodResult, RankedPlayer


def top_percent(rank: int, player_count: int) -> float:
    """100 * rank / playerCount: 0.5 means the top half percent."""
    return 100.0 * rank / player_count if player_count else 0.0


def encode(result: PeriodResult) -> bytes:
    """The result as compact JSON with sorted keys."""
    document: dict[str, Any] = {
        "board": result.board,
        "period": result.period,
        "playerCount": result.player_count,
        "top": [
            {
                "username": player.username,
                "score": player.score,
                "rank": player.rank,
                "topPercent": top_percent(player.rank, result.player_count),
            }
            for player in result.top
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def decode(data: bytes | str) -> PeriodResult:
    """A result from its JSON; `ValueError` when it is not one."""
    try:
        document = orjson.loads(data)
        return PeriodResult(
            board=str(document["board"]),
            period=str(document["period"]),
            player_count=int(document["playerCount"]),
            top=tuple(
                RankedPlayer(
                    username=str(player["username"]),
                    score=int(player["score"]),
                    rank=int(player["rank"]),
                    player_count=int(document["playerCount"]),
                )
                for player in document["top"]
            ),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"not a period result: {error}") from None
