"""How long the event loop was unable to run, and how long a pop took to reach a desk
(issue 18: the two figures an operator needs to see a stall in production).

* :class:`LoopWatch` — an owned background task that asks to wake every ``interval``
  seconds and measures how late it woke: that lateness is the time some callback held the
  loop (a pop, an AGI answer and an AMI action are all delayed by as much). Every
  lateness goes into ``callcore_event_loop_lag_seconds``; a wake-up later than
  ``stall_threshold`` is a stall, counted, with the longest kept. With ``debug=True``
  (``CALLCORE_LOOP_DEBUG=1``) asyncio's own debug mode is switched on with
  ``slow_callback_duration = 20 ms``, so asyncio logs every callback over 20 ms with the
  coroutine or handle that ran it (``asyncio`` logger, WARNING).
* :data:`FRAME_CLOCK` — the time (``perf_counter``) at which the AMI socket read the data
  of the frames being handled now. The AMI protocol sets it while it hands frames to the
  CTI pipeline and clears it afterwards; the notifier stamps each outgoing message with it,
  and the websocket pump observes ``written - read`` into ``callcore_pop_latency_seconds``
  (AMI frame read → websocket frame written, by event name). A message that did not come
  from an AMI frame (an API action, the stats loop) carries 0 and is not observed.

Both are pure bookkeeping on the loop: one float comparison and one histogram update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

log = logging.getLogger("callcore.loop")


class FrameClock:
    """Process-wide, set only from the event loop thread (no lock needed)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = 0.0


FRAME_CLOCK = FrameClock()


class LoopWatch:
    def __init__(
        self,
        observe: Callable[[float], None] | None = None,
        *,
        interval: float = 0.1,
        stall_threshold: float = 0.05,
        debug: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.observe = observe
        self.interval = interval
        self.stall_threshold = stall_threshold
        self.debug = debug
        self._clock = clock
        self.stalls = 0
        self.longest = 0.0
        self.samples = 0

    def record(self, lateness: float) -> None:
        """One wake-up ``lateness`` seconds after it was due (pure; the task calls it)."""
        lateness = max(0.0, lateness)
        self.samples += 1
        if lateness > self.longest:
            self.longest = lateness
        if lateness > self.stall_threshold:
            self.stalls += 1
            log.warning("event loop stalled for %.0f ms (threshold %.0f ms)", lateness * 1000, self.stall_threshold * 1000)
        if self.observe is not None:
            self.observe(lateness)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.debug:
            loop.set_debug(True)
            loop.slow_callback_duration = 0.02
            logging.getLogger("asyncio").setLevel(logging.WARNING)
        clock, interval = self._clock, self.interval
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            self.record(clock() - due)
