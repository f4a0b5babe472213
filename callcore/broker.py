"""Cross-instance bus over NATS (issue 19): a relay next to the in-process :class:`~callcore.bus.Bus`.

Every instance keeps its in-process bus (subscribers, bounded queues, the websocket pump are
unchanged). With ``broker_url`` set, the composition root builds a :class:`RelayedBus` and a
:class:`NatsRelay`:

* **Out.** ``RelayedBus.publish`` delivers locally as before, then offers the message to the
  relay: a bounded buffer (oldest dropped and counted when the broker is away longer than the
  buffer lasts) drained by one owned task onto subject ``<prefix>.bus.<instance>``.
* **In.** The relay subscribes ``<prefix>.bus.*``; a message from another instance is decoded
  and handed to :meth:`RelayedBus.deliver_remote`, which reaches *keyed* subscribers only
  (websocket sessions: ``agent:<id>``, ``supervisor``, ``queue:<name>``). Wildcard subscribers
  (the webhook outbox, the wallboard feed) are process-local consumers of what *this*
  instance's CTI produced: the instance holding an Asterisk's AMI lease sends its webhooks
  once, instead of every instance sending them again.
* **No echo loops.** The connection is made with NATS ``no_echo`` and every envelope carries
  its instance name (an own message is dropped even if the server echoes it); a remote message
  is never re-published (``deliver_remote`` does not call the relay).
* **Message ids.** ``<instance>-<seq>``; the last :data:`SEEN` ids are remembered so a
  message that arrives twice (a re-sent buffer after a reconnect) is delivered once.
* **Reconnect.** nats-py reconnects for ever (``max_reconnect_attempts=-1``); the first connect
  is retried by the relay's own task with :func:`callcore.retry.backoff_delay`, so a process
  started before its broker comes up on its own. While disconnected the buffer holds the newest
  messages; a websocket that missed some resyncs from its ``hello`` like after any reconnect.
* **Pop latency.** ``Message.origin`` is a ``perf_counter`` of this process; it travels as a
  wall-clock time (``time.time()`` at the AMI read) and is mapped back onto the receiver's
  ``perf_counter``, so ``callcore_pop_latency_seconds`` on the receiving instance includes the
  broker hop (exact on one host; across hosts it includes the clocks' skew — NTP).

Request/reply (``request`` / ``serve``) carries call-control requests to the AMI lease holder
(:mod:`callcore.lease`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from callcore.bus import Bus, Message

log = logging.getLogger("callcore.broker")

#: how many message ids a relay remembers to drop duplicates
SEEN = 4096


def default_instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(eq=False)
class RelayedBus(Bus):
    """The in-process bus plus a relay: same public API as :class:`Bus`."""

    relay: Any = None
    remote_delivered: int = 0

    def publish(self, msg: Message) -> int:
        n = Bus.publish(self, msg)
        if self.relay is not None:
            self.relay.offer(msg)
        return n

    def deliver_remote(self, msg: Message) -> int:
        """A message another instance published: to keyed subscribers (websockets) only."""
        self.remote_delivered += 1
        return self._deliver(msg, self._keyed(msg, set()))


def encode(msg: Message, instance: str, msg_id: str) -> bytes:
    origin_wall = time.time() - (time.perf_counter() - msg.origin) if msg.origin else 0.0
    return json.dumps(
        {"id": msg_id, "from": instance, "name": msg.name, "payload": msg.payload,
         "audience": sorted(msg.audience), "origin": origin_wall},
        ensure_ascii=False, default=str, separators=(",", ":"),
    ).encode()


def decode(data: bytes) -> tuple[str, str, Message]:
    """``(id, from, message)``; raises ``ValueError`` on a malformed envelope."""
    env = json.loads(data)
    if not isinstance(env, dict) or not isinstance(env.get("name"), str) or not isinstance(env.get("payload"), dict):
        raise ValueError("not a callcore bus envelope")
    audience = env.get("audience") or []
    if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
        raise ValueError("bad audience")
    origin_wall = float(env.get("origin") or 0.0)
    origin = time.perf_counter() - (time.time() - origin_wall) if origin_wall else 0.0
    return str(env.get("id") or ""), str(env.get("from") or ""), Message(env["name"], env["payload"], frozenset(audience), origin)


class NatsRelay:
    """Relays a :class:`RelayedBus` over NATS. ``start`` returns at once; the connection is
    made (and re-made) by an owned task."""

    def __init__(
        self,
        bus: RelayedBus,
        url: str,
        *,
        instance: str | None = None,
        prefix: str = "callcore",
        max_buffer: int = 10_000,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
    ) -> None:
        self.bus = bus
        self.url = url
        self.instance = instance or default_instance_name()
        self.prefix = prefix
        self.subject = f"{prefix}.bus.{_token(self.instance)}"
        self._buffer: deque[Message] = deque(maxlen=max_buffer)
        self._wake = asyncio.Event()
        self._seq = itertools.count(1)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None
        self._reconnect = (reconnect_min, reconnect_max)
        self._services: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {}
        self._service_subs: dict[str, Any] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._listeners: dict[str, Callable[[bytes], None]] = {}
        self.connected = asyncio.Event()
        self.sent = 0
        self.received = 0
        self.dropped = 0  # buffer overflow or the client's own buffer full
        self.duplicates = 0
        self.malformed = 0
        self.state = "connecting"
        bus.relay = self

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="broker-relay")

    async def stop(self) -> None:
        self.state = "stopping"
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for t in list(self._inflight):
            t.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._nc is not None:
            try:
                async with asyncio.timeout(2):
                    await self._nc.drain()
            except Exception:  # closing anyway
                pass
            self._nc = None
        self.bus.relay = None
        self.state = "stopped"

    async def wait_connected(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------ out
    def offer(self, msg: Message) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest
        self._buffer.append(msg)
        self._wake.set()

    async def _run(self) -> None:
        import nats

        from callcore.retry import backoff_delay

        attempt = 0
        while self._nc is None:
            try:
                self._nc = await nats.connect(
                    self.url, name=self.instance, no_echo=True, allow_reconnect=True, max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5, connect_timeout=2,
                    disconnected_cb=self._disconnected, reconnected_cb=self._reconnected, error_cb=self._error,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff_delay(attempt, self._reconnect[0], self._reconnect[1])
                if attempt % 20 == 0:
                    log.warning("broker %s not reachable (%s), retrying in %.1f s", _redact(self.url), exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
        await self._nc.subscribe(f"{self.prefix}.bus.*", cb=self._on_msg)
        for subject, handler in list(self._services.items()):
            await self._subscribe_service(subject, handler)
        for subject, fn in list(self._listeners.items()):
            await self._subscribe_listener(subject, fn)
        self.state = "connected"
        self.connected.set()
        log.info("broker %s connected as %s", _redact(self.url), self.instance)
        while True:
            if not self._buffer:
                self._wake.clear()
                await self._wake.wait()
            while self._buffer:
                msg = self._buffer.popleft()
                try:
                    await self._nc.publish(self.subject, encode(msg, self.instance, f"{self.instance}-{next(self._seq)}"))
                    self.sent += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # OutboundBufferLimitError while reconnecting, or closed
                    self.dropped += 1
                    log.debug("broker publish of %s failed: %r", msg.name, exc)

    # ------------------------------------------------------------------ in
    async def _on_msg(self, m: Any) -> None:
        try:
            msg_id, sender, msg = decode(m.data)
        except (ValueError, TypeError):
            self.malformed += 1
            return
        if sender == self.instance:
            return  # own message (no_echo should already prevent it)
        if msg_id:
            if msg_id in self._seen:
                self.duplicates += 1
                return
            self._seen[msg_id] = None
            if len(self._seen) > SEEN:
                self._seen.popitem(last=False)
        self.received += 1
        self.bus.deliver_remote(msg)

    async def _disconnected(self) -> None:
        if self.state == "stopping":
            return
        self.state = "reconnecting"
        self.connected.clear()
        log.warning("broker %s disconnected, reconnecting", _redact(self.url))

    async def _reconnected(self) -> None:
        self.state = "connected"
        self.connected.set()
        log.info("broker %s reconnected", _redact(self.url))

    async def _error(self, exc: Exception) -> None:
        log.debug("broker error: %r", exc)

    # ------------------------------------------------------------------ plain subjects
    async def listen(self, subject: str, fn: Callable[[bytes], None]) -> None:
        """Call ``fn(data)`` for every message on ``<prefix>.<subject>`` from other instances."""
        self._listeners[subject] = fn
        if self._nc is not None and self.connected.is_set():
            await self._subscribe_listener(subject, fn)

    async def _subscribe_listener(self, subject: str, fn: Callable[[bytes], None]) -> None:
        async def cb(m: Any) -> None:
            try:
                fn(m.data)
            except Exception:  # a bad message must not end the subscription
                log.exception("broker listener %s failed", subject)

        await self._nc.subscribe(f"{self.prefix}.{subject}", cb=cb)

    async def publish_raw(self, subject: str, data: bytes) -> None:
        if self._nc is None or not self.connected.is_set():
            raise ConnectionError(f"broker {_redact(self.url)} not connected")
        await self._nc.publish(f"{self.prefix}.{subject}", data)

    # ------------------------------------------------------------------ request/reply
    async def serve(self, subject: str, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        """Answer requests on ``<prefix>.<subject>`` with ``handler(request) -> reply`` (JSON both),
        from now (or from the connection) until :meth:`unserve`."""
        self._services[subject] = handler
        if self._nc is not None and self.connected.is_set() and subject not in self._service_subs:
            await self._subscribe_service(subject, handler)

    async def unserve(self, subject: str) -> None:
        self._services.pop(subject, None)
        sub = self._service_subs.pop(subject, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # connection closed: the subscription went with it
                log.debug("unsubscribe %s: %r", subject, exc)

    async def _subscribe_service(self, subject: str, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        async def cb(m: Any) -> None:  # nats-py awaits callbacks one by one: serve each in a task
            task = asyncio.get_running_loop().create_task(answer(m), name=f"broker-serve {subject}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

        async def answer(m: Any) -> None:
            try:
                request = json.loads(m.data)
                reply = await handler(request if isinstance(request, dict) else {})
            except Exception as exc:  # the caller gets the failure, the relay goes on
                log.exception("broker service %s failed", subject)
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if m.reply and self._nc is not None:
                await self._nc.publish(m.reply, json.dumps(reply, default=str).encode())

        self._service_subs[subject] = await self._nc.subscribe(f"{self.prefix}.{subject}", cb=cb)

    async def request(self, subject: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request; raises ``TimeoutError`` when nobody answers in time, ``ConnectionError``
        when the broker is not connected."""
        if self._nc is None or not self.connected.is_set():
            raise ConnectionError(f"broker {_redact(self.url)} not connected")
        import nats.errors

        try:
            m = await self._nc.request(f"{self.prefix}.{subject}", json.dumps(body, default=str).encode(), timeout=timeout)
        except nats.errors.NoRespondersError:
            raise TimeoutError(f"nobody serves {subject}") from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"{subject}: no answer in {timeout} s") from None
        reply = json.loads(m.data)
        return reply if isinstance(reply, dict) else {"ok": False, "error": "malformed reply"}


def _token(name: str) -> str:
    """A NATS subject token: no dots, spaces or wildcards."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "instance"


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
