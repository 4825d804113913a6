"""Past-period reads (#13): a final period's top and a player's rank in it, read from the
frozen standings with 5M events of history, against the same reads on the live period in
the same run.

The `seasons` board resets daily. Its period of three days ago gets 5M events (500,000 in
--quick) of 100,000 players (10,000) straight into MariaDB with multi-row INSERTs; the live
period gets one event per player of the same players, so both rankings hold as many
players. The service is restarted: its start-up catch-up freezes the ended period
(`period_standings`), timed until `periods` says `final`. Then, back to back, each read on
the final period (`period:` given: an index lookup in `period_standings`) and on the live
one (Redis, rebuilt from the history on the first read): the ratio is final / live on p50.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

from benchmarks import documents
from benchmarks.bench import SEASONS_BOARD, Bench, Row, ratio
from benchmarks.loadgen import Recorder
from benchmarks.scenarios import Context, describe, run_closed, say, seed_history, throughput_row

TOP = (
    "query Top($b: ID!, $p: String) "
    "{ topPlayers(board: $b, period: $p, limit: 10) { username score rank } }"
)
PLAYER = (
    "query Rank($b: ID!, $p: String, $u: String!) "
    "{ player(board: $b, period: $p, username: $u) { score rank } }"
)
PERIODS = (
    "query Periods($b: ID!) "
    "{ leaderboard(id: $b) { periods(first: 10) { edges { node { period final playerCount } } } } }"
)
_FREEZE_WAIT_SECONDS = 900.0


def _day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


async def seasons(bench: Bench, context: Context) -> list[Row]:
    """Reads of a final period with 5M events of history against the live period's."""
    players = bench.options.size(10_000, 100_000)
    events = bench.options.size(500_000, 5_000_000)
    past, live = _day(3), _day(0)
    _, seeded = await seed_history(bench, SEASONS_BOARD, players, events, "s", period=past)
    say(f"  seeded {events:,} events of {players:,} players into {past} in {seeded:.1f} s")
    await seed_history(bench, SEASONS_BOARD, players, players, "s", period=live)
    # A restart: its catch-up finds the ended period with events and no result.
    await bench.app.stop(timeout=60)
    started = time.perf_counter()
    await bench.start_service()
    deadline = started + _FREEZE_WAIT_SECONDS
    # Polled in MySQL: reads of the ended period before it is final would rebuild it live.
    while not await bench.sql(
        f"SELECT 1 FROM `{bench.database}`.period_results WHERE board = %s AND period = %s",
        SEASONS_BOARD,
        past,
    ):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"period {past} was not final after {_FREEZE_WAIT_SECONDS} s")
        await asyncio.sleep(0.5)
    data = await bench.graphql(PERIODS, {"b": SEASONS_BOARD})
    nodes = [edge["node"] for edge in data["leaderboard"]["periods"]["edges"]]
    assert any(node["period"] == past and node["final"] for node in nodes), nodes
    frozen_seconds = time.perf_counter() - started
    say(f"  restart until {past} was final: {frozen_seconds:.1f} s")
    # The live period's first read rebuilds it in Redis; not measured.
    await bench.graphql(TOP, {"b": SEASONS_BOARD, "p": None})

    seconds = bench.options.seconds(3, 10)
    warmup = bench.options.seconds(0.5, 1)
    connections = bench.options.connections
    chooser = random.Random(23)
    names = [f"s{chooser.randrange(players):07d}" for _ in range(512)]

    async def measure(document: str, period: str | None, named: bool) -> Recorder:
        requests = [
            (
                documents.post(
                    document, {"b": SEASONS_BOARD, "p": period} | ({"u": name} if named else {})
                ),
                None,
            )
            for name in (names if named else names[:1])
        ]
        return await run_closed(
            bench.app, requests, seconds, connections=connections, warmup=warmup
        )

    rows: list[Row] = []
    for label, document, named in (
        ("topPlayers(limit: 10)", TOP, False),
        ("player(username) rank", PLAYER, True),
    ):
        live_reads = await measure(document, None, named)
        final_reads = await measure(document, past, named)
        say(f"  {label}: final {describe(final_reads)}; live {describe(live_reads)}")
        row = throughput_row(
            "seasons",
            f"{label} of a final period ({events:,} events, {players:,} players), "
            f"{connections} conns",
            final_reads,
            baseline=live_reads,
            baseline_name="live period",
            target="p50 ≤ 1.5x the live period's"
            + ("" if events >= 5_000_000 else " (5M events in the full run)"),
        )
        p50_final = final_reads.summary()["p50_ms"]
        p50_live = live_reads.summary()["p50_ms"]
        row.baseline = f"live period p50 {p50_live:.2f} ms, {row.baseline}"
        row.ratio = ratio(p50_final, p50_live)
        full = events >= 5_000_000
        row.passed = (final_reads.errors == 0 and (row.ratio or 99) <= 1.5) if full else None
        row.details["frozen_after_restart_seconds"] = frozen_seconds
        row.details["seeded_seconds"] = seeded
        rows.append(row)
    return rows
