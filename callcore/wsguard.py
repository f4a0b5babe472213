"""Slow websocket clients (issue 12): the writer of a session never blocks forever.

A websocket session reads its bus :class:`~callcore.bus.Subscription` and writes
each message to the client. A client that stops reading (a frozen browser tab, a
dead Wi-Fi link that TCP has not noticed yet) fills the kernel buffers, then
uvicorn's write buffer, and ``send_text`` waits for ``writable`` forever. Before
this module the writer did exactly that and the overflow flag was checked only
after the next ``sub.get()``: the client was never cut off and its queue sat
full.

:meth:`WsGuard.pump` is the writer with the policy:

* every send has a deadline (``send_timeout``, setting ``ws_send_timeout``);
* a client with ``max_queued`` messages waiting (setting ``ws_max_queued``) or
  whose bus queue overflowed is cut off before the next send;
* being cut off means a close frame with code 1013 ("try again later") and a
  reason saying which limit was hit, and, when even the close frame cannot be
  written within ``close_timeout``, an abort of the TCP connection so the file
  descriptor and the buffers are freed (see :func:`_abort`);
* each cut-off is counted by reason (:class:`SlowClientStats`, metric
  ``callcore_websocket_slow_disconnects_total{reason=...}``) and logged once.

A client that reconnects gets the usual ``hello`` with its agent state and its
current call's pop: that is the resync (the desk client reconnects on close).

Other sessions are never delayed by a slow one: the bus never awaits a
subscriber (``Bus.publish`` is ``put_nowait``), and each session has its own
writer task; this module only guarantees that the slow one's resources are
released within ``send_timeout`` + ``close_timeout``.

:class:`PushWriter` (issue 18 round five) is the same policy without a writer task
per socket: it is the bus subscription's ``sink``, so a message is written inside
``Bus.publish`` — on the AMI read loop, right when the pop is made — whenever the
ASGI ``send`` completes without waiting (the transport takes the frame: the usual
case). Only a send that has to wait (the peer's buffers are full) is finished in a
task, with the deadline, and what comes meanwhile waits behind it in a bounded
backlog; the limits and the cut-offs are :meth:`WsGuard.pump`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generator

log = logging.getLogger(__name__)

#: the close code sent to a client that is cut off (RFC 6455 "Try Again Later")
CLOSE_CODE = 1013
REASONS = ("send_timeout", "backlog", "overflow")


@dataclass(slots=True)
class SlowClientPolicy:
    send_timeout: float = 5.0
    max_queued: int = 500
    close_timeout: float = 1.0


@dataclass(slots=True)
class SlowClientStats:
    #: reason → clients disconnected for it (reasons: :data:`REASONS`)
    disconnected: Counter[str] = field(default_factory=Counter)
    #: cut-offs where not even the close frame could be written (the TCP connection was aborted)
    aborted: int = 0

    def by_reason(self) -> dict[str, int]:
        return {reason: self.disconnected.get(reason, 0) for reason in REASONS}


class WsGuard:
    """The policy and the counters, one per application (built by the composition root)."""

    def __init__(
        self,
        policy: SlowClientPolicy | None = None,
        stats: SlowClientStats | None = None,
        on_written: Callable[[str, float], None] | None = None,
    ) -> None:
        self.policy = policy or SlowClientPolicy()
        self.stats = stats or SlowClientStats()
        #: issue 18: called with (event name, seconds from the AMI read to this frame written)
        #: for every message that came from an AMI frame (``Message.origin``)
        self.on_written = on_written

    async def pump(self, ws: Any, sub: Any, encode: Callable[[Any], str], who: str = "client") -> None:
        """Write ``sub``'s messages to ``ws`` until cancelled; cut the client off when it is too slow.

        Returns (after closing or aborting the connection) when the client was cut
        off; other errors (the client went away) propagate as before.
        """
        policy, stats = self.policy, self.stats
        while True:
            msg = await sub.get()
            if sub.overflowed:
                await _cut(ws, stats, policy, who, "overflow", "messages were dropped for this client")
                return
            waiting = sub.queue.qsize()
            if waiting >= policy.max_queued:
                await _cut(ws, stats, policy, who, "backlog", f"{waiting} messages waiting (max {policy.max_queued})")
                return
            try:
                async with asyncio.timeout(policy.send_timeout):
                    await ws.send_text(encode(msg))
                origin = getattr(msg, "origin", 0.0)
                if origin and self.on_written is not None:
                    self.on_written(msg.name, time.perf_counter() - origin)
            except TimeoutError:
                await _cut(ws, stats, policy, who, "send_timeout", f"a message not taken within {policy.send_timeout:g} s")
                return


    def writer(
        self, send: Callable[[dict[str, Any]], Awaitable[None]], encode: Callable[[Any], str], *, who: str = "client",
        max_backlog: int = 1000, on_end: Callable[[], None] | None = None, raw_send: Any = None,
    ) -> "PushWriter":
        """A :class:`PushWriter` over the ASGI ``send`` callable, with this guard's policy and counters.
        ``raw_send``: the server's own ``send`` when ``send`` wraps it (to abort a frozen client)."""
        return PushWriter(self, send, encode, who, max_backlog, on_end, raw_send or send)


