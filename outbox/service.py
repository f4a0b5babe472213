"""The durable webhook outbox (issue 12): replaces the in-memory retries of
``cti/webhooks.py`` ``WebhookSender`` in the running application.

* **Write first.** Every bus message a hook wants becomes one
  :class:`~outbox.models.WebhookDeliveryRow` per hook *before* any HTTP request;
  a crash or restart after that point loses nothing: the next process finds the
  row ``pending`` and sends it.
* **Backoff.** A failed attempt (connection error, timeout, non-2xx) is retried
  at ``now + backoff_delay(attempt)`` — the one policy of ``callcore/retry.py``
  (capped exponential) — up to the hook's ``max_attempts``.
* **Dead letter.** After the last attempt the row is ``dead`` with its last
  error; ``GET /api/webhooks/deliveries?status=dead`` (admin) lists them and
  ``POST /api/webhooks/deliveries/{id}/retry`` puts one back in the queue.
* **At least once, deduplicable.** A crash between the receiver's 2xx and the
  ``delivered`` write sends the row again, always with the same
  ``X-Callcore-Delivery`` id (and the same signed body).
* **Database down.** Rows that cannot be stored wait in a bounded in-memory
  buffer (``max_unsaved``) and are stored in order when the database answers;
  beyond the bound the oldest are dropped, counted in ``lost`` and logged.

The signature (``X-Callcore-Signature``) and the hook settings are those of
``cti/webhooks.py`` (``sign``, ``Hook``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from typing import Any, Callable, Iterable

import httpx

from callcore.bus import Bus, Message, Subscription
from callcore.retry import backoff_delay, nap
from cti.webhooks import Hook, sign
from outbox.models import PENDING, WebhookDeliveryRow
from outbox.repository import OutboxRepository

log = logging.getLogger(__name__)


class OutboxSender:
    def __init__(
        self,
        bus: Bus,
        hooks: Iterable[Any],
        repository: OutboxRepository,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        first_wait: float = 1.0,
        max_wait: float = 300.0,
        poll_interval: float = 1.0,
        batch: int = 50,
        concurrency: int = 10,
        max_unsaved: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self.hooks = [h if isinstance(h, Hook) else Hook.of(h) for h in hooks]
        self._by_url = {h.url: h for h in self.hooks}
        self.repository = repository
        self._client = client
        self._own_client = client is None
        self._timeout = timeout
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.poll_interval = poll_interval
        self.batch = batch
        #: scale-out (issue 19): with several instances, due deliveries are claimed for this long
        self.claim_lease: float | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self.max_unsaved = max_unsaved
        self._clock = clock
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsaved: deque[WebhookDeliveryRow] = deque()
        self._wake = asyncio.Event()
        #: rows waiting in the database (refreshed by the worker) + rows not stored yet
        self._pending_db = 0
        self.delivered = 0
        self.failed = 0  # went dead
        self.attempts = 0
        self.lost = 0  # could not even be stored (buffer full while the database was down)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._tasks or not self.hooks:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        names = frozenset().union(*(h.events for h in self.hooks))
        self._sub = self._bus.subscribe(None, predicate=lambda m: m.name in names)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(), name="outbox-webhooks-reader"),
            loop.create_task(self._work(), name="outbox-webhooks-worker"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None
        with contextlib.suppress(Exception):  # store what the bus gave us, if the database lets us
            await asyncio.wait_for(self._store_unsaved(), 2)
        if self._unsaved:
            log.error("webhook outbox: %d deliveries could not be stored at shutdown", len(self._unsaved))
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    @property
    def pending(self) -> int:
        """Deliveries not done yet (readiness and metrics)."""
        return self._pending_db + len(self._unsaved)

    # --------------------------------------------------------------- intake
    def rows_for(self, msg: Message) -> list[WebhookDeliveryRow]:
        now = self._clock()
        body = json.dumps({"event": msg.name, "payload": msg.payload, "sent_at": now}, ensure_ascii=False, default=str)
        return [
            WebhookDeliveryRow(
                id=uuid.uuid4().hex, hook_url=h.url, event=msg.name, body=body, status=PENDING, attempts=0,
                max_attempts=h.max_attempts, next_attempt_at=now, created_at=now,
            )
            for h in self.hooks
            if msg.name in h.events
        ]

    async def _read(self) -> None:
        assert self._sub is not None
        while True:
            msg = await self._sub.get()
            for row in self.rows_for(msg):
                if len(self._unsaved) >= self.max_unsaved:
                    dropped = self._unsaved.popleft()
                    self.lost += 1
                    log.error("webhook outbox full while the database is down: dropped %s %s", dropped.event, dropped.id)
                self._unsaved.append(row)
            self._wake.set()

    async def _store_unsaved(self) -> None:
        while self._unsaved:
            rows = list(self._unsaved)
            await self.repository.add(rows)  # raises while the database is down: rows stay buffered, in order
            for _ in rows:
                self._unsaved.popleft()

    # --------------------------------------------------------------- worker
    async def _work(self) -> None:
        failures = 0
        while True:
            try:
                await self._store_unsaved()
                if self.claim_lease is None:
                    rows = await self.repository.due(self._clock(), self.batch)
                else:  # scale-out (issue 19): several instances share the outbox; each delivery claimed
                    rows = await self.repository.claim_due(self._clock(), self.batch, self.claim_lease)
                if rows:
                    await asyncio.gather(*(self._attempt(row) for row in rows))
                self._pending_db = sum(n for s, n in (await self.repository.counts()).items() if s == PENDING)
                failures = 0
                if len(rows) == self.batch:
                    continue  # more are due
                wait = self.poll_interval
                nxt = await self.repository.next_due_at()
                if nxt is not None:
                    wait = max(0.0, min(wait, nxt - self._clock()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: keep the buffer, try again later
                wait = backoff_delay(failures, self.poll_interval, 30.0)
                failures += 1
                log.warning("webhook outbox: database unavailable (%s); %d buffered, retrying in %.1f s",
                            exc, len(self._unsaved), wait)
            self._wake.clear()
            await nap(self._wake, wait)

    async def _attempt(self, row: WebhookDeliveryRow) -> None:
        hook = self._by_url.get(row.hook_url)
        attempts = row.attempts + 1
        if hook is None:
            await self.repository.dead(row.id, row.attempts, "hook no longer configured")
            self.failed += 1
            return
        body = row.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Callcore-Event": row.event,
            "X-Callcore-Delivery": row.id,
            "X-Callcore-Attempt": str(attempts),
            "X-Callcore-Signature": sign(hook.secret, body),
        }
        error: str | None = None
        self.attempts += 1
        try:
            async with self._sem:
                assert self._client is not None
                resp = await self._client.post(hook.url, content=body, headers=headers)
            if not 200 <= resp.status_code < 300:
                error = f"answered HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            await self.repository.delivered(row.id, attempts, self._clock())
            self.delivered += 1
        elif attempts >= row.max_attempts:
            await self.repository.dead(row.id, attempts, error)
            self.failed += 1
            log.error("webhook %s for %s (delivery %s): dead after %d attempts: %s", hook.url, row.event, row.id, attempts, error)
        else:
            delay = backoff_delay(attempts - 1, self.first_wait, self.max_wait)
            await self.repository.retry_later(row.id, attempts, self._clock() + delay, error)
            log.warning("webhook %s for %s (delivery %s) failed (attempt %d of %d): %s; retrying in %.1f s",
                        hook.url, row.event, row.id, attempts, row.max_attempts, error, delay)
