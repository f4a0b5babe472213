"""ONE small dispatcher: every :class:`cti.state.Change` goes to the subscribers
registered for its kind.

Contract (other packages code against it; add to it, never change it)::

    dispatcher.subscribe(name, handler, kinds=None)   # kinds: iterable of Change.kind, None = all
    handler(change: Change, now: float) -> None | Awaitable

* A **sync** handler runs inline, in registration order, on the caller's
  stack (the AMI read loop): it must be cheap — read memory, publish on the bus,
  spawn an owned task.
* An **async** handler (a coroutine function, or a handler whose result is
  awaitable) runs in an owned per-subscriber task, one change after the other
  in arrival order; it never blocks the AMI read loop.
* A failing subscriber is logged and counted (:attr:`failures`, also on
  ``/metrics`` as ``callcore_cti_subscriber_failures_total``) and never stops the
  others or the changes after it.

Kinds (see ``cti/events.yml`` for what reaches a desk): ``call.created``,
``call.queued``, ``call.ringing``, ``call.answered``, ``call.missed``,
``call.transferred``, ``call.updated``, ``call.held``, ``call.unheld``,
``call.abandoned``, ``call.ended``, ``agent.updated``, ``agent.wrapup``,
``queue.updated``, ``state.resynced``, ``asterisk.shutdown`` — and
``clock.tick`` (added: the CTI timer, every ``tick_interval``; ``data`` is
``None``), which time-driven subscribers such as overflow use; only a subscriber
that names it in ``kinds`` gets it (``kinds=None`` means every change of calls,
agents and queues).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from cti.state import Change

log = logging.getLogger("callcore.cti.dispatcher")

Handler = Callable[[Change, float], "None | Awaitable[Any]"]

#: kinds only a subscriber that names them gets (not with ``kinds=None``)
OPT_IN = frozenset({"clock.tick"})

#: every kind a Change can have (CtiState's, plus the dispatcher's own ``clock.tick``)
KINDS = (
    "call.created", "call.queued", "call.ringing", "call.answered", "call.missed", "call.transferred",
    "call.updated", "call.held", "call.unheld", "call.abandoned", "call.ended",
    "agent.updated", "agent.wrapup", "queue.updated", "state.resynced", "asterisk.shutdown", "clock.tick",
)


@dataclass
class _Subscriber:
    name: str
    handler: Handler
    kinds: frozenset[str] | None
    is_async: bool
    queue: "asyncio.Queue[tuple[Change, float, Awaitable[Any] | None]] | None" = None
    worker: "asyncio.Task[None] | None" = None
    busy: bool = False
    handled: int = 0

    def wants(self, kind: str) -> bool:
        if self.kinds is None:  # "all": every change of the calls, agents and queues — not the timer
            return kind not in OPT_IN
        return kind in self.kinds


class ChangeDispatcher:
    def __init__(self) -> None:
        self._subs: list[_Subscriber] = []
        self._by_kind: dict[str, list[_Subscriber]] = {}
        self.failures: Counter[str] = Counter()  # subscriber name -> failed changes
        self.dispatched = 0

    # ------------------------------------------------------------ register
    def subscribe(self, name: str, handler: Handler, kinds: Iterable[str] | None = None) -> None:
        if any(s.name == name for s in self._subs):
            raise ValueError(f"a subscriber named {name!r} is already registered")
        wanted = frozenset(kinds) if kinds is not None else None
        if wanted is not None:
            unknown = wanted - set(KINDS)
            if unknown:  # a typo, or a kind added to CtiState later: say so, do not refuse
                log.warning("subscriber %r asks for change kinds no part of callcore emits yet: %s", name, sorted(unknown))
        target = getattr(handler, "__call__", handler)
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(target)
        self._subs.append(_Subscriber(name, handler, wanted, is_async))
        self._by_kind.clear()

    def unsubscribe(self, name: str) -> None:
        for s in [s for s in self._subs if s.name == name]:
            if s.worker is not None:
                s.worker.cancel()
            self._subs.remove(s)
        self._by_kind.clear()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._subs]

    def _for(self, kind: str) -> list[_Subscriber]:
        subs = self._by_kind.get(kind)
        if subs is None:
            subs = self._by_kind[kind] = [s for s in self._subs if s.wants(kind)]
        return subs

    # ------------------------------------------------------------ dispatch
    def dispatch(self, changes: Iterable[Change], now: float) -> None:
        """Hand every change to its subscribers. Never raises, never awaits."""
        by_kind = self._by_kind
        for change in changes:
            self.dispatched += 1
            subs = by_kind.get(change.kind)
            if subs is None:
                subs = self._for(change.kind)
            for sub in subs:
                if sub.is_async:
                    self._enqueue(sub, change, now)
                    continue
                try:
                    result = sub.handler(change, now)
                except Exception:
                    self._failed(sub, change)
                    continue
                if result is not None and inspect.isawaitable(result):  # a plain callable that returned a coroutine
                    self._enqueue(sub, change, now, result)
                else:
                    sub.handled += 1

    def _enqueue(self, sub: _Subscriber, change: Change, now: float, awaitable: Awaitable[Any] | None = None) -> None:
        if sub.queue is None:
            sub.queue = asyncio.Queue()
        sub.queue.put_nowait((change, now, awaitable))
        if sub.worker is None or sub.worker.done():
            sub.worker = asyncio.get_running_loop().create_task(self._work(sub), name=f"cti-subscriber-{sub.name}")

    async def _work(self, sub: _Subscriber) -> None:
        assert sub.queue is not None
        while not sub.queue.empty():
            change, now, awaitable = sub.queue.get_nowait()
            sub.busy = True
            try:
                await (awaitable if awaitable is not None else sub.handler(change, now))  # type: ignore[misc]
                sub.handled += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failed(sub, change)
            finally:
                sub.busy = False

    def _failed(self, sub: _Subscriber, change: Change) -> None:
        self.failures[sub.name] += 1
        log.exception("CTI subscriber %s failed on %s (call %s)", sub.name, change.kind, change.call_id)

    def backlog(self) -> dict[str, int]:
        """Changes waiting per async subscriber (reliability: /readyz and /metrics)."""
        return {s.name: s.queue.qsize() + s.busy for s in self._subs if s.queue is not None}

    # ------------------------------------------------------------ lifecycle
    def pending(self) -> bool:
        """True while an async subscriber still has changes to handle."""
        return any(s.busy or (s.queue is not None and not s.queue.empty()) for s in self._subs)

    async def drain(self, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.pending():
            if loop.time() > deadline:
                raise TimeoutError("CTI subscribers still busy")
            await asyncio.sleep(0.005)

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the async subscribers finish what they were given (bounded), then cancel them."""
        try:
            await self.drain(timeout)
        except TimeoutError:
            log.warning("CTI subscribers still busy at shutdown: %s", [s.name for s in self._subs if s.busy])
        workers = [s.worker for s in self._subs if s.worker is not None]
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for s in self._subs:
            s.worker = None
