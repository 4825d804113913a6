"""Issue 17's latency probe: 8 clients sending maximum-size unique documents must leave
everyone else's p50 under 20 ms.

A normal client (one connection, `topPlayers(limit: 10)`, closed loop) measures its p50
alone, then while 8 hostile connections send, closed loop, unique documents
(`{ __typename } #<uuid><padding>`, never the same twice) of two sizes:
the probe's original ~255 KB (within the 256 KiB body limit; refused by the character cap
before any parse) and exactly the cap, `MAX_DOCUMENT_CHARS`, padded with a comment, then
with white space (`{ a<uuid>: __typename      }`: graphql-core lexes it a character at a
time, where a comment's text is skipped first; parsed and validated every time).
"""

from __future__ import annotations

import asyncio
import functools
import uuid

import orjson

from benchmarks import documents
from benchmarks.bench import Bench, Row
from benchmarks.loadgen import Recorder, Request, closed_loop, http_post
from schema.documents import MAX_DOCUMENT_CHARS

HOSTILE_CLIENTS = 8
PROBE_CHARS = 255_000
TARGET_MS = 20.0
PLAYERS = 1_000


def unique_document(length: int) -> Request:
    """A POST of a fresh `{ __typename }` document padded to `length` characters."""
    text = f"{{ __typename }} #{uuid.uuid4()}"
    body = orjson.dumps({"query": text + "x" * (length - len(text))})
    return http_post("/graphql", body), None


def unique_spaced_document(length: int) -> Request:
    """A POST of a fresh document padded to `length` characters with white space, not a
    comment (the service skips comments' text at C speed, not white space)."""
    text = f"{{ a{uuid.uuid4().hex}: __typename"
    body = orjson.dumps({"query": text + " " * (length - len(text) - 1) + "}"})
    return http_post("/graphql", body), None


def answered(_meta: object, status: int, _body: bytes) -> bool:
    """A hostile request only has to be answered, refused or not, without a 5xx."""
    return status < 500


async def hostile_clients(bench: Bench, context: object) -> list[Row]:
    """The normal client's p50 alone, then under each kind of hostile load."""
    # Here, not at the top: scenarios.py registers this scenario.
    from benchmarks.scenarios import HOST, describe, ok_response, run_closed, say

    users = [f"hostile{number}" for number in range(PLAYERS)]
    await bench.seed_through_service(
        "read", [(user, number + 1) for number, user in enumerate(users)]
    )
    normal = documents.reads(documents.TOP, "read", None)
    seconds = bench.options.seconds(5, 20)
    alone = await run_closed(bench.app, normal, seconds, connections=1, warmup=0.5)
    say(f"  topPlayers alone, 1 conn: {describe(alone)}")
    alone_p50 = alone.summary()["p50_ms"]
    rows = []
    for make, length, what in (
        (unique_document, PROBE_CHARS, f"unique {PROBE_CHARS // 1000} KB documents (over the cap)"),
        (
            unique_document,
            MAX_DOCUMENT_CHARS,
            f"unique {MAX_DOCUMENT_CHARS:,}-character documents (the cap)",
        ),
        (
            unique_spaced_document,
            MAX_DOCUMENT_CHARS,
            f"unique {MAX_DOCUMENT_CHARS:,}-character documents of white space (the cap)",
        ),
    ):
        hostile = closed_loop(
            HOST,
            bench.app.port,
            connections=HOSTILE_CLIENTS,
            duration=seconds + 1.0,
            next_request=functools.partial(make, length),
            check=answered,
        )
        # The normal client starts once the hostile ones are sending, and stops first.
        measured = closed_loop(
            HOST,
            bench.app.port,
            connections=1,
            duration=seconds,
            warmup=0.5,
            next_request=documents.cycling(normal),
            check=ok_response,
            cpu_probe=bench.app.cpu,
        )
        flood, recorder = await asyncio.gather(hostile, measured)
        say(f"  topPlayers beside {HOSTILE_CLIENTS} clients sending {what}: {describe(recorder)}")
        say(f"    the hostile clients: {describe(flood)}")
        rows.append(_row(recorder, flood, what, alone_p50))
    return rows


def _row(recorder: Recorder, flood: Recorder, what: str, alone_p50: float) -> Row:
    summary = recorder.summary()
    hostile = flood.summary()
    return Row(
        scenario="hostile clients",
        measured=f"topPlayers p50, 1 conn, beside {HOSTILE_CLIENTS} clients sending {what}",
        throughput=summary["rps"],
        p50_ms=summary["p50_ms"],
        p95_ms=summary["p95_ms"],
        p99_ms=summary["p99_ms"],
        baseline=f"alone: p50 {alone_p50:.1f} ms; hostile: {hostile['rps']:,.0f} req/s, "
        f"{hostile['errors']} 5xx or failures",
        ratio=summary["p50_ms"] / alone_p50 if alone_p50 else None,
        target=f"p50 < {TARGET_MS:.0f} ms",
        passed=summary["p50_ms"] < TARGET_MS and summary["errors"] == 0,
        cpu_ms=summary.get("server_cpu_ms_per_request"),
        details={"normal": summary, "hostile": hostile, "alone_p50_ms": alone_p50},
    )
