"""The web package's running part: the wallboard feed.

One owned task reads every bus message (a wildcard subscription, like the webhook
sender) and feeds ``call.*`` / ``agent.status`` into the :class:`~web.wallboard.WallboardBook`;
a second one pushes ``wallboard.update`` to supervisors (:mod:`web.notifier`) **on change,
coalesced, as deltas** (issue 18: 2,000 agents in every snapshot, 50 supervisors, once a
second, was ~30 MB/s of JSON for the supervisors' browsers to parse):

* what changes it: a ``call.*`` / ``agent.status`` message or a KPI fact (the agents grid,
  the abandoned list), a queue change of CTI (``on_change``, a sync CTI dispatcher
  subscriber: a caller joined or left — the queue tiles and the waiting list), CTI's 1 s
  ``queue.stats`` tick (everything; it is also the heartbeat the page's "data age" reads),
  the KPI tiles' refresh;
* at most one push every ``coalesce_seconds`` (``wallboard.push_window_seconds``, 0.1 s): a
  change when no push went out for that long goes out at once, a change right after a push
  waits for the rest of the window, and every change in it goes out in the one push;
* each push is a delta of :class:`~web.wallboard.WallboardFeed` (``seq`` + only the changed
  agents, queues, lists), built from what changed only: the book tracks which agents' rows
  may differ (their state, their call, their counts), so a push costs those rows, not the
  2,000 of a big center's grid (issue 18 round five: ~3-7 ms → ~0.02 ms a push); every ``full_every_seconds`` (60 s) a full snapshot goes out
  instead (a scope change, anything a delta cannot express, is repaired by then);
  ``GET /api/web/wallboard`` answers the full snapshot with its ``seq``: the page loads it
  after every (re)connect and whenever it sees a gap in ``seq``, then applies the deltas.
  Nothing is polled.

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
from typing import Any, Callable, Iterable

from callcore.bus import Bus, Subscription
from web.models import WebConfig
from web.notifier import WebNotifier
from web.wallboard import FACT_KINDS, WallboardBook, WallboardFeed

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
        coalesce_seconds: float | None = None,  # default: config.wallboard.push_window_seconds
        full_every_seconds: float = 60.0,
        agent_ids: Callable[[], Iterable[str]] | None = None,
        agent_view: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.bus = bus
        self.config = config
        self.notifier = WebNotifier(bus)
        self.book = book or WallboardBook()
        self._agents = agents
        #: the directory's ids and one agent's view (``agents``' entry): with them a tick checks the
        #: directory by its ids and reads only the new agents' views, not all 2,000 (issue 18 round five)
        self._agent_ids = agent_ids
        self._agent_view = agent_view
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
        self.full_updates = 0
        self.overflows = 0
        self.feed = WallboardFeed()
        self.coalesce = float(config.wallboard.push_window_seconds if coalesce_seconds is None else coalesce_seconds)
        self.full_every = float(full_every_seconds)
        #: what changed since the last push: parts of the board to rebuild ("agents", "queues", "kpis")
        self._dirty: set[str] = set()
        self._tick: tuple[list[dict[str, Any]], float] | None = None  # the last CTI tick not pushed yet
        self._wake = asyncio.Event()
        self._push_task: asyncio.Task[None] | None = None
        self._last_push = float("-inf")  # time.monotonic()
        self._last_full = float("-inf")

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
        self._push_task = loop.create_task(self._pusher(), name="web-wallboard-push")

    async def stop(self) -> None:
        for task in (self._task, self._kpi_task, self._push_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._kpi_task = self._push_task = None
        if self.reports is not None and self._facts in self.reports.observers:
            self.reports.observers.remove(self._facts)
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def _seed_agents(self, only_new: bool = False) -> None:
        """The agents grid follows the directory: agents created since appear, deleted ones go."""
        book = self.book
        if only_new and self._agent_ids is not None and self._agent_view is not None:
            ids = set(self._agent_ids())
            for gone in [a for a in book.agents if a not in ids]:
                book.drop_agent(gone)
            views = [self._agent_view(a) for a in ids if a not in book.agents]
        else:
            views = self._agents()
            known = {v["id"] for v in views}
            for gone in [a for a in book.agents if a not in known]:
                book.drop_agent(gone)
        for view in views:
            if only_new and view["id"] in book.agents:
                continue
            live = view.get("state")
            if live:
                book.set_agent(live["agent_id"], live)
            else:  # known to the directory, not seen by Asterisk yet
                book.set_agent(view["id"], {
                    "agent_id": view["id"], "name": view.get("name"), "status": "logged_out", "logged_in": False,
                    "queues": {}, "paused": False, "pause_reason": None,
                    "ringing_call": None, "current_call": None, "wrapup_until": None, "status_since": None,
                })

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
                        self._tick = (msg.payload.get("queues") or [], float(msg.payload.get("at") or self._clock()))
                        self.changed("agents", "queues", "kpis")
                elif msg.name != "wallboard.update":
                    self.book.observe(msg.name, msg.payload, self._clock())
                    if msg.name == "agent.status" or msg.name.startswith("call."):
                        self.changed("agents", "queues")  # the grid, and the tiles' agents by state
            except Exception:
                log.exception("wallboard feed failed on %s", msg.name)

    # ------------------------------------------------------------ push
    def changed(self, *parts: str) -> None:
        """Something in these parts of the board changed: a push is due (coalesced)."""
        self._dirty.update(parts)
        self._wake.set()

    #: the CTI changes :meth:`on_change` is subscribed to (``cti.dispatcher``; wiring)
    CHANGE_KINDS = ("queue.updated", "call.queued")

    def on_change(self, change: Any, now: float) -> None:
        """CTI dispatcher subscriber (sync, cheap): a caller joined or left a queue — no bus
        message says so until the next ``queue.stats`` tick, the waiting tile is pushed now."""
        self.changed("queues")

    async def _pusher(self) -> None:
        while True:
            await self._wake.wait()
            wait = self._last_push + self.coalesce - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # every change until then goes out in this one push
            self._wake.clear()
            try:
                self.push()
            except Exception:
                log.exception("wallboard push failed")

    def push(self) -> int:
        """Publish what changed since the last push (a delta), or the full board when due."""
        loop_now = time.monotonic()
        parts, self._dirty = self._dirty, set()
        tick, self._tick = self._tick, None
        stats, at = tick if tick is not None else (None, self._clock())
        full = loop_now - self._last_full >= self.full_every
        if full:
            parts = {"agents", "queues", "kpis"}
        self._last_push = loop_now
        payload = self.feed.delta(self._snapshot(parts, stats, at, full))
        if full:
            self._last_full = loop_now
            self.full_updates += 1
            payload = self.feed.full()
        self.updates += 1
        return self.notifier.wallboard_update(payload)

    # -------------------------------------------------- the report store
    def _facts(self, facts: list[Any]) -> None:
        """``ReportService.observers``: new facts, as they are recorded."""
        if self.book.observe_facts(facts, self._clock()):
            self.changed("agents")

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
        self.changed("kpis")
        return self.kpis

    # ------------------------------------------------------------ views
    def _snapshot(self, parts: set[str], queue_stats: list[dict[str, Any]] | None, at: float,
                  full: bool = False) -> dict[str, Any]:
        """What may have changed, as :meth:`WallboardFeed.delta` takes it: the agents whose rows
        changed since the last push (the book tracks them: the cost is theirs, not the whole
        grid's; ``full``: every row) with the abandoned list when it changed, the queue tiles and
        the waiting list when "queues" is in ``parts``, the KPIs when "kpis" is."""
        if "agents" in parts and (queue_stats is not None or "kpis" in parts):
            self._seed_agents(only_new=True)  # the directory: at a tick or a full push, not per change
        if "queues" in parts and queue_stats is None:
            queue_stats = self._queue_stats()
        if full:
            snap = self.book.snapshot(queue_stats or [], at)
        else:
            snap = self.book.changes(queue_stats if "queues" in parts else None, at)
        if "kpis" in parts:
            snap["kpis"] = self.kpis
        return snap

    def publish(self, queue_stats: list[dict[str, Any]], at: float) -> int:
        """Push the board now with these CTI queue stats (as after a tick), not coalesced."""
        self._tick = (queue_stats, at)
        self._dirty.update(("agents", "queues", "kpis"))
        return self.push()

    def wallboard(self) -> dict[str, Any]:
        """The full wallboard with its ``seq`` (the page's resync after a (re)connect or a gap):
        whatever changed since the last push (the directory too) is pushed first, so the snapshot
        is now's and the next delta follows it; when nothing did, the last push's board — 50
        supervisors reloading at once after a restart cause one push, not 50."""
        known = set(self.book.agents)
        self._seed_agents(only_new=True)
        if set(self.book.agents) != known:
            self._dirty.add("agents")
        if {q["queue"] for q in self._queue_stats()} != set(self.feed.queues):  # a queue configured since
            self._dirty.add("queues")
        if self._dirty or self.feed.seq == 0:
            self._dirty.update(("agents", "queues"))
            self.push()
        return self.feed.full()

    def public_config(self) -> dict[str, Any]:
        queues = [q["queue"] for q in self._queue_stats()]
        return self.config.public(list(self._pause_reasons()), queues)
