"""The webhook: each `PeriodResult` POSTed to `LEADERBOARD_WEBHOOK_URL`, at least once.

The body is the result's JSON (`store.period_codec`: the contract's field names at the
top level), signed as `X-Leaderboard-Signature: sha256=<hex HMAC-SHA256 of the body under
LEADERBOARD_WEBHOOK_SECRET>`; `X-Leaderboard-Delivery` is the outbox row's id, the same
on every attempt from any instance, so a receiver deduplicates on it.

Every instance polls the outbox (`store.sql.outbox`) every `poll_seconds`, claims each
due row with one conditional UPDATE, and POSTs it: a 2xx answer marks it delivered; any
other answer, a timeout or a refused connection schedules the next attempt with
exponential backoff (`retry_initial` doubling up to `retry_max`) until `retry_window`
after the result was made (at least 24 h), when the row is abandoned with an error log.
Redirects are not followed (they count as failures). The outbox lives in MySQL/SQLite,
so deliveries survive restarts and any instance picks them up.

httpx is the client: it was already locked for the tests, it is well kept, async and
has per-phase timeouts; it moved to the runtime dependencies for this.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from store.aio import cancel_and_wait
from store.errors import StoreUnavailable
from store.sql.outbox import SqlOutbox

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Leaderboard-Signature"
DELIVERY_HEADER = "X-Leaderboard-Delivery"
_DUE_PER_PASS = 50


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookObserver(Protocol):
    """Told about every attempt (metrics)."""

    def webhook_attempted(self, *, failed: bool) -> None:
        """One attempt, delivered or failed."""
        ...


class WebhookSender:
    """Delivers the outbox's due rows to one URL (see module doc)."""

    def __init__(
        self,
        outbox: SqlOutbox,
        *,
        url: str,
        secret: bytes,
        timeout: float = 10.0,
        retry_initial: float = 1.0,
        retry_max: float = 900.0,
        retry_window: float = 3 * 86_400.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        observer: WebhookObserver | None = None,
    ) -> None:
        self._outbox = outbox
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._retry_window_ms = int(retry_window * 1000)
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._observer = observer
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.depth = 0
        """Rows still to deliver, as last counted (the outbox-depth gauge)."""

    async def start(self) -> None:
        """Start polling the outbox."""
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="webhook sender")

    async def stop(self) -> None:
        """Stop polling; an attempt in flight is abandoned (its claim expires, it is retried)."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task], timeout=5.0, log=logger, what="webhook sender")
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except StoreUnavailable as error:
                logger.warning("webhook outbox unavailable: %s", error)
            await asyncio.sleep(self._poll_seconds)

    async def deliver_due(self) -> int:
        """One pass: attempt every due row this instance claims; how many were attempted."""
        now_ms = self._now_ms()
        attempted = 0
        for delivery_id in await self._outbox.due(now_ms, _DUE_PER_PASS):
            # Held past the attempt's own time limit, so no one else sends it meanwhile.
            until_ms = self._now_ms() + int((2 * self._timeout + 5) * 1000)
            claimed = await self._outbox.claim(delivery_id, now_ms, until_ms)
            if claimed is None:
                continue
            body, attempts, created_ms = claimed
            await self._attempt(delivery_id, body, attempts, created_ms)
            attempted += 1
        self.depth = await self._outbox.depth()
        return attempted

    async def _attempt(self, delivery_id: str, body: bytes, attempts: int, created_ms: int) -> None:
        error = await self._post(delivery_id, body)
        if self._observer is not None:
            self._observer.webhook_attempted(failed=error is not None)
        now_ms = self._now_ms()
        if error is None:
            await self._outbox.delivered(delivery_id, now_ms)
            logger.info("webhook delivery %s accepted (attempt %d)", delivery_id, attempts + 1)
            return
        if now_ms - created_ms >= self._retry_window_ms:
            await self._outbox.abandoned(delivery_id, now_ms, error)
            logger.error(
                "webhook delivery %s abandoned after %d attempts: %s",
                delivery_id,
                attempts + 1,
                error,
            )
            return
        delay = min(self._retry_initial * 2**attempts, self._retry_max)
        await self._outbox.failed(delivery_id, now_ms + int(delay * 1000), error)
        logger.warning(
            "webhook delivery %s failed (attempt %d, next in %.1f s): %s",
            delivery_id,
            attempts + 1,
            delay,
            error,
        )

    async def _post(self, delivery_id: str, body: bytes) -> str | None:
        """POST the body; None when the receiver took it (2xx), else why not."""
        client = self._client
        if client is None:
            return "the sender is stopped"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "leaderboard-webhook/1",
            SIGNATURE_HEADER: sign(self._secret, body),
            DELIVERY_HEADER: delivery_id,
        }
        try:
            response = await client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            return f"no answer within {self._timeout} s"
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
