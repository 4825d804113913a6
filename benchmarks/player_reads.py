"""The player reads of #14 against topPlayers in the same run: `players` with 100 names,
`ranking` pages deep in the big board against its first page, and `topPlayers` with
profiles (displayName, metadata) against topPlayers without.

`players` and the profile rows use the recovery scenario's big board (100,000 players in
--quick, 1M in a full run), seeded here when that scenario did not run. The paging row has
its own board of 1M players in every run, loaded straight into Redis by the store's own
loader (pipelined chunks swapped in by load.lua, marked loaded: what a rebuild writes,
without 5M history rows to read first); the pages measured go through the HTTP API.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from benchmarks import documents
from benchmarks.bench import KEY_PREFIX, PERIOD, Bench, Row, ratio
from benchmarks.loadgen import Recorder
from benchmarks.scenarios import (
    Context,
    describe,
    rebuild_command,
    run_closed,
    say,
    seed_history,
    throughput_row,
)
from resolvers import cursors
from store.boards import Board, ResetPeriod
from store.redis import RedisRankingStore

BOARD = "recovery"
PAGING_BOARD = "paging"
PAGING_PLAYERS = 1_000_000
PLAYERS = (
    "query Friends($u: [String!]!, $b: ID!) "
    "{ players(usernames: $u, board: $b) { username score rank topPercent } }"
)
PAGE = (
    "query Page($b: ID!, $a: String) "
    "{ ranking(board: $b, first: 100, after: $a) { totalCount edges { cursor node "
    "{ username score rank } } } }"
)
TOP = "query Top($b: ID!) { topPlayers(board: $b, limit: 10) { username score rank } }"
TOP_PROFILES = (
    "query TopNamed($b: ID!) "
    "{ topPlayers(board: $b, limit: 10) { username score rank displayName metadata } }"
)
SET_PROFILE = (
    "mutation($u: String!, $n: String!, $m: JSON!) "
    "{ setPlayerProfile(username: $u, displayName: $n, metadata: $m) }"
)


async def big_board(bench: Bench, context: Context) -> int:
    """The big board's player count, seeding and rebuilding it when no scenario did."""
    if context.big_board_players is None:
        players = bench.options.size(100_000, 1_000_000)
        await seed_history(bench, BOARD, players, players * 5, "r")
        await rebuild_command(bench, BOARD)
        context.big_board_players = players
    return context.big_board_players


async def paging_board(bench: Bench) -> int:
    """Load `PAGING_PLAYERS` players into the paging board's Redis ranking directly (the
    store's loader: pipelined chunks, one script swaps them in and marks the period
    loaded, so the service reads it as rebuilt); the player count the service sees."""
    store = RedisRankingStore.from_url(
        bench.redis.url,
        key_prefix=KEY_PREFIX,
        boards=[Board(PAGING_BOARD, ResetPeriod.NEVER)],
        retention=timedelta(days=1),
    )
    chooser = random.Random(59)
    try:
        await store.load(
            PAGING_BOARD,
            PERIOD,
            ((f"p{number:07d}", chooser.randrange(10_000_000)) for number in range(PAGING_PLAYERS)),
            [],
        )
    finally:
        await store.close()
    return await bench.player_count(PAGING_BOARD)


async def player_reads(bench: Bench, context: Context) -> list[Row]:
    """players(100 names), deep ranking pages, topPlayers with profiles; each with its
    baseline measured right before it."""
    players = await big_board(bench, context)
    connections = bench.options.connections
    seconds = bench.options.seconds(3, 10)
    warmup = bench.options.seconds(0.5, 1)
    chooser = random.Random(41)
    usernames = [f"r{number:07d}" for number in range(players)]

    async def measure(requests: list[tuple[bytes, Any]], conns: int = connections) -> Recorder:
        return await run_closed(bench.app, requests, seconds, connections=conns, warmup=warmup)

    top = await measure([(documents.post(TOP, {"b": BOARD}), None)])
    say(f"  topPlayers(limit: 10): {describe(top)}")
    friends = await measure(
        [
            (documents.post(PLAYERS, {"u": chooser.sample(usernames, 100), "b": BOARD}), None)
            for _ in range(512)
        ]
    )
    say(f"  players(100 names): {describe(friends)}")
    rows = [
        _against(
            "players",
            f"players(100 names), {connections} conns, {players:,} players",
            friends,
            top,
            "topPlayers(limit: 10)",
        )
    ]

    # Pages of the 1M-player board: one connection, so that p50 is the service time of one
    # request. The cursors are those a client paging that deep holds (any page past the
    # middle); the first page is the baseline, measured right before.
    paged = await paging_board(bench)
    say(f"  paging board: {paged:,} players loaded into Redis")
    deep_cursors = []
    for offset in chooser.sample(range(paged // 2, paged - 100), 64):
        data = await bench.graphql(
            f'{{ topPlayers(board: "{PAGING_BOARD}", limit: 1, offset: {offset}) '
            "{ username score } }"
        )
        (row,) = data["topPlayers"]
        key = (-int(row["score"]), str(row["username"]))
        deep_cursors.append(cursors.encode(PAGING_BOARD, PERIOD, key))
    first_page = await measure([(documents.post(PAGE, {"b": PAGING_BOARD, "a": None}), None)], 1)
    deep_pages = await measure(
        [(documents.post(PAGE, {"b": PAGING_BOARD, "a": cursor}), None) for cursor in deep_cursors],
        1,
    )
    p50_first = first_page.summary()["p50_ms"]
    p50_deep = deep_pages.summary()["p50_ms"]
    say(f"  ranking(first: 100) p50: {p50_first:.2f} ms first page, {p50_deep:.2f} ms deep")
    deep = throughput_row(
        "players",
        f"ranking(first: 100) past the middle of {paged:,} players, 1 conn",
        deep_pages,
        target="p50 ≤ 1.3x the first page",
    )
    deep.baseline = f"first page p50 {p50_first:.2f} ms"
    deep.ratio = ratio(p50_deep, p50_first)
    deep.passed = paged >= PAGING_PLAYERS and deep_pages.errors == 0 and (deep.ratio or 99) <= 1.3
    deep.details["first_page"] = first_page.summary()
    rows.append(deep)

    # Profiles on the top ten, then topPlayers with and without them, back to back.
    ten = await bench.graphql(f'{{ topPlayers(board: "{BOARD}", limit: 10) {{ username }} }}')
    for index, entry in enumerate(ten["topPlayers"]):
        metadata = {"country": "FR", "avatar": f"https://cdn.example/a/{index}.png", "lvl": index}
        await bench.graphql(
            SET_PROFILE,
            {"u": entry["username"], "n": f"Player {index} ⚔️", "m": metadata},
            write=True,
        )
    plain = await measure([(documents.post(TOP, {"b": BOARD}), None)])
    named = await measure([(documents.post(TOP_PROFILES, {"b": BOARD}), None)])
    say(f"  topPlayers without profiles: {describe(plain)}; with: {describe(named)}")
    rows.append(
        _against(
            "players",
            f"topPlayers(limit: 10) with displayName + metadata, {connections} conns",
            named,
            plain,
            "topPlayers without profiles",
        )
    )
    return rows


def _against(
    scenario: str, measured: str, recorder: Recorder, baseline: Recorder, name: str
) -> Row:
    row = throughput_row(scenario, measured, recorder, baseline=baseline, baseline_name=name)
    row.passed = recorder.errors == 0 if recorder.errors else None
    return row
