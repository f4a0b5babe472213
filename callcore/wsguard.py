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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

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