class PushWriter:
    """One websocket's writer, driven by the bus: :meth:`offer` is the subscription's sink.

    * nothing waiting and no send in flight: the frame is written at once — the ASGI
      ``send`` coroutine is run to its end inside :meth:`offer` when it does not have to
      wait (uvicorn's does not while the transport is writable);
    * a send that has to wait is finished in a task, within ``send_timeout``; messages
      offered meanwhile wait in the backlog (``max_backlog``: beyond it :meth:`offer`
      answers False and the bus marks the subscription overflowed);
    * before each send from the backlog the limits of :meth:`WsGuard.pump` apply: an
      overflowed subscription or ``max_queued`` messages waiting cut the client off
      (close 1013, abort when even that cannot be written) — as does a missed deadline.

    Text items (replies to the client's own requests) go the same way, in order.
    ``on_end`` is called once when the writer stops for good (cut off, or the client is gone).
    """

    __slots__ = ("guard", "send", "encode", "who", "max_backlog", "on_end", "raw_send", "backlog", "task", "ended", "sub")

    def __init__(self, guard: WsGuard, send: Callable[[dict[str, Any]], Awaitable[None]], encode: Callable[[Any], str],
                 who: str, max_backlog: int, on_end: Callable[[], None] | None, raw_send: Any) -> None:
        self.guard, self.send, self.encode, self.who = guard, send, encode, who
        self.max_backlog, self.on_end, self.raw_send = max_backlog, on_end, raw_send
        self.backlog: list[Any] = []  # a plain list: empty almost always (a deque costs 760 bytes a socket)
        self.task: asyncio.Task[None] | None = None
        self.ended = False
        self.sub: Any = None  # the bus subscription (its ``overflowed`` flag), set by the session

    # ------------------------------------------------------------------ input
    def offer(self, item: Any) -> bool:
        """Write ``item`` (a bus message or a text) now, or queue it behind the send in flight."""
        if self.ended:
            return True  # the session is ending: nothing more is written, nothing is counted as dropped
        if self.task is not None or self.backlog:
            if len(self.backlog) >= self.max_backlog:
                return False
            self.backlog.append(item)
            return True
        self._write_now(item)
        return True

    def stop(self) -> None:
        """The session ends: no more writes; a send in flight is cancelled."""
        self.ended = True
        self.backlog.clear()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    # ------------------------------------------------------------------ output
    def _text(self, item: Any) -> str:
        return item if type(item) is str else self.encode(item)

    def _write_now(self, item: Any) -> None:
        try:
            coro = self.send({"type": "websocket.send", "text": self._text(item)})
            yielded = _start(coro)
        except StopIteration:
            self._written(item)
            return
        except Exception as exc:  # the client is gone (uvicorn: ClientDisconnected) or cannot be encoded
            self._fail(exc)
            return
        # the transport could not take it now: finish this send, then the backlog, in a task
        self.task = asyncio.get_running_loop().create_task(self._drain(_Resumed(coro, yielded), item), name="ws-writer")

    def _written(self, item: Any) -> None:
        origin = getattr(item, "origin", 0.0)
        if origin and self.guard.on_written is not None:
            self.guard.on_written(item.name, time.perf_counter() - origin)

    async def _drain(self, first: Awaitable[None], item: Any) -> None:
        policy = self.guard.policy
        try:
            while True:
                try:
                    async with asyncio.timeout(policy.send_timeout):
                        await first
                except TimeoutError:
                    await self._cut("send_timeout", f"a message not taken within {policy.send_timeout:g} s")
                    return
                self._written(item)
                if not self.backlog or self.ended:
                    return
                if self.sub is not None and self.sub.overflowed:
                    await self._cut("overflow", "messages were dropped for this client")
                    return
                waiting = len(self.backlog) - 1
                if waiting >= policy.max_queued:
                    await self._cut("backlog", f"{waiting} messages waiting (max {policy.max_queued})")
                    return
                item = self.backlog.pop(0)
                first = self.send({"type": "websocket.send", "text": self._text(item)})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            self.task = None

    async def _cut(self, reason: str, detail: str) -> None:
        self.ended = True
        self.backlog.clear()
        await _cut(_AsgiClose(self.send, self.raw_send), self.guard.stats, self.guard.policy, self.who, reason, detail)
        self._end()

    def _fail(self, exc: Exception) -> None:
        log.debug("websocket %s: send failed: %r", self.who, exc)
        self.ended = True
        self.backlog.clear()
        self._end()

    def _end(self) -> None:
        if self.on_end is not None:
            on_end, self.on_end = self.on_end, None
            on_end()


