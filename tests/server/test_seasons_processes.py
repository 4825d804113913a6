"""Seasons across real `leaderboard serve` processes on Redis + MariaDB: periods that ended
while no instance ran are finalized once by 3 instances starting together and delivered
once; a SIGKILL of the instance mid-delivery leaves the delivery to the next one, with the
same delivery id. (The processes run on the real clock: the ended periods are seeded in the
history, and the catch-up at start finalizes them.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.support.cli import leaderboard
from tests.support.history_database import query_history
from tests.support.seasons import Receiver, until
from tests.support.service_fixtures import ProcessFactory

pytestmark = pytest.mark.integration

SECRET = "process-webhook-secret"
PERIOD = "2026-11-30"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver(SECRET.encode())
    await hook.start()
    yield hook
    hook.release()
    await hook.stop()


def environment(base: dict[str, str], receiver: Receiver) -> dict[str, str]:
    return base | {
        "LEADERBOARD_BOARDS": "global:monthly,daily:daily",
        "LEADERBOARD_WEBHOOK_URL": receiver.url,
        "LEADERBOARD_WEBHOOK_SECRET": SECRET,
        "LEADERBOARD_WEBHOOK_TIMEOUT_SECONDS": "1",
        "LEADERBOARD_WEBHOOK_RETRY_INITIAL_SECONDS": "0.2",
        "LEADERBOARD_WEBHOOK_POLL_SECONDS": "0.2",
        "LEADERBOARD_SEASONS_TICK_SECONDS": "0.1",
        "LEADERBOARD_SEASONS_SETTLE_SECONDS": "2",
    }


async def seed_an_ended_day(env: dict[str, str]) -> None:
    """The schema, then a past day's events written straight into the history."""
    code, output = await leaderboard(env, "migrate")
    assert code == 0, output
    rows = ", ".join(
        f"('daily', '{PERIOD}', 'p{index}', {index * 3 % 11 + 1}, 'seed-{index}', 1, 0)"
        for index in range(40)
    )
    await query_history(
        env["LEADERBOARD_DATABASE_URL"],
        "INSERT INTO score_events "
        "(board, period, username, delta, event_id, client_event_id, created_at_ms) "
        f"VALUES {rows}",
    )


async def test_three_instances_starting_together_finalize_and_deliver_once(
    redis_mysql_environment: dict[str, str],
    service_process: ProcessFactory,
    receiver: Receiver,
) -> None:
    env = environment(redis_mysql_environment, receiver)
    await seed_an_ended_day(env)
    processes = [service_process(env) for _ in range(3)]
    await asyncio.gather(*(process.start() for process in processes))

    async def delivered() -> bool:
        return bool(receiver.accepted)

    await until(delivered, what="the delivery")
    await asyncio.sleep(1.0)  # a second result or delivery would show up meanwhile
    url = env["LEADERBOARD_DATABASE_URL"]
    assert await query_history(
        url, f"SELECT COUNT(*) FROM period_results WHERE period = '{PERIOD}'"
    ) == [(1,)]
    assert len(receiver.requests) == 1
    result = orjson.loads(receiver.accepted[0])
    truth = await query_history(
        url,
        "SELECT username, SUM(delta) AS total FROM score_events "
        f"WHERE period = '{PERIOD}' GROUP BY username ORDER BY total DESC, username LIMIT 100",
    )
    assert [(p["username"], p["score"]) for p in result["top"]] == [
        (str(name), int(str(total))) for name, total in truth
    ]
    assert result["playerCount"] == 40


async def test_a_sigkill_mid_delivery_leaves_it_to_the_next_instance_with_the_same_id(
    redis_mysql_environment: dict[str, str],
    service_process: ProcessFactory,
    receiver: Receiver,
) -> None:
    receiver.hangs = 1
    env = environment(redis_mysql_environment, receiver)
    await seed_an_ended_day(env)
    first = service_process(env)
    await first.start()

    async def held() -> bool:
        return bool(receiver.requests)

    await until(held, what="the first attempt")
    await first.kill()  # mid-delivery: the receiver has the request, no answer was sent
    receiver.release()
    second = service_process(env)
    await second.start()

    async def delivered() -> bool:
        return bool(receiver.accepted)

    # The killed attempt's claim runs out first (2 x timeout + 5 s), then the retry goes.
    await until(delivered, timeout=30, what="the delivery by the second instance")
    ids = {headers["x-leaderboard-delivery"] for headers, _, _ in receiver.requests}
    assert len(ids) == 1
    assert all(valid for _, _, valid in receiver.requests)
    assert len(receiver.accepted) == 1
