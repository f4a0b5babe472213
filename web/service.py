"""The web package's running part: the wallboard feed.

One owned task reads every bus message (a wildcard subscription, like the webhook
sender), feeds ``call.*`` / ``agent.status`` into the :class:`~web.wallboard.WallboardBook`
and, right after each CTI ``queue.stats`` tick, pushes ``wallboard.update`` to supervisors
(:mod:`web.notifier`). Nothing is polled: the tick is CTI's own push.

With the report service (``reports``, issue 16) the wallboard's figures are the report
store's:

* the book's per-agent handled/missed counts and the abandoned-calls list are counted from
  the KPI facts as they are recorded (a ``ReportService.observers`` hook) and read back
  from the store at start-up and when the center's day rolls over (a restart shows the
  same figures);
* a second owned task computes the **KPI tiles** every ``wallboard.kpi_refresh_seconds``
  (never per event): today's ASA, AHT, abandon rate and service level per queue
  (``ReportService.queue_report`` — the same as ``GET /api/reports/queues``) and the current
  15-minute interval's Erlang C / A staffing (agents needed for the queue's service-level
  target). Every ``wallboard.update`` carries the latest figures with the time they were
  computed at (``kpis.at``: the page shows their age).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from callcore.bus import Bus, Subscription
from web.models import WebConfig
from web.notifier import WebNotifier
from web.wallboard import FACT_KINDS, WallboardBook

log = logging.getLogger("callcore.web")

#: the KPI tiles' figures, as ``GET /api/reports/queues`` names them (docs/metrics.md)
KPI_FIELDS = ("offered", "answered", "abandoned", "asa_seconds", "aht_seconds", "abandon_rate_pct",
              "service_level_pct", "service_level_seconds", "service_level_formula")


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
        reports: Any = None,
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
        self._kpi_task: asyncio.Task[None] | None = None
        self.reports = reports  # reports.service.ReportService (or None: no KPI tiles, no durable counts)
        if reports is not None:
            self.book.day_of = reports.day_of  # the center's day, as the reports count it
        self.kpi_every = float(config.wallboard.kpi_refresh_seconds)
        #: the latest KPI tiles: {"at", "interval_start", "queues": {queue: {...}}} (None until computed)
        self.kpis: dict[str, Any] | None = None
        self.kpi_runs = 0
        self.updates = 0
        self.overflows = 0

    # -------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._seed_agents()
        loop = asyncio.get_running_loop()
        if self.reports is not None:
            self.reports.observers.append(self._facts)  # before the first await: no fact slips between
            try:
                await self.seed_from_store()
            except Exception as exc:  # the database is down: the KPI task tries again
                log.warning("wallboard: reading today's facts back failed (%s); retrying", exc)
            self._kpi_task = loop.create_task(self._kpi_loop(), name="web-wallboard-kpis")
        self._sub = self.bus.subscribe(None)
        self._task = loop.create_task(self._run(self._sub), name="web-wallboard")

    async def stop(self) -> None:
        for task in (self._task, self._kpi_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._kpi_task = None
        if self.reports is not None and self._facts in self.reports.observers:
            self.reports.observers.remove(self._facts)
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

    # -------------------------------------------------- the report store
    def _facts(self, facts: list[Any]) -> None:
        """``ReportService.observers``: new facts, as they are recorded."""
        self.book.observe_facts(facts, self._clock())

    async def seed_from_store(self) -> int:
        """Read today's facts back into the book (start-up, the day's roll); returns how many were new."""
        now = self._clock()
        self.book.observe_facts((), now)  # roll the book's day first
        day = self.book.day
        assert day is not None
        facts = await self.reports.facts_of_day(now, FACT_KINDS)
        return self.book.seed(facts, day)

    async def _kpi_loop(self) -> None:
        failing = False
        while True:
            try:
                self.book.observe_facts((), self._clock())
                if self.book.seeded_day != self.book.day:
                    await self.seed_from_store()
                await self.refresh_kpis()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a DB outage: the tiles keep their age, and grow stale
                # the first failure with its traceback, then one line per try until it works again
                log.warning("wallboard: computing the KPI tiles failed: %s", exc, exc_info=not failing)
                failing = True
            await asyncio.sleep(self.kpi_every)

    async def refresh_kpis(self) -> dict[str, Any]:
        """Today's KPIs per queue and the current interval's staffing, from the report store."""
        from reports.service import bucket_start

        at = self._clock()
        today = await self.reports.queue_report(hi=at)
        slot = bucket_start(at, "15min", self.reports.tz)
        interval = await self.reports.queue_report(lo=slot, hi=at, interval="15min") if at > slot else []
        staffing = {r["queue"]: r.get("staffing") for r in interval}
        queues: dict[str, Any] = {}
        for r in today:
            queues[r["queue"]] = {k: r.get(k) for k in KPI_FIELDS} | {"staffing": staffing.get(r["queue"])}
        for q, st in staffing.items():
            queues.setdefault(q, {k: None for k in KPI_FIELDS} | {"staffing": st})
        self.kpis = {"at": at, "interval_start": slot, "queues": queues}
        self.kpi_runs += 1
        return self.kpis

    # ------------------------------------------------------------ views
    def _snapshot(self, queue_stats: list[dict[str, Any]], at: float) -> dict[str, Any]:
        return {**self.book.snapshot(queue_stats, at), "kpis": self.kpis}

    def publish(self, queue_stats: list[dict[str, Any]], at: float) -> int:
        self._seed_agents(only_new=True)
        self.updates += 1
        return self.notifier.wallboard_update(self._snapshot(queue_stats, at))

    def wallboard(self) -> dict[str, Any]:
        """The current wallboard (the page's resync after a (re)connect)."""
        self._seed_agents(only_new=True)
        return self._snapshot(self._queue_stats(), self._clock())

    def public_config(self) -> dict[str, Any]:
        queues = [q["queue"] for q in self._queue_stats()]
        return self.config.public(list(self._pause_reasons()), queues)
