"""The web package's running part: the wallboard feed.

One owned task reads every bus message (a wildcard subscription, like the webhook
sender), feeds ``call.*`` / ``agent.status`` into the :class:`~web.wallboard.WallboardBook`
and, right after each CTI ``queue.stats`` tick, pushes ``wallboard.update`` to supervisors
(:mod:`web.notifier`). Nothing is polled: the tick is CTI's own push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from callcore.bus import Bus, Subscription
from web.models import WebConfig
from web.notifier import WebNotifier
from web.wallboard import WallboardBook

log = logging.getLogger("callcore.web")


class WebService:
    def __init__(
        self,
        *,
        bus: Bus,
        config: WebConfig,
        agents: Callable[[], list[dict[str, Any]]],
        queue_stats: Callable[[], list[dict[str, Any]]],
        pause_reasons: Callable[[], list[str]],
        clock: Callable[[], float] = time.time,
        book: WallboardBook | None = None,
    ) -> None:
        self.bus = bus
        self.config = config
        self.notifier = WebNotifier(bus)
        self.book = book or WallboardBook()
        self._agents = agents
        self._queue_stats = queue_stats
        self._pause_reasons = pause_reasons
        self._clock = clock
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.updates = 0
        self.overflows = 0

    # -------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._seed_agents()
        self._sub = self.bus.subscribe(None)
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub), name="web-wallboard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def _seed_agents(self, only_new: bool = False) -> None:
        """The agents grid follows the directory: agents created since appear, deleted ones go."""
        views = self._agents()
        known = {v["id"] for v in views}
        for gone in set(self.book.agents) - known:
            del self.book.agents[gone]
        for view in views:
            if only_new and view["id"] in self.book.agents:
                continue
            live = view.get("state")
            if live:
                self.book.agents[live["agent_id"]] = dict(live)
            else:  # known to the directory, not seen by Asterisk yet
                self.book.agents[view["id"]] = {
                    "agent_id": view["id"], "name": view.get("name"), "status": "logged_out", "logged_in": False,
                    "queues": {}, "paused": False, "pause_reason": None,
                    "ringing_call": None, "current_call": None, "wrapup_until": None, "status_since": None,
                }

    async def _run(self, sub: Subscription) -> None:
        while True:
            msg = await sub.get()
            if sub.overflowed:  # we fell behind: numbers may miss a few events; say so and go on
                sub.overflowed = False
                self.overflows += 1
                log.warning("wallboard feed fell behind the bus; some events were dropped")
            try:
                if msg.name == "queue.stats":
                    if "queue.stats" in msg.audience:  # the all-queues tick (per-queue copies go to queue:<name>)
                        self.publish(msg.payload.get("queues") or [], float(msg.payload.get("at") or self._clock()))
                elif msg.name != "wallboard.update":
                    self.book.observe(msg.name, msg.payload, self._clock())
            except Exception:
                log.exception("wallboard feed failed on %s", msg.name)

    # ------------------------------------------------------------ views
    def publish(self, queue_stats: list[dict[str, Any]], at: float) -> int:
        self._seed_agents(only_new=True)
        self.updates += 1
        return self.notifier.wallboard_update(self.book.snapshot(queue_stats, at))

    def wallboard(self) -> dict[str, Any]:
        """The current wallboard (the page's resync after a (re)connect)."""
        self._seed_agents(only_new=True)
        return self.book.snapshot(self._queue_stats(), self._clock())

    def public_config(self) -> dict[str, Any]:
        queues = [q["queue"] for q in self._queue_stats()]
        return self.config.public(list(self._pause_reasons()), queues)
