"""server/webhook.py against a real local HTTP receiver: signed, at least once through the
outbox, retried with backoff while the receiver fails, the same delivery id on every attempt
(across a restart), one delivery across instances, the metrics, the start-up check."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from resolvers.service import IncrementRequest
from server.resources import Resources
from server.settings import Settings
from tests.support.seasons import (
    Receiver,
    SharedClock,
    backend_fixture,
    instance,
    season_settings,
    until,
    utc,
)
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

SECRET = b"webhook-secret"
BOARDS = "global:monthly,weekly:weekly"


backend = backend_fixture("global:monthly,weekly:weekly:shards=4")
"""Redis + MariaDB, a Redis Cluster + MariaDB with the weekly board sharded, or the
embedded default (SQLite)."""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver that fails the first two requests with 503, then accepts."""
    hook = Receiver(SECRET, failures=2)
    await hook.start()
    yield hook
    await hook.stop()


def webhook_settings(backend: dict[str, Any], url: str) -> Settings:
    return season_settings(
        **{
            "LEADERBOARD_BOARDS": BOARDS,
            "webhook_url": url,
            "webhook_secret": SECRET.decode(),
            "webhook_retry_initial_seconds": 10.0,
        }
        | backend,
    )


def readme_verifier() -> Callable[[bytes, str, bytes], bool]:
    """The receiver's signature check the README shows, run as written."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("### Seasons") :]
    block = section[section.index("```python\n") + len("```python\n") :]
    namespace: dict[str, Any] = {}
    exec(block[: block.index("```")], namespace)  # the README's own example, as written
    verified: Callable[[bytes, str, bytes], bool] = namespace["verified"]
    return verified


async def play_a_week(resources: Resources, clock: SharedClock) -> None:
    """Scores in the week 2026-W49, then the clock past its end."""
    await resources.service.increment(
        [
            IncrementRequest(username=name, delta=delta, board="weekly", event_id=None)
            for name, delta in (("ana", 7), ("bob", 9), ("cy", 7))
        ]
    )
    clock.set(utc("2026-12-07T00:00:02"))


def advancing(clock: SharedClock, receiver: Receiver, accepted: int = 1) -> Any:
    """A condition that moves the clock a minute per poll (backoff waits pass) until the
    receiver accepted `accepted` bodies."""

    async def condition() -> bool:
        clock.now += 60
        return len(receiver.accepted) >= accepted

    return condition


async def test_a_result_reaches_a_failing_receiver_signed_with_one_delivery_id(
    backend: dict[str, Any], receiver: Receiver
) -> None:
    clock = SharedClock(utc("2026-12-06T23:00:00"))
    async with instance(webhook_settings(backend, receiver.url), clock) as resources:
        await play_a_week(resources, clock)
        await until(advancing(clock, receiver), what="the delivery")

        async def drained() -> bool:
            assert resources.webhook is not None
            return resources.webhook.depth == 0

        await until(drained, what="the outbox emptied")
        metrics = generate_latest(resources.metrics.registry).decode()
    assert len(receiver.requests) == 3
    assert all(valid for _, _, valid in receiver.requests)
    # The README's few lines of Python accept every delivery and refuse a changed body.
    verified = readme_verifier()
    for headers, body, _ in receiver.requests:
        assert verified(body, headers["x-leaderboard-signature"], SECRET)
        assert not verified(body + b" ", headers["x-leaderboard-signature"], SECRET)
    assert len({headers["x-leaderboard-delivery"] for headers, _, _ in receiver.requests}) == 1
    assert {body for _, body, _ in receiver.requests} == {receiver.accepted[0]}
    assert orjson.loads(receiver.accepted[0]) == {
        "board": "weekly",
        "period": "2026-W49",
        "playerCount": 3,
        "top": [
            {"username": "bob", "score": 9, "rank": 1, "topPercent": 100 / 3},
            {"username": "ana", "score": 7, "rank": 2, "topPercent": 200 / 3},
            {"username": "cy", "score": 7, "rank": 2, "topPercent": 200 / 3},
        ],
    }
    assert 'leaderboard_webhook_attempts_total{result="failed"} 2.0' in metrics
    assert 'leaderboard_webhook_attempts_total{result="ok"} 1.0' in metrics
    assert "leaderboard_webhook_outbox_depth 0.0" in metrics


async def test_a_restart_between_attempts_keeps_the_delivery_id(
    backend: dict[str, Any], receiver: Receiver
) -> None:
    clock = SharedClock(utc("2026-12-06T23:00:00"))
    settings = webhook_settings(backend, receiver.url)
    async with instance(settings, clock) as resources:
        await play_a_week(resources, clock)

        async def failed_once() -> bool:
            return len(receiver.requests) >= 1

        await until(failed_once, what="the first attempt")
        assert resources.webhook is not None
        await resources.webhook.deliver_due()  # the row is not due again yet
        assert resources.webhook.depth == 1
    port = receiver.port
    await receiver.stop()  # refused while no instance runs, and after the restart
    clock.now += 60
    async with instance(settings, clock) as resources:
        assert resources.webhook is not None

        async def refused() -> bool:
            clock.now += 60
            assert resources.webhook is not None
            return await resources.webhook.deliver_due() > 0

        await until(refused, what="an attempt while the receiver is down")
        await receiver.start(port)
        await until(advancing(clock, receiver), what="the delivery after the restart")
    ids = {headers["x-leaderboard-delivery"] for headers, _, _ in receiver.requests}
    assert len(ids) == 1
    assert len(receiver.accepted) == 1


async def test_one_delivery_across_instances(redis_prefix: str, mysql_database_url: str) -> None:
    hook = Receiver(SECRET)
    await hook.start()
    clock = SharedClock(utc("2026-12-06T23:00:00"))
    settings = webhook_settings(
        {"redis_url": REDIS_URL, "key_prefix": redis_prefix, "database_url": mysql_database_url},
        hook.url,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            instances = [
                await stack.enter_async_context(instance(settings, clock)) for _ in range(3)
            ]
            await play_a_week(instances[1], clock)

            async def delivered() -> bool:
                return bool(hook.accepted)

            # The clock stays put: no claim expires while an attempt runs.
            await until(delivered, what="the delivery")
            for resources in instances:  # every instance looks again: nothing is due
                assert resources.webhook is not None
                assert await resources.webhook.deliver_due() == 0
        assert len(hook.requests) == 1
    finally:
        await hook.stop()


def test_a_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="LEADERBOARD_WEBHOOK_SECRET is required"):
        Settings(_env_file=None, webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError, match="http"):
        Settings(_env_file=None, webhook_url="ftp://example.com/hook", webhook_secret="s")
