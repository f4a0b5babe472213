"""Servers lost for good (issue 19 follow-up; docs/multi-asterisk.md "One server down").

A server's calls are reconciled by that server's resync when it comes back. One that never
comes back would leave them live forever: the calls a killed process's journal restored at
start-up (journal/live.py), and the calls it had when it went away — agents stuck "on a
call", the wallboard counting callers that are long gone. :class:`ServerLossWatch` (an owned
task, started by the composition root) ends them once: when a server has not been connected
for ``ami_server_lost_grace`` seconds (``0``: never), :meth:`cti.state.CtiState.lose_server`
ends each of its live calls with the end cause ``server lost`` and the changes go through the
CTI dispatcher like any event's (stored once by the persistence subscriber; desks and the
wallboard told). A server that comes back before the grace is over is reconciled by its
resync as always; one that comes back after it resyncs too (a call Asterisk still has is a
live call again).

Only the AMI consumer acts (``active``): a cluster standby's picture is the holder's, not its own.
The time a server has been down is measured on a monotonic clock (not the CTI clock, which
tests freeze); the ended calls are stamped with the CTI clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

log = logging.getLogger("callcore.cti")


class ServerLossWatch:
    def __init__(self, *, states: Callable[[], dict[str, str]], state: Any, dispatcher: Any, grace: float,
                 clock: Callable[[], float], monotonic: Callable[[], float] = time.monotonic,
                 active: Callable[[], bool] = lambda: True, interval: float | None = None) -> None:
        self.states = states
        self.state = state
        self.dispatcher = dispatcher
        self.grace = grace
        self.clock = clock
        self.monotonic = monotonic
        self.active = active
        #: how often the servers are looked at: a tenth of the grace, between 50 ms and 5 s
        self.interval = interval if interval is not None else min(5.0, max(0.05, grace / 10))
        self.down_since: dict[str, float] = {}  # server -> monotonic time it was first seen not connected
        self.lost: set[str] = set()  # servers whose calls were ended (until they are connected again)
        self.calls_ended = 0
        self._task: asyncio.Task[None] | None = None

    def check(self) -> list[str]:
        """One look at the servers; returns those whose calls were ended now."""
        if not self.active():  # a standby (or a holder that lost its lease): not our servers to judge
            self.down_since.clear()
            self.lost.clear()
            return []
        t = self.monotonic()
        states = self.states()
        due: list[str] = []
        for name, st in states.items():
            if st == "connected":
                self.down_since.pop(name, None)
                self.lost.discard(name)
                continue
            since = self.down_since.setdefault(name, t)
            if name not in self.lost and t - since >= self.grace:
                self.lost.add(name)
                due.append(name)
        for name in due:
            now = self.clock()
            changes = self.state.lose_server(name, now, unnamed=all(n in self.lost for n in states))
            ended = sum(1 for c in changes if c.kind == "call.ended")
            self.calls_ended += ended
            self.dispatcher.dispatch(changes, now)
            log.warning("Asterisk server %s not connected for %.0f s (ami_server_lost_grace): %d of its live "
                        "call(s) ended as 'server lost'", name or "(default)", t - self.down_since[name], ended)
        return due

    async def start(self) -> None:
        if self.grace > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ami-server-loss-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watch must outlive one bad look
                log.exception("server loss watch failed")
            await asyncio.sleep(self.interval)
