"""Outgoing webhooks for external CRMs: the same CTI events the desks get, signed.

Each configured webhook (``settings.webhooks``: url, secret, events,
max_attempts) receives ``POST url`` with the JSON body
``{"event": name, "payload": {...}, "sent_at": epoch}`` and headers

* ``X-Callcore-Event: <name>``
* ``X-Callcore-Delivery: <unique id>`` (same on every retry of one delivery)
* ``X-Callcore-Signature: sha256=<hex HMAC-SHA256(secret, body)>``

A 2xx answer is success; anything else (or a network error) is retried with
the one retry policy (``callcore.retry``: ``base_delay * 2**n``, capped at
``max_delay``) up to ``max_attempts``. Deliveries run concurrently (bounded), so one slow endpoint
never delays the bus or the other webhooks. Every task is owned and cancelled
by :meth:`WebhookSender.stop`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import httpx

from callcore.bus import Bus, Message, Subscription
from callcore.retry import retrying

log = logging.getLogger("callcore.cti.webhooks")


class NotDelivered(Exception):
    """The endpoint answered, but not with a 2xx."""


def sign(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


@dataclass
class Hook:
    url: str
    secret: str
    events: frozenset[str]
    max_attempts: int = 5

    @classmethod
    def of(cls, cfg: Any) -> "Hook":
        secret = cfg.secret.get_secret_value() if hasattr(cfg.secret, "get_secret_value") else str(cfg.secret or "")
        return cls(cfg.url, secret, frozenset(cfg.events), int(cfg.max_attempts))


class WebhookSender:
    def __init__(
        self,
        bus: Bus,
        hooks: Iterable[Any],
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        concurrency: int = 20,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._bus = bus
        self.hooks = [h if isinstance(h, Hook) else Hook.of(h) for h in hooks]
        self._client = client
        self._own_client = client is None
        self._timeout = timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sem = asyncio.Semaphore(concurrency)
        self._sleep = sleep
        self._sub: Subscription | None = None
        self._reader: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0
        self.attempts = 0

    async def start(self) -> None:
        if self._reader is not None or not self.hooks:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        names = frozenset().union(*(h.events for h in self.hooks))
        self._sub = self._bus.subscribe(None, predicate=lambda m: m.name in names)
        self._reader = asyncio.create_task(self._read(), name="cti-webhooks")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        for t in list(self._deliveries):
            t.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    @property
    def pending(self) -> int:
        return len(self._deliveries)

    async def _read(self) -> None:
        assert self._sub is not None
        while True:
            msg = await self._sub.get()
            for hook in self.hooks:
                if msg.name in hook.events:
                    task = asyncio.create_task(self.deliver(hook, msg), name=f"webhook-{msg.name}")
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)

    async def deliver(self, hook: Hook, msg: Message) -> bool:
        body = json.dumps(
            {"event": msg.name, "payload": msg.payload, "sent_at": time.time()}, ensure_ascii=False, default=str
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Callcore-Event": msg.name,
            "X-Callcore-Delivery": uuid.uuid4().hex,
            "X-Callcore-Signature": sign(hook.secret, body),
        }
        try:
            async for attempt in retrying(
                lambda: f"webhook {hook.url} for {msg.name}",
                attempts=hook.max_attempts,
                first_wait=self.base_delay,
                max_wait=self.max_delay,
                retry_on=(httpx.HTTPError, NotDelivered),
                sleep=self._sleep,
            ):
                with attempt:
                    self.attempts += 1
                    async with self._sem:
                        assert self._client is not None
                        resp = await self._client.post(hook.url, content=body, headers=headers)
                    if not 200 <= resp.status_code < 300:
                        raise NotDelivered(f"answered HTTP {resp.status_code}")
        except (httpx.HTTPError, NotDelivered):
            self.failed += 1
            return False
        self.delivered += 1
        return True
