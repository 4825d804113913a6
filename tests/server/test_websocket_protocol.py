"""The lean WebSocket protocol (server/websocket_protocol.py): its stand-ins for uvicorn's
receive queue and writable flag cover every method uvicorn calls on them, and behave as the
asyncio originals do for those calls (order, cancellation, several waiters)."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.protocols.websockets import websockets_sansio_impl

from server.websocket_protocol import (
    UVICORN_ATTRIBUTES,
    Flag,
    Inbox,
    KeepaliveSweep,
    LeanWebSocketProtocol,
)

pytestmark = pytest.mark.unit

UVICORN_SOURCE = inspect.getsource(websockets_sansio_impl)


def called_on(attribute: str) -> set[str]:
    """The methods uvicorn's protocol calls on `self.<attribute>`."""
    return set(re.findall(rf"self\.{attribute}\.(\w+)\(", UVICORN_SOURCE))


def test_uvicorn_calls_only_what_the_stand_ins_have() -> None:
    assert called_on("queue")
    assert called_on("queue") <= {"put_nowait", "get", "empty"}
    assert called_on("writable")
    assert called_on("writable") <= {"set", "clear", "wait", "is_set"}


def test_every_attribute_uvicorn_sets_is_a_slot() -> None:
    # One that is not still works (in the instance dict), but brings the dict back: about
    # 1.5 KiB per connection (docs/performance.md, "Memory per WebSocket subscriber").
    assigned = set(re.findall(r"self\.(\w+)(?:: [^=\n]+)? = ", UVICORN_SOURCE))
    assert "pending_ping_payload" in assigned
    assert assigned <= set(UVICORN_ATTRIBUTES)
    assert "__slots__" not in websockets_sansio_impl.WebSocketsSansIOProtocol.__dict__


def test_the_protocol_is_uvicorns_default() -> None:
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    assert issubclass(LeanWebSocketProtocol, websockets_sansio_impl.WebSocketsSansIOProtocol)
    assert AutoWebSocketsProtocol is websockets_sansio_impl.WebSocketsSansIOProtocol
    # Dropped after the handshake: uvicorn must still name them so.
    assert "self.request = event" in UVICORN_SOURCE
    assert "self.response = self.conn.accept(event)" in UVICORN_SOURCE


async def test_inbox_hands_events_out_in_order_and_wakes_a_waiting_get() -> None:
    inbox = Inbox()
    assert inbox.empty()
    inbox.put_nowait({"type": "websocket.connect"})
    assert not inbox.empty()
    assert await inbox.get() == {"type": "websocket.connect"}
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.receive", "text": "1"})
    inbox.put_nowait({"type": "websocket.receive", "text": "2"})
    assert await waiting == {"type": "websocket.receive", "text": "1"}
    assert await inbox.get() == {"type": "websocket.receive", "text": "2"}
    assert inbox.empty()


async def test_a_cancelled_get_passes_its_event_on() -> None:
    inbox = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    first.cancel()  # woken, then cancelled before it ran: the event must reach `second`
    async with asyncio.timeout(5):
        assert await second == {"type": "websocket.disconnect", "code": 1000}
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_flag_wakes_every_waiter_and_survives_a_cancelled_one() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    flag.set()
    async with asyncio.timeout(5):
        assert await waiters[1]
        assert await waiters[2]
    assert flag.is_set()
    assert await flag.wait()
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    async with asyncio.timeout(5):
        assert await late


def test_uvicorn_arms_the_ping_timer_only_where_the_sweep_replaces_it() -> None:
    protocol = websockets_sansio_impl.WebSocketsSansIOProtocol
    armed = re.findall(r"self\.ping_timer = (?!None)(.*)", UVICORN_SOURCE)
    assert armed == ["self.loop.call_later(delay, self.send_keepalive_ping)"]
    assert "self.ping_timer = self.loop.call_later" in inspect.getsource(protocol.schedule_ping)
    # A closed connection leaves the sweep: uvicorn stops the keepalive when it is lost.
    assert "self.stop_keepalive()" in inspect.getsource(protocol.connection_lost)
    assert "self.stop_keepalive()" in inspect.getsource(protocol.shutdown)


class Connection:
    """Records the sweep's pings."""

    def __init__(self, fails: bool = False) -> None:
        self.pinged = asyncio.Event()
        self.fails = fails

    def send_keepalive_ping(self) -> None:
        self.pinged.set()
        if self.fails:
            raise RuntimeError("transport gone")


async def test_the_sweep_pings_what_is_due_and_only_that() -> None:
    loop = asyncio.get_running_loop()
    failures: list[object] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context["exception"]))
    sweep = KeepaliveSweep(loop, 0.01)
    due, failing, forgotten, later = (
        Connection(),
        Connection(fails=True),
        Connection(),
        Connection(),
    )
    sweep.add(failing, 0)
    sweep.add(due, 0)
    sweep.add(forgotten, 0)
    sweep.add(later, 3600)
    sweep.discard(forgotten)
    async with asyncio.timeout(5):
        await failing.pinged.wait()
        await due.pinged.wait()  # after a failing one in the same sweep
    assert [str(error) for error in failures] == ["transport gone"]
    assert not forgotten.pinged.is_set()
    assert not later.pinged.is_set()
    assert len(sweep) == 1  # only `later` is still waiting; the pinged ones re-arm themselves
    sweep.add(due, 0)  # as uvicorn does after a pong
    due.pinged.clear()
    async with asyncio.timeout(5):
        await due.pinged.wait()
    sweep.discard(later)
    assert len(sweep) == 0
