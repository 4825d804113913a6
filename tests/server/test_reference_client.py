"""The reference `graphql-ws` client (npm, run by Node.js) subscribes to a real service."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.operations import INCREMENT
from tests.support.service_fixtures import ProcessFactory, served
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.integration

NODE = os.environ.get("LEADERBOARD_TEST_NODE", "/usr/bin/node")
NODE_PROJECT = Path(__file__).resolve().parents[1] / "support" / "node_client"
INSTALL_COMMAND = "npm ci --prefix tests/support/node_client"

Record = dict[str, Any]


class NodeSubscriber:
    """subscribe.mjs running under Node; reads the JSON lines it prints."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def record(self, timeout: float = 15.0) -> Record:
        """The next line the client printed, decoded."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise AssertionError(f"the Node client exited without output:\n{await self.errors()}")
        record: Record = json.loads(line)
        return record

    async def finished(self, timeout: float = 15.0) -> int:
        """Wait for the client's exit code."""
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def errors(self) -> str:
        """What the client printed on stderr (once it has exited)."""
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")


@pytest.fixture(autouse=True)
def reference_client_installed() -> None:
    """Fail (never skip), before any server starts, when `npm ci` has not been run."""
    if not (NODE_PROJECT / "node_modules" / "graphql-ws").is_dir():
        pytest.fail(
            f"the reference client is not installed in {NODE_PROJECT}/node_modules: "
            f"run `{INSTALL_COMMAND}` in the repository root"
        )


@asynccontextmanager
async def node_subscriber(
    service: ServiceProcess, username: str, *arguments: str
) -> AsyncIterator[NodeSubscriber]:
    """Run subscribe.mjs against `service`; killed on the way out if still running."""
    websocket_url = service.url.replace("http://", "ws://", 1) + "/graphql"
    command: Sequence[str] = [
        NODE,
        "subscribe.mjs",
        "--url",
        websocket_url,
        "--username",
        username,
        *arguments,
    ]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=NODE_PROJECT,
            # The client exits when its stdin closes: it cannot outlive this test.
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        pytest.fail(f"Node.js is not at {NODE} (set LEADERBOARD_TEST_NODE to its path)")
    try:
        yield NodeSubscriber(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_reference_client_receives_the_standing_then_the_change_a_mutation_causes(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    service = service_process(redis_mysql_environment)
    async with served(service) as (_client, gql):
        ana = (await gql.data(INCREMENT, {"username": "ana", "delta": 10}))["incrementScore"]
        async with node_subscriber(service, "ana", "--count", "2") as subscriber:
            assert await subscriber.record() == {"event": "connected"}
            # ana has a score, so her standing comes first: from then on the subscription
            # is live on the server, and the mutation below must reach it.
            now = await subscriber.record()
            assert now == {
                "event": "next",
                "payload": {
                    "data": {
                        "rankChanged": {
                            "username": "ana",
                            "board": "global",
                            "period": ana["period"],
                            "score": 10,
                            "rank": 1,
                            "previousRank": None,
                        }
                    }
                },
            }

            await gql.data(INCREMENT, {"username": "bo", "delta": 15})
            passed = await subscriber.record()
            assert passed["event"] == "next", passed
            change = passed["payload"]["data"]["rankChanged"]
            assert (
                change["username"],
                change["score"],
                change["rank"],
                change["previousRank"],
            ) == (
                "ana",
                10,
                2,
                1,
            )
            assert await subscriber.finished() == 0, await subscriber.errors()


async def test_reference_client_gets_the_error_code_of_a_bad_subscription(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    service = service_process(redis_mysql_environment)
    await service.start()
    async with node_subscriber(service, "ana", "--board", "no-such-board") as subscriber:
        assert await subscriber.record() == {"event": "connected"}
        failure = await subscriber.record()
        # An execution error arrives as a result with errors; a refused operation as an
        # error message: either way the client must see the code.
        errors = failure["payload"]["errors"] if failure["event"] == "next" else failure["error"]
        assert [error["extensions"]["code"] for error in errors] == ["NOT_FOUND"], failure