def _start(coro: Any) -> Any:
    """Run a coroutine to its first suspension: StopIteration when it completed without one."""
    return coro.send(None)


class _Resumed:
    """An awaitable that carries on a coroutine already run up to its first suspension
    (``yielded``: the future it waits on), forwarding what the awaiting task sends or throws
    — what ``yield from`` does, minus the first ``send(None)``."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class _AsgiClose:
    """What :func:`_cut` and :func:`_abort` need of a connection, over the raw ASGI ``send``
    (``_send``, as Starlette's ``WebSocket`` names it: :func:`_abort` reaches the transport
    through it)."""

    __slots__ = ("_close_send", "_send")

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]], raw_send: Any) -> None:
        self._close_send, self._send = send, raw_send

    async def close(self, code: int, reason: str) -> None:
        await self._close_send({"type": "websocket.close", "code": code, "reason": reason})


async def _cut(ws: Any, stats: SlowClientStats, policy: SlowClientPolicy, who: str, reason: str, detail: str) -> None:
    stats.disconnected[reason] += 1
    log.warning("websocket %s disconnected: too slow (%s: %s); it can reconnect and resync", who, reason, detail)
    try:
        async with asyncio.timeout(policy.close_timeout):
            await ws.close(code=CLOSE_CODE, reason=f"too slow: {reason}")
    except TimeoutError:
        stats.aborted += 1
        _abort(ws)
    except Exception as exc:  # already gone: nothing left to free
        log.debug("websocket %s close after cut-off: %r", who, exc)


def _abort(ws: Any) -> None:
    """Drop the TCP connection of a client that cannot even take a close frame.

    ASGI has no "abort": ``websocket.close`` goes through uvicorn's
    ``send()``, which first awaits ``writable`` (cleared by ``pause_writing``
    while the peer does not read), and ``transport.close()`` waits for the
    write buffer to drain, which never happens (uvicorn 0.54
    ``protocols/websockets/websockets_sansio_impl.py``: ``send`` and
    ``run_asgi``). The ASGI ``send`` callable Starlette holds is the uvicorn
    protocol's bound method, so its ``transport`` is reachable; abort it.
    """
    send = getattr(ws, "_send", None)
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        with contextlib.suppress(Exception):
            transport.abort()
        return
    log.warning("websocket: cannot reach the transport of a frozen client to abort it (server: %r)", send)
