"""``ReportService``: the fact store's writer, the live counters and every report.

* :meth:`record` (sync, cheap) — the facts subscriber's sink: facts go to the live
  counters at once and to the database in an owned writer task (retried; telephony
  never waits on it). Keys already seen are dropped (idempotent).
* :class:`LiveCounters` — today's queue figures (wallboard, ``queue.stats``), folded
  from today's facts with the same formulas the reports use, so both always agree;
  loaded from the database on start (a restart keeps today's numbers).
* Reports — queues, agents, IVR, surveys — for ``[from, to)`` by interval (15 min, hour,
  day, week, month in the center's time zone). Queue figures come from the 15-minute
  rollups where a valid one exists, else straight from the facts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from reports import formulas as fm
from reports.facts import (
    QA_KINDS, RECORDING_KINDS, SPAN_KINDS, Fact, VisitFolder, fold_contacts, fold_ivr, fold_recordings, fold_scores,
    fold_spans, fold_surveys, fold_visits, unique,
)
from reports.repository import ReportRepository, SetBasedRollups
from reports.staffing import staffing_for_interval

log = logging.getLogger(__name__)

SLOT = 900  # rollup interval: 15 minutes
INTERVALS = ("15min", "hour", "day", "week", "month")
VISIT_KINDS = ("visit.entered", "visit.answered", "visit.completed", "visit.left", "wrapup")
COUNT_FIELDS = [f.name for f in fields(fm.QueueMetrics) if f.name not in ("queue", "sl_seconds", "sl_formula")]


class Invalid(ValueError):
    """Bad report parameters (the HTTP edge answers 400)."""


@dataclass
class ReportConfig:
    timezone: str = "UTC"
    queues: dict[str, fm.QueueConfig] = field(default_factory=dict)
    default_queue: fm.QueueConfig = field(default_factory=fm.QueueConfig)
    target_sl_pct: dict[str, float] = field(default_factory=dict)
    default_target_sl_pct: float = 80.0
    fcr_window_seconds: float = 72 * 3600
    resolved_dispositions: tuple[str, ...] = ("resolved",)
    survey_questions: dict[str, str] = field(
        default_factory=lambda: {"satisfaction": "csat", "csat": "csat", "nps": "nps", "resolved": "resolved"}
    )
    settle_seconds: float = 900.0  # a 15-minute slot is rolled up once its visits are this old and over
    #: the CTI's per-queue service-level threshold (``PUT /api/queues/{name}/settings``), used for a
    #: queue that ``report_queues`` does not configure
    sl_seconds_of: Callable[[str], float | None] | None = None

    def for_queue(self, queue: str) -> fm.QueueConfig:
        cfg = self.queues.get(queue)
        if cfg is not None:
            return cfg
        t = self.sl_seconds_of(queue) if self.sl_seconds_of is not None else None
        if t is not None and t != self.default_queue.service_level_seconds:
            return replace(self.default_queue, service_level_seconds=float(t))
        return self.default_queue

    @classmethod
    def from_settings(cls, settings: Any) -> "ReportConfig":
        queues = {}
        targets = {}
        for name, q in (getattr(settings, "report_queues", None) or {}).items():
            queues[name] = fm.QueueConfig(q.service_level_seconds, q.service_level_formula, q.short_abandon_seconds,
                                          q.exclude_short_abandons)
            targets[name] = q.target_service_level_pct
        return cls(
            timezone=getattr(settings, "report_timezone", "UTC"),
            queues=queues,
            target_sl_pct=targets,
            fcr_window_seconds=float(getattr(settings, "report_fcr_window_hours", 72)) * 3600,
            resolved_dispositions=tuple(getattr(settings, "report_resolved_dispositions", ("resolved",))),
        )


# ----------------------------------------------------------------- time buckets
def parse_time(value: str | float | None, tz: ZoneInfo, *, name: str) -> float | None:
    """Epoch seconds from an epoch number, an ISO date (``2026-12-02``, local midnight) or an ISO
    date-time (local when it has no offset)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: not a time: {value!r} (use 2026-12-02, 2026-12-02T09:00 or epoch seconds)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def bucket_start(t: float, interval: str, tz: ZoneInfo) -> float:
    local = datetime.fromtimestamp(t, tz)
    if interval == "15min":
        local = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    elif interval == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    elif interval == "day":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif interval == "week":  # ISO weeks start on Monday
        local = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    elif interval == "month":
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        raise Invalid(f"interval must be one of {', '.join(INTERVALS)}")
    return datetime(local.year, local.month, local.day, local.hour, local.minute, tzinfo=tz).timestamp()


def bucket_end(start: float, interval: str, tz: ZoneInfo) -> float:
    local = datetime.fromtimestamp(start, tz)
    if interval == "15min":
        nxt = local + timedelta(minutes=15)
    elif interval == "hour":
        nxt = local + timedelta(hours=1)
    elif interval == "day":
        nxt = local + timedelta(days=1)
    elif interval == "week":
        nxt = local + timedelta(days=7)
    else:
        nxt = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    # wall-clock arithmetic (a DST day has 23 or 25 hours)
    return datetime(nxt.year, nxt.month, nxt.day, nxt.hour, nxt.minute, tzinfo=tz).timestamp()


def day_bounds(now: float, tz: ZoneInfo) -> tuple[float, float]:
    start = bucket_start(now, "day", tz)
    return start, bucket_end(start, "day", tz)


# ---------------------------------------------------------------- live counters
class LiveCounters:
    """Today's queue figures (center's day), kept up to date fact by fact: each new fact changes
    one visit, whose old contribution to its queue's counts is taken out and the new one put in
    (O(1) per fact, however busy the day). The same formulas as the reports."""

    #: seconds between two staffing computations of one queue's interval (off-loop mode)
    STAFFING_REFRESH = 15.0

    def __init__(self, config: ReportConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.day: tuple[float, float] = (0.0, 0.0)
        #: issue 18: Erlang A costs 0.1 s at 6 erlangs, 2.5 s at 60 and 110 s at 600 (pure Python,
        #: holds the GIL), and the stats tick asked for it every second on the event loop. With a
        #: runner set (``ReportService.start(offload_staffing=True)``), ``staffing_now`` never
        #: computes: it answers the last figure of the interval and has the runner compute the new
        #: one in another process, at most every ``STAFFING_REFRESH`` s per queue. Without one
        #: (tests, tools), it computes inline as before.
        self.staffing_runner: Callable[[dict[str, Any], Callable[[dict[str, Any] | None], None]], bool] | None = None
        self.reset(0.0)

    def reset(self, now: float, facts: Iterable[Fact] = ()) -> None:
        self.day = day_bounds(now, self.tz)
        self._folder = VisitFolder()
        self._contrib: dict[tuple[str, int], fm.QueueMetrics] = {}
        self._queues: dict[str, fm.QueueMetrics] = {}
        self._configs: dict[str, fm.QueueConfig] = {}
        self._arrivals: dict[tuple[float, str], list[float]] = {}
        self._staffing: dict[tuple, dict[str, Any]] = {}
        #: (slot, queue) → the last staffing computed for it, and when a computation was started
        self._staffing_last: dict[tuple[float, str], dict[str, Any]] = {}
        self._staffing_started: dict[tuple[float, str], float] = {}
        self.apply(facts, now)

    def apply(self, facts: Iterable[Fact], now: float) -> None:
        if not (self.day[0] <= now < self.day[1]):
            self.reset(now)
        for f in facts:
            if f.kind not in VISIT_KINDS or not (self.day[0] <= f.anchor_at < self.day[1]):
                continue
            touched = self._folder.add(f)
            for v in touched:
                self._count(v)
            if f.kind == "visit.entered" and touched:
                self._arrivals.setdefault((bucket_start(f.anchor_at, "15min", self.tz), f.queue or ""), []).append(
                    f.anchor_at)

    def _count(self, v: fm.Visit) -> None:
        cfg = self._configs.setdefault(v.queue, self.config.for_queue(v.queue))
        new = fm.queue_metrics(v.queue, [v], cfg)
        m = self._queues.setdefault(v.queue, fm.QueueMetrics(v.queue, sl_seconds=cfg.service_level_seconds,
                                                             sl_formula=cfg.sl_formula))
        old = self._contrib.get((v.call_id, v.seq))
        if old is not None:
            m.add(old, -1)
        m.add(new)
        self._contrib[(v.call_id, v.seq)] = new

    def metrics(self, now: float) -> dict[str, fm.QueueMetrics]:
        if not (self.day[0] <= now < self.day[1]):
            self.reset(now)
        for q, used in list(self._configs.items()):
            if self.config.for_queue(q) != used:  # a threshold changed: count that queue again
                del self._configs[q]
                self._queues.pop(q, None)
                for v in self._folder.visits.values():
                    if v.queue == q:
                        self._contrib.pop((v.call_id, v.seq), None)
                        self._count(v)
        return self._queues

    def queue_today(self, queue: str, now: float) -> dict[str, Any]:
        """The wallboard's ``*_today`` figures of one queue (same formulas as the reports)."""
        m = self.metrics(now).get(queue) or fm.QueueMetrics(
            queue, sl_seconds=self.config.for_queue(queue).service_level_seconds,
            sl_formula=self.config.for_queue(queue).sl_formula)
        d = m.to_dict()
        return {
            "offered_today": m.offered,
            "answered_today": m.answered,
            "abandoned_today": m.abandoned,
            "short_abandoned_today": m.short_abandoned,
            "timeouts_today": m.timeouts,
            "answered_within_sl": m.answered_in_sl,
            "service_level_seconds": m.sl_seconds,
            "service_level_formula": m.sl_formula,
            "service_level": None if m.service_level is None else round(m.service_level, 1),
            "asa_seconds": d["asa_seconds"],
            "aht_seconds": d["aht_seconds"],
            "avg_talk_seconds": d["avg_talk_seconds"],
            "longest_wait_today": d["longest_wait_seconds"],
            "staffing": self.staffing_now(queue, m, now),
        }

    def staffing_now(self, queue: str, today: fm.QueueMetrics, now: float) -> dict[str, Any]:
        """Agents needed in the current 15-minute interval (Erlang C and A) from the arrivals so far
        in it, scaled to the whole interval, and today's AHT and patience (cached per input)."""
        slot = bucket_start(now, "15min", self.tz)
        arrived = sum(1 for t in self._arrivals.get((slot, queue), ()) if t <= now)
        elapsed = max(60.0, now - slot)  # at least a minute, or the first caller reads as a flood
        offered = round(arrived * SLOT / elapsed) if arrived else 0
        aht = round(today.aht, 1) if today.aht else None
        key = (slot, queue, offered, aht, today.abandoned + today.timeouts,
               round(today.wait_answered_total + today.wait_unanswered_total))
        if key in self._staffing:
            return self._staffing[key]
        if len(self._staffing) > 1000:
            self._staffing.clear()
        head = {"interval_start": datetime.fromtimestamp(slot, self.tz).isoformat(), "arrived": arrived}
        args = dict(interval_seconds=SLOT, offered=offered, aht=aht,
                    target_sl_pct=self.config.target_sl_pct.get(queue, self.config.default_target_sl_pct),
                    target_seconds=today.sl_seconds, total_wait_seconds=key[5], abandons=key[4])
        if self.staffing_runner is None or self._cheap(args):
            self._staffing[key] = {**head, **staffing_for_interval(**args).to_dict()}
            return self._staffing[key]
        return self._staffing_off_loop((slot, queue), key, head, args, now)

    #: below these, a staffing computation costs well under a millisecond and is done inline:
    #: the child process is for the big intervals (its start costs ~1 s of CPU)
    INLINE_ERLANGS = 0.5  # any model (Erlang A included) under half an erlang (a few ms at most)
    INLINE_ERLANGS_C = 500.0  # Erlang C alone (no abandons, so no Erlang A): 0.25 ms at 200 erlangs

    def _cheap(self, args: dict[str, Any]) -> bool:
        traffic = args["offered"] / args["interval_seconds"] * (args["aht"] or 0.0) if args["interval_seconds"] else 0.0
        return traffic < self.INLINE_ERLANGS or (not args["abandons"] and traffic < self.INLINE_ERLANGS_C)

    def _staffing_off_loop(self, where: tuple[float, str], key: tuple, head: dict[str, Any], args: dict[str, Any],
                           now: float) -> dict[str, Any]:
        last = self._staffing_last.get(where)
        started = self._staffing_started.get(where)
        if started is None or now - started >= self.STAFFING_REFRESH:

            def done(need: dict[str, Any] | None) -> None:
                if need is None:  # the computation failed: try again at the next tick
                    self._staffing_started.pop(where, None)
                else:
                    self._staffing[key] = self._staffing_last[where] = {**head, **need}

            if self.staffing_runner is not None and self.staffing_runner(args, done):
                self._staffing_started[where] = now
                for old in [w for w in self._staffing_last if w[0] < where[0]]:  # earlier intervals
                    self._staffing_last.pop(old, None)
                    self._staffing_started.pop(old, None)
        if last is not None:
            return {**last, "arrived": head["arrived"], "stale": True}
        return {**head, "offered": args["offered"], "pending": True,
                "agents_needed_erlang_c": None, "agents_needed_erlang_a": None}


def _staffing_executor() -> Any:
    """A one-process pool; a thread in a process that may not have children (a daemonic
    multiprocessing child, e.g. the benchmarks' server): the thread gives the GIL back every
    ``sys.getswitchinterval()`` (5 ms), so the loop still runs, only slower while it computes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if multiprocessing.current_process().daemon:
        log.warning("reports: a daemonic process cannot start the staffing process; computing in a thread")
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="staffing")
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Staffing-process initializer: end when the server that started it is gone. A server killed
    with SIGKILL (or the OOM killer) runs no shutdown, and its idle worker, blocked on a queue
    whose writer nobody closes, used to stay behind for ever (found as orphans after the
    ``kill -9`` tests)."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _staffing_dict(args: dict[str, Any]) -> dict[str, Any]:
    """Runs in the staffing process (module-level: picklable)."""
    return staffing_for_interval(**args).to_dict()


# ---------------------------------------------------------------------- service
class ReportService:
    def __init__(
        self,
        repository: ReportRepository,
        config: ReportConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        open_spans: Callable[[float], list[fm.AgentSpan]] | None = None,
        retry_seconds: float = 2.0,
        rollup_every: float | None = 300.0,
    ) -> None:
        self.repository = repository
        self.config = config or ReportConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.clock = clock
        self.live = LiveCounters(self.config)
        self.open_spans = open_spans
        self.retry_seconds = retry_seconds
        self.rollup_every = rollup_every
        #: scale-out (issue 19): with several instances, only the AMI holder rolls up; None: always
        self.leader: Callable[[], bool] | None = None
        self._roller: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[list[Fact]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._seen: dict[str, float] = {}  # keys recorded recently (bounded by age)
        self._pending = 0
        self.write_failures = 0
        self.facts_written = 0
        #: False: every report from the facts alone (the benchmark's baseline; a check that both agree)
        self.use_rollups = True
        #: rollups built inside the database (``reports.rollup_sql``); False: folded here from the
        #: facts read as rows (the reference; the benchmark's "before")
        self.set_based = True
        #: called with every batch of new facts, right after the live counters took them (sync, cheap:
        #: the web wallboard's per-agent and abandoned-call figures; wired in callcore/wiring.py)
        self.observers: list[Callable[[list[Fact]], None]] = []
        self._staffing_pool: Any = None  # concurrent.futures.ProcessPoolExecutor, started on first use
        self._staffing_busy = False

    @classmethod
    def from_settings(cls, settings: Any, sessionmaker: Any, **kw: Any) -> "ReportService":
        return cls(ReportRepository(sessionmaker), ReportConfig.from_settings(settings), **kw)

    # -------------------------------------------------------------- lifecycle
    async def start(self, load_today: bool = True, *, offload_staffing: bool = False) -> None:
        """Start the writer (and the rollup loop); ``load_today`` fills the live counters from
        the store (a process that only writes, e.g. classic AGI, skips it). ``offload_staffing``
        (the server): the live Erlang C/A staffing is computed in a child process, never on the
        event loop (:attr:`LiveCounters.staffing_runner`)."""
        now = self.clock()
        if offload_staffing:
            self.live.staffing_runner = self._run_staffing
        if load_today:
            lo, hi = day_bounds(now, self.tz)
            self.live.reset(now, await self.repository.facts(lo, hi, VISIT_KINDS))
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="reports-writer")
        if self.rollup_every:
            self._roller = asyncio.create_task(self._rollup_loop(), name="reports-rollups")

    def _run_staffing(self, args: dict[str, Any], done: Callable[[dict[str, Any] | None], None]) -> bool:
        """One staffing computation in the staffing process (started on first use, one at a time)."""
        if self._staffing_busy:
            return False
        try:
            if self._staffing_pool is None:
                self._staffing_pool = _staffing_executor()
            fut = asyncio.get_running_loop().run_in_executor(self._staffing_pool, _staffing_dict, args)
        except Exception:  # e.g. a broken pool (its process was killed): start a new one next time
            log.exception("reports: cannot start the staffing computation")
            pool, self._staffing_pool = self._staffing_pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            return False
        self._staffing_busy = True

        def finished(f: "asyncio.Future[dict[str, Any]]") -> None:
            self._staffing_busy = False
            if f.cancelled():
                return
            if f.exception() is not None:
                log.warning("reports: staffing computation failed: %r", f.exception())
                pool, self._staffing_pool = self._staffing_pool, None  # a BrokenProcessPool stays broken
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                done(None)
            else:
                done(f.result())

        fut.add_done_callback(finished)
        return True

    def _stop_staffing(self) -> None:
        pool, self._staffing_pool = self._staffing_pool, None
        self.live.staffing_runner = None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # a 600-erlang Erlang A runs for minutes: do not wait for it at shutdown
            proc.terminate()

    async def stop(self, timeout: float = 5.0) -> None:
        self._stop_staffing()
        if self._writer is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            log.warning("reports: %d fact batches not written at shutdown", self._pending)
        for task in (self._writer, self._roller):
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._writer = self._roller = None

    # -------------------------------------------------------------- recording
    def record(self, facts: list[Fact]) -> None:
        """The subscriber's sink: synchronous, never blocks on the database."""
        now = self.clock()
        new = [f for f in facts if f.key not in self._seen]
        if not new:
            return
        for f in new:
            self._seen[f.key] = now
        if len(self._seen) > 200_000:  # forget old keys; the database's unique key stays the guard
            cutoff = now - 3 * 86400
            self._seen = {k: t for k, t in self._seen.items() if t >= cutoff}
        self.live.apply(new, now)
        for observer in self.observers:
            try:
                observer(new)
            except Exception:  # noqa: BLE001 - an observer's bug never loses a fact
                log.exception("reports: a fact observer failed")
        if self._queue is None:
            raise RuntimeError("ReportService.record before start()")
        self._pending += 1
        self._queue.put_nowait(new)

    async def facts_of_day(self, now: float, kinds: Iterable[str]) -> list[Fact]:
        """The stored facts of ``kinds`` reported on the center's day of ``now`` (``anchor_at``)."""
        lo, hi = day_bounds(now, self.tz)
        return await self.repository.facts(lo, hi, kinds)

    def day_of(self, t: float) -> str:
        """The center's calendar day of ``t`` (``report_timezone``), e.g. ``2026-12-03``."""
        return datetime.fromtimestamp(t, self.tz).date().isoformat()

    async def flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0.01)

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._queue.get()
            while not self._queue.empty() and len(batch) < 2000:
                batch += self._queue.get_nowait()
                self._pending -= 1
            while True:
                try:
                    self.facts_written += await self.repository.add_facts(batch)
                    await self._invalidate_rollups(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - retried: a fact is never dropped for a DB hiccup
                    self.write_failures += 1
                    log.exception("reports: writing %d facts failed; retrying in %.1f s", len(batch), self.retry_seconds)
                    await asyncio.sleep(self.retry_seconds)
            self._pending -= 1

    async def _invalidate_rollups(self, batch: list[Fact]) -> None:
        slots = {bucket_start(f.anchor_at, "15min", self.tz) for f in batch if f.kind in VISIT_KINDS}
        now = self.clock()
        for s in slots:
            if s + SLOT + self.config.settle_seconds <= now:  # only slots that may already be rolled up
                await self.repository.replace_rollups(s, s + 1, [])
                day = bucket_start(s, "day", self.tz)
                await self.repository.replace_rollups(day, day + 1, [], spans=("day",))
        for day in sorted(self._agent_days_touched(batch)):
            if bucket_end(day, "day", self.tz) + self.config.settle_seconds <= now:
                await self.repository.replace_agent_rollups(day, day + 1, [])
        window = self.config.fcr_window_seconds
        extra = [f.at if f.kind == "survey.answer" else f.anchor_at for f in batch if f.kind in EXTRA_KINDS]
        if extra:  # a contact can be the repeat of one up to a window before it: those days' FCR changes
            lo, hi = bucket_start(min(extra) - window, "day", self.tz), max(extra)
            if bucket_end(lo, "day", self.tz) + window + self.config.settle_seconds <= now:
                await self.repository.replace_rollups(lo, hi + 1, [], spans=(EXTRA_SPAN,))

    def _agent_days_touched(self, batch: list[Fact]) -> set[float]:
        """The center's days whose agent rollup a fact changes: a visit's, a recording's or a
        score's day (its anchor), a survey answer's (its time), every day a span covers."""
        days: set[float] = set()
        for f in batch:
            if f.kind in AGENT_ROLLUP_KINDS:
                days.add(bucket_start(f.at if f.kind == "survey.answer" else f.anchor_at, "day", self.tz))
            elif f.kind in SPAN_KINDS:
                d, end = bucket_start(float(f.data.get("start", f.anchor_at)), "day", self.tz), float(f.data.get("end", f.at))
                while d < end and len(days) < 400:
                    days.add(d)
                    d = bucket_end(d, "day", self.tz)
        return days

    # -------------------------------------------------------------- rollups
    def _settled(self, visits: list[fm.Visit], end: float, now: float) -> bool:
        return end + self.config.settle_seconds <= now and not any(v.outcome == "in_progress" for v in visits)

    def _rollup_rows(self, span: str, start: float, visits: list[fm.Visit]) -> list[dict[str, Any]]:
        rows = []
        for q, qv in _by_queue(visits).items():
            cfg = self.config.for_queue(q)
            m = fm.queue_metrics(q, qv, cfg)
            rows.append({"span": span, "interval_start": start, "queue": q, "config": asdict(cfg),
                         "counts": {k: getattr(m, k) for k in COUNT_FIELDS}})
        if span == "day" and not rows:  # a day without calls is covered too
            rows.append({"span": span, "interval_start": start, "queue": "", "config": {}, "counts": {}})
        return rows

    async def rebuild_rollups(self, lo: float, hi: float, now: float | None = None) -> int:
        """(Re)build the rollups of [lo, hi): 15-minute slots, and the center's days that lie wholly
        inside. Slots and days with visits still going, or younger than ``settle_seconds``, are left
        to be computed from the facts. Returns how many 15-minute slots were written.

        Set-based (issue 18): each rollup table's rows are built inside the database in one
        ``INSERT … SELECT`` (``reports.rollup_sql``) — unless :attr:`set_based` is off or the period
        has a time-zone offset change (a DST day: 15-minute slots are then the Python ones)."""
        now = self.clock() if now is None else now
        if self.set_based and self._steady_offset(lo, hi):
            return await self._rebuild_rollups_sql(lo, hi, now)
        return await self._rebuild_rollups_python(lo, hi, now)

    def _steady_offset(self, lo: float, hi: float) -> bool:
        """The zone's UTC offset is one whole number of quarter hours over [lo, hi] (so a 15-minute
        slot is ``floor(t / 900) * 900``)."""
        first = datetime.fromtimestamp(lo, self.tz).utcoffset()
        if first is None or first.total_seconds() % SLOT:
            return False
        t = lo
        while True:
            if datetime.fromtimestamp(t, self.tz).utcoffset() != first:
                return False
            if t >= hi:
                return True
            t = min(hi, t + 6 * 3600)

    def _days_inside(self, lo: float, hi: float) -> list[tuple[float, float]]:
        out = []
        day = bucket_start(lo, "day", self.tz)
        if day < lo:
            day = bucket_end(day, "day", self.tz)
        while bucket_end(day, "day", self.tz) <= hi:
            out.append((day, bucket_end(day, "day", self.tz)))
            day = out[-1][1]
        return out

    async def _rebuild_rollups_sql(self, lo: float, hi: float, now: float) -> int:
        lo = bucket_start(lo, "15min", self.tz)
        db = SetBasedRollups(self.repository._sm)
        days = self._days_inside(lo, hi)
        configs = {q: self.config.for_queue(q) for q in await db.queues(lo, hi)}
        settled = now - self.config.settle_seconds
        slots, built = await db.build_queue_rollups(lo, hi, days, configs, self.config.default_queue,
                                                    slot_before=settled, day_before=settled)
        if days:
            spans = self.open_spans(self.clock()) if self.open_spans is not None else []
            await db.build_agent_rollups(days[0][0], days[-1][1], [d for d in days if d[0] in built],
                                         dict(self.config.survey_questions), spans)
            await self.rebuild_extras(days[0][0], days[-1][1], now)
        return slots

    async def _rebuild_rollups_python(self, lo: float, hi: float, now: float) -> int:
        """The rollups of [lo, hi) computed here from the facts read as rows (the reference the
        set-based build is tested against; DST days)."""
        lo = bucket_start(lo, "15min", self.tz)
        visits = fold_visits(await self.repository.facts(lo, hi, VISIT_KINDS))
        by_slot: dict[float, list[fm.Visit]] = {}
        for v in visits:
            by_slot.setdefault(bucket_start(v.entered_at, "15min", self.tz), []).append(v)
        rows = []
        for slot, vs in sorted(by_slot.items()):
            if self._settled(vs, slot + SLOT, now):
                rows += self._rollup_rows("15min", slot, vs)
        await self.repository.replace_rollups(lo, hi, rows)
        day_rows: list[dict[str, Any]] = []
        agent_rows: list[dict[str, Any]] = []
        first = day = bucket_start(lo, "day", self.tz)
        if day < lo:
            first = day = bucket_end(day, "day", self.tz)
        while bucket_end(day, "day", self.tz) <= hi:
            end = bucket_end(day, "day", self.tz)
            vs = [v for v in visits if day <= v.entered_at < end]
            if self._settled(vs, end, now):
                day_rows += self._rollup_rows("day", day, vs)
                # an agent still logged in (or paused) since that day is in it until its end for good:
                # the open span's share of a past day is final (its closing fact rebuilds the day anyway)
                agent_rows += self._agent_rollup_rows(day, await self._agent_days_from_facts(day, end))
            day = end
        if day > first:
            await self.repository.replace_rollups(first, day, day_rows, spans=("day",))
            await self.repository.replace_agent_rollups(first, day, agent_rows)
            await self._rebuild_extras_python(first, day, now)
        return len({r["interval_start"] for r in rows})

    @staticmethod
    def _agent_rollup_rows(day: float, days: dict[str, fm.AgentDay]) -> list[dict[str, Any]]:
        rows = [{"interval_start": day, "agent_id": k, "counts": d.to_counts()} for k, d in sorted(days.items())]
        return rows or [{"interval_start": day, "agent_id": "", "counts": {}}]  # a day rolled up with nobody

    async def roll_up_pending(self, now: float | None = None, days: float = 2.0) -> int:
        """Roll up the settled slots and days of the last ``days`` that have no rollup yet (the owned
        background loop does this every ``rollup_every`` seconds). Returns slots + days rolled up."""
        now = self.clock() if now is None else now
        lo = bucket_start(now - days * 86400, "15min", self.tz)
        hi = bucket_start(now - self.config.settle_seconds, "15min", self.tz)
        done = {r.interval_start for r in await self.repository.rollups(lo, hi)}
        built = 0
        for a, b in _gaps(lo, hi, done):
            built += await self.rebuild_rollups(a, b, now)
        window = self.config.fcr_window_seconds
        e_lo = bucket_start(now - window - days * 86400, "day", self.tz)
        have_extra = {r.interval_start for r in await self.repository.rollups(e_lo, now - window, EXTRA_SPAN)}
        day = e_lo
        while bucket_end(day, "day", self.tz) + window + self.config.settle_seconds <= now:
            if day not in have_extra:  # (not counted in the return value: slots and days of queue rollups)
                await self.rebuild_extras(day, bucket_end(day, "day", self.tz), now)
            day = bucket_end(day, "day", self.tz)
        have_days = {r.interval_start for r in await self.repository.rollups(lo - 86400, hi, "day")}
        have_days &= {r.interval_start for r in await self.repository.agent_rollups(lo - 86400, hi)}
        day = bucket_start(lo, "day", self.tz)
        while bucket_end(day, "day", self.tz) + self.config.settle_seconds <= now:
            if day not in have_days:
                await self.rebuild_rollups(day, bucket_end(day, "day", self.tz), now)
                built += 1
            day = bucket_end(day, "day", self.tz)
        return built

    async def _rollup_loop(self) -> None:
        assert self.rollup_every
        while True:
            await asyncio.sleep(self.rollup_every)
            if self.leader is not None and not self.leader():
                continue
            try:
                await self.roll_up_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reports fall back to the facts meanwhile
                log.exception("reports: rolling up failed; retrying in %.0f s", self.rollup_every)

    def _from_rollups(self, rows: list[Any], out: dict[tuple[float, str], fm.QueueMetrics]) -> set[float]:
        """Valid rollup rows into ``out``; returns the intervals they cover. A row built under other
        settings than the queue's current ones invalidates its whole interval (computed anew)."""
        current: dict[str, dict[str, Any]] = {}  # queue -> its settings now, as rollups record them
        valid: dict[float, list[Any]] = {}
        stale: set[float] = set()
        for r in rows:
            if r.queue == "":
                valid.setdefault(r.interval_start, [])
                continue
            cfg_now = current.get(r.queue)
            if cfg_now is None:
                cfg_now = current[r.queue] = asdict(self.config.for_queue(r.queue))
            if r.config != cfg_now:
                stale.add(r.interval_start)
            else:
                valid.setdefault(r.interval_start, []).append(r)
        covered = set(valid) - stale
        for start in covered:
            for r in valid[start]:
                cfg = self.config.for_queue(r.queue)
                m = fm.QueueMetrics(r.queue, sl_seconds=cfg.service_level_seconds, sl_formula=cfg.sl_formula)
                counts = r.counts
                for k in COUNT_FIELDS:
                    setattr(m, k, counts.get(k, 0))
                out[(start, r.queue)] = m
        return covered

    async def _queue_metrics_by_slot(self, lo: float, hi: float, use_days: bool = False) -> dict[tuple[float, str], fm.QueueMetrics]:
        """Per (interval start, queue): the center's whole days from day rollups (``use_days``),
        the rest per 15-minute slot from rollups built with the queue's current settings, else
        from the facts."""
        out: dict[tuple[float, str], fm.QueueMetrics] = {}
        ranges = [(lo, hi)]
        if use_days and self.use_rollups:
            rows = [r for r in await self.repository.rollups(lo, hi, "day")
                    if bucket_end(r.interval_start, "day", self.tz) <= hi]
            days = self._from_rollups(rows, out)
            ranges = []
            cur = lo
            for day in sorted(days):
                if day > cur:
                    ranges.append((cur, day))
                cur = bucket_end(day, "day", self.tz)
            if cur < hi:
                ranges.append((cur, hi))
        for r_lo, r_hi in ranges:
            rolled = self._from_rollups(await self.repository.rollups(r_lo, r_hi), out) if self.use_rollups else set()
            for g_lo, g_hi in _gaps(r_lo, r_hi, rolled):
                for v in fold_visits(await self.repository.facts(g_lo, g_hi, VISIT_KINDS)):
                    slot = bucket_start(v.entered_at, "15min", self.tz)
                    cfg = self.config.for_queue(v.queue)
                    m = out.get((slot, v.queue))
                    if m is None:
                        m = out[(slot, v.queue)] = fm.QueueMetrics(v.queue, sl_seconds=cfg.service_level_seconds,
                                                                   sl_formula=cfg.sl_formula)
                    fm.add_visits(m, [v], cfg)
        return out

    # -------------------------------------------------------------- reports
    def _period(self, lo: Any, hi: Any, interval: str | None) -> tuple[float, float]:
        now = self.clock()
        a = parse_time(lo, self.tz, name="from")
        b = parse_time(hi, self.tz, name="to")
        if a is None:
            a = day_bounds(now, self.tz)[0]
        if b is None:
            b = max(now, a) + 1e-6 if lo is None else bucket_end(bucket_start(a, "day", self.tz), "day", self.tz)
        if b <= a:
            raise Invalid("'to' must be after 'from'")
        if b - a > 400 * 86400:
            raise Invalid("a report covers at most 400 days")
        if interval is not None and interval not in INTERVALS:
            raise Invalid(f"interval must be one of {', '.join(INTERVALS)}")
        return a, b

    def _label(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.tz).isoformat()

    def _row(self, interval: str | None, start: float, end: float, data: dict[str, Any]) -> dict[str, Any]:
        """A report row: the interval's bounds (center time) first when there are intervals."""
        row: dict[str, Any] = {}
        if interval:
            row["interval_start"], row["interval_end"] = self._label(start), self._label(end)
        row.update(data)
        return row

    async def queue_report(self, lo: Any = None, hi: Any = None, interval: str | None = None,
                           queues: Iterable[str] | None = None) -> list[dict[str, Any]]:
        a, b = self._period(lo, hi, interval)
        want = set(queues) if queues else None
        slots = await self._queue_metrics_by_slot(bucket_start(a, "15min", self.tz), b,
                                                  use_days=interval in (None, "day", "week", "month"))
        groups: dict[tuple[float | None, str], fm.QueueMetrics] = {}
        for (slot, q), m in sorted(slots.items()):
            if want is not None and q not in want:
                continue
            if slot + SLOT <= a or slot >= b:
                continue
            key = (bucket_start(slot, interval, self.tz) if interval else None, q)
            g = groups.get(key)
            if g is None:
                g = groups[key] = fm.QueueMetrics(q, sl_seconds=m.sl_seconds, sl_formula=m.sl_formula)
            g.add(m)
        extra = await self._queue_extras(a, b, interval, want)
        spans = await self._spans(a, b) if interval else []  # staffing rows only
        rows = []
        for (start, q), m in sorted(groups.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])):
            row = self._row(interval, start or 0.0, bucket_end(start, interval, self.tz) if interval else 0.0,
                            {**m.to_dict(), **extra.get((start, q), _EMPTY_EXTRA)})
            if interval:
                lo_c, hi_c = max(start, a), min(bucket_end(start, interval, self.tz), b)
                secs = hi_c - lo_c
                waited = m.wait_answered_total + m.wait_unanswered_total
                need = await self._interval_staffing(dict(
                    interval_seconds=secs, offered=m.offered - m.short_abandoned - m.in_progress, aht=m.aht,
                    target_sl_pct=self.config.target_sl_pct.get(q, self.config.default_target_sl_pct),
                    target_seconds=m.sl_seconds, total_wait_seconds=waited, abandons=m.abandoned + m.timeouts))
                row["staffing"] = {**need, "agents_logged_in_avg": _avg_logged_in(spans, lo_c, hi_c, q)}
            rows.append(row)
        return rows

    async def _interval_staffing(self, args: dict[str, Any]) -> dict[str, Any]:
        """Erlang C/A of one report interval. In the server (``offload_staffing``) in the staffing
        process: the wallboard's KPI loop asks for the current interval every few seconds, and one
        Erlang A held the event loop for up to ~100 ms under load (issue 18 round three; seconds at
        tens of erlangs). Elsewhere (tests, the CLI) inline."""
        if self.live.staffing_runner is None:
            return _staffing_dict(args)
        try:
            if self._staffing_pool is None:
                self._staffing_pool = _staffing_executor()
            return await asyncio.get_running_loop().run_in_executor(self._staffing_pool, _staffing_dict, args)
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. a broken pool (its process was killed): a new one next time
            log.exception("reports: interval staffing in the staffing process failed; computed inline")
            pool, self._staffing_pool = self._staffing_pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            return _staffing_dict(args)

    def _extras_config(self) -> dict[str, Any]:
        """What FCR and callback rollups depend on: a rollup built under other settings is ignored."""
        return {"fcr_window_seconds": self.config.fcr_window_seconds,
                "resolved": sorted(self.config.resolved_dispositions),
                "survey": dict(sorted(self.config.survey_questions.items()))}  # JSON-shaped: compared with the stored config

    async def _queue_extras(self, a: float, b: float, interval: str | None, want: set[str] | None) -> dict:
        """FCR (three ways) and callbacks per (bucket, queue): the center's whole days from their
        ``fcr_day`` rollups (built once a day's FCR window is over), the rest from the facts."""
        sums: dict[tuple[float | None, str], dict[str, float]] = {}

        def key(t: float, q: str) -> tuple[float | None, str]:
            return (bucket_start(t, interval, self.tz) if interval else None, q)

        ranges = [(a, b)]
        if self.use_rollups and interval in (None, "day", "week", "month"):
            first, last = self._whole_days(a, b)
            covered: set[float] = set()
            if last > first:
                cfg = self._extras_config()
                for r in await self.repository.rollups(first, last, EXTRA_SPAN):
                    if r.config != cfg:
                        continue
                    covered.add(r.interval_start)
                    if r.queue and (want is None or r.queue in want):
                        _add_counts(sums.setdefault(key(r.interval_start, r.queue), {}), r.counts)
            ranges = self._uncovered(a, b, first, last, covered)
        for lo, hi in ranges:
            for k, counts in (await self._extras_from_facts(lo, hi, interval, want)).items():
                _add_counts(sums.setdefault(k, {}), counts)
        out: dict[tuple[float | None, str], dict[str, Any]] = {}
        for k, counts in sums.items():
            fcr = fm.FcrMetrics(**{f: int(counts.get(f, 0)) for f in FCR_FIELDS})
            out[k] = {**fcr.to_dict(), "callbacks_requested": int(counts.get("callbacks_requested", 0)),
                      "callbacks_completed": int(counts.get("callbacks_completed", 0))}
        return out

    def _whole_days(self, a: float, b: float) -> tuple[float, float]:
        """[first, last): the center's days lying wholly inside [a, b) (first == last: none)."""
        first = bucket_start(a, "day", self.tz)
        if first < a:
            first = bucket_end(first, "day", self.tz)
        last = first
        while bucket_end(last, "day", self.tz) <= b:
            last = bucket_end(last, "day", self.tz)
        return first, last

    def _uncovered(self, a: float, b: float, first: float, last: float, covered: set[float]) -> list[tuple[float, float]]:
        """[a, b) without the covered days of [first, last), as merged ranges."""
        ranges, cur, day = [], a, first
        while day < last:
            nxt = bucket_end(day, "day", self.tz)
            if day in covered:
                if day > cur:
                    ranges.append((cur, day))
                cur = nxt
            day = nxt
        if cur < b:
            ranges.append((cur, b))
        return ranges

    async def _extras_from_facts(self, a: float, b: float, interval: str | None, want: set[str] | None) -> dict:
        """FCR counts and callbacks per (bucket, queue), from the facts (FcrMetrics fields + callbacks)."""
        window = self.config.fcr_window_seconds
        facts = await self.repository.facts(a, b + window, ("call.ended", "disposition", "survey.answer"))
        period = [f for f in facts if f.anchor_at < b or f.kind != "call.ended"]
        contacts = [c for c in fold_contacts(period, self.config.resolved_dispositions) if a <= c.at < b]
        later = fold_contacts([f for f in facts if f.kind == "call.ended"])
        queue_of = {f.call_id: f.queue for f in facts if f.kind == "call.ended"}
        out: dict[tuple[float | None, str], dict[str, float]] = {}
        groups: dict[tuple[float | None, str], list[fm.Contact]] = {}
        for c in self._survey_resolved(contacts, facts):
            q = queue_of.get(c.call_id) or ""
            if want is not None and q not in want:
                continue
            key = (bucket_start(c.at, interval, self.tz) if interval else None, q)
            groups.setdefault(key, []).append(c)
        now = self.clock()
        for key, cs in groups.items():
            m = fm.fcr(cs, later, window, now)
            out[key] = {f: getattr(m, f) for f in FCR_FIELDS}
        requested_in = {f.data.get("callback"): f.queue
                        for f in await self.repository.facts(a - 31 * 86400, b, ("callback.requested",))}
        for f in await self.repository.facts(a, b, ("callback.requested", "callback.completed")):
            q = f.queue or requested_in.get(f.data.get("callback")) or ""
            if want is not None and q not in want:
                continue
            key = (bucket_start(f.anchor_at, interval, self.tz) if interval else None, q)
            row = out.setdefault(key, {})
            name = "callbacks_requested" if f.kind == "callback.requested" else "callbacks_completed"
            row[name] = row.get(name, 0) + 1
        return out

    async def rebuild_extras(self, lo: float, hi: float, now: float | None = None) -> int:
        """(Re)build the FCR/callback rollups (``fcr_day``) of the days in [lo, hi) whose FCR
        window is over; returns how many days were written. Set-based like :meth:`rebuild_rollups`."""
        now = self.clock() if now is None else now
        if not (self.set_based and self._steady_offset(lo, hi)):
            return await self._rebuild_extras_python(lo, hi, now)
        first, last = self._whole_days(lo, hi)
        days = [(a, b) for a, b in self._days_inside(first, last)
                if b + self.config.fcr_window_seconds + self.config.settle_seconds <= now]
        if last > first:
            await SetBasedRollups(self.repository._sm).build_fcr_rollups(
                first, last, days, window=self.config.fcr_window_seconds,
                resolved_codes=tuple(self.config.resolved_dispositions),
                survey_questions=dict(self.config.survey_questions), config=self._extras_config(), fcr_now=self.clock())
        return len(days)

    async def _rebuild_extras_python(self, lo: float, hi: float, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        first, last = self._whole_days(lo, hi)
        rows: list[dict[str, Any]] = []
        cfg = self._extras_config()
        day, built = first, 0
        while day < last:
            end = bucket_end(day, "day", self.tz)
            if end + self.config.fcr_window_seconds + self.config.settle_seconds <= now:
                part = await self._extras_from_facts(day, end, None, None)
                rows += [{"span": EXTRA_SPAN, "interval_start": day, "queue": q, "config": cfg, "counts": counts}
                         for (_, q), counts in sorted(part.items(), key=lambda kv: kv[0][1])]
                rows.append({"span": EXTRA_SPAN, "interval_start": day, "queue": "", "config": cfg, "counts": {}})
                built += 1
            day = end
        if last > first:
            await self.repository.replace_rollups(first, last, rows, spans=(EXTRA_SPAN,))
        return built

    def _survey_resolved(self, contacts: list[fm.Contact], facts: list[Fact]) -> list[fm.Contact]:
        kinds = self.config.survey_questions
        resolved = {f.call_id: int(f.data.get("value", 0)) for f in facts
                    if f.kind == "survey.answer" and kinds.get(f.data.get("question", "")) == "resolved"}
        out = []
        for c in contacts:
            v = resolved.get(c.call_id)
            out.append(c if v not in (1, 2) else fm.Contact(c.call_id, c.caller, c.at, c.agent_id,
                                                             c.disposition_resolved, v == 1))
        return out

    async def _spans(self, a: float, b: float) -> list[fm.AgentSpan]:
        # a span is stored when it ends, anchored at its start: fetch those that may overlap [a, b)
        facts = await self.repository.facts(a - 31 * 86400, b, SPAN_KINDS, at_after=a)
        spans = [s for s in fold_spans(facts) if s.end is None or s.end > a]
        if self.open_spans is not None:
            spans += [s for s in self.open_spans(self.clock()) if s.start < b]
        return spans

    async def agent_report(self, lo: Any = None, hi: Any = None, interval: str | None = None,
                           agents: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Per agent (and interval): the center's whole days from the agent day rollups, the rest
        from the facts — the same numbers either way (tested)."""
        a, b = self._period(lo, hi, interval)
        want = set(agents) if agents else None
        rows = []
        for start, end in self._buckets(a, b, interval):
            days = await self._agent_days(start, end)
            for agent_id in sorted(days):
                d = days[agent_id]
                if want is not None and agent_id not in want:
                    continue
                m, q = d.agent, d.quality
                if not (m.answered or m.login_seconds or m.pause_seconds or q.handled_calls or q.evaluations):
                    continue  # survey answers alone (a call handled in another period) make no row
                row = self._row(interval, start, end, m.to_dict())
                sd = d.survey.to_dict()
                row["csat_pct"], row["nps"] = sd["csat_pct"], sd["nps"]
                qd = q.to_dict()
                for k in AGENT_QUALITY:
                    row[k] = qd[k]
                rows.append(row)
        return rows

    async def _agent_days(self, lo: float, hi: float) -> dict[str, fm.AgentDay]:
        """Every agent's sums for [lo, hi): rolled-up whole days plus the facts of the rest."""
        out: dict[str, fm.AgentDay] = {}

        def merge(part: dict[str, fm.AgentDay]) -> None:
            for k, d in part.items():
                if k in out:
                    out[k].add(d)
                else:
                    out[k] = d

        ranges: list[tuple[float, float]] = [(lo, hi)]
        if self.use_rollups:
            first = bucket_start(lo, "day", self.tz)
            if first < lo:
                first = bucket_end(first, "day", self.tz)
            last = first
            while bucket_end(last, "day", self.tz) <= hi:
                last = bucket_end(last, "day", self.tz)
            covered: set[float] = set()
            if last > first:
                for r in await self.repository.agent_rollups(first, last):
                    covered.add(r.interval_start)
                    if r.agent_id:
                        merge({r.agent_id: fm.AgentDay.from_counts(r.agent_id, r.counts)})
            ranges, cur = [], lo
            day = first
            while day < last:
                nxt = bucket_end(day, "day", self.tz)
                if day in covered:
                    if day > cur:
                        ranges.append((cur, day))
                    cur = nxt
                day = nxt
            if cur < hi:
                ranges.append((cur, hi))
        for r_lo, r_hi in ranges:
            merge(await self._agent_days_from_facts(r_lo, r_hi))
        return out

    async def _agent_days_from_facts(self, lo: float, hi: float) -> dict[str, fm.AgentDay]:
        visits = fold_visits(await self.repository.facts(lo, hi, VISIT_KINDS))
        spans = await self._spans(lo, hi)
        survey_facts = await self.repository.facts(lo, hi, ("survey.answer",))
        missing = {f.call_id for f in survey_facts if f.call_id} - {v.call_id for v in visits}
        joined = visits + (fold_visits(await self.repository.facts_of_calls(missing, VISIT_KINDS)) if missing else [])
        surveys = [s for s in self._surveys(survey_facts, joined) if lo <= s.at < hi]
        _, qfacts = await self._quality_inputs_for(lo, hi, visits)
        entered: dict[str, float] = {}
        for v in sorted(visits, key=lambda v: v.entered_at):
            entered.setdefault(v.call_id, v.entered_at)
        recs = [r for r in fold_recordings(qfacts) if lo <= entered.get(r.call_id, r.at) < hi]
        scores = [s for s in fold_scores(qfacts) if lo <= entered.get(s.call_id or "", s.at) < hi]
        return fm.agent_days(visits, spans, surveys, recs, scores, lo, hi)

    def _buckets(self, a: float, b: float, interval: str | None) -> list[tuple[float, float]]:
        if not interval:
            return [(a, b)]
        out = []
        s = bucket_start(a, interval, self.tz)
        while s < b:
            e = bucket_end(s, interval, self.tz)
            out.append((max(s, a), min(e, b)))
            s = e
        return out

    def _surveys(self, facts: list[Fact], visits: list[fm.Visit]) -> list[fm.SurveyAnswer]:
        agent_of: dict[str, tuple[str | None, str | None]] = {}
        for v in sorted(visits, key=lambda v: v.seq):
            if v.agent_id:
                agent_of[v.call_id] = (v.agent_id, v.queue)
        kinds = self.config.survey_questions
        out = []
        for s in fold_surveys(facts, agent_of):
            kind = kinds.get(s.question)
            if kind:
                out.append(fm.SurveyAnswer(s.call_id, kind, s.value, s.agent_id, s.queue, s.at))
        return out

    async def survey_report(self, lo: Any = None, hi: Any = None, by: str = "agent",
                            interval: str | None = None) -> list[dict[str, Any]]:
        if by not in ("agent", "queue", "all"):
            raise Invalid("by must be agent, queue or all")
        a, b = self._period(lo, hi, interval)
        facts = await self.repository.facts(a, b, ("survey.answer",))
        visits = fold_visits(await self.repository.facts_of_calls({f.call_id for f in facts if f.call_id}, VISIT_KINDS))
        answers = self._surveys(facts, visits)
        rows = []
        for start, end in self._buckets(a, b, interval):
            for m in fm.survey_report([s for s in answers if start <= s.at < end], by):  # type: ignore[arg-type]
                rows.append(self._row(interval, start, end, {"by": by, **m.to_dict()}))
        return rows

    async def ivr_report(self, lo: Any = None, hi: Any = None, flows: Iterable[str] | None = None,
                         interval: str | None = None) -> list[dict[str, Any]]:
        a, b = self._period(lo, hi, interval)
        want = set(flows) if flows else None
        sessions = fold_ivr(await self.repository.facts(a, b, ("ivr.step", "ivr.ended")))
        rows = []
        for start, end in self._buckets(a, b, interval):
            for m in fm.ivr_report([s for s in sessions if start <= s.started_at < end]):
                if want is not None and m.flow not in want:
                    continue
                rows.append(self._row(interval, start, end, m.to_dict()))
        return rows

    async def _quality_inputs(self, a: float, b: float) -> tuple[list[fm.Visit], list[Fact]]:
        """The period's visits, and the recording and QA facts of its calls (those of the calls
        the period's visits handled, wherever they are anchored, and the period's own: outbound
        calls have no visit)."""
        visits = fold_visits(await self.repository.facts(a, b, VISIT_KINDS))
        return await self._quality_inputs_for(a, b, visits)

    async def _quality_inputs_for(self, a: float, b: float, visits: list[fm.Visit]) -> tuple[list[fm.Visit], list[Fact]]:
        calls = {v.call_id for v in visits if v.answered_at is not None}
        kinds = RECORDING_KINDS + QA_KINDS
        facts = await self.repository.facts(a, b, kinds)
        if calls:
            facts += await self.repository.facts_of_calls(calls, kinds)
        return visits, unique(facts)

    async def quality_report(self, lo: Any = None, hi: Any = None, by: str = "queue", interval: str | None = None,
                             keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Recording coverage, QA coverage and QA scores (docs/metrics.md §3a) by queue, agent,
        form or for the whole center; calls by the interval they entered the queue (outbound:
        started), evaluations with the call they score."""
        if by not in ("queue", "agent", "form", "all"):
            raise Invalid("by must be queue, agent, form or all")
        a, b = self._period(lo, hi, interval)
        want = set(keys) if keys else None
        visits, facts = await self._quality_inputs(a, b)
        recordings = fold_recordings(facts)
        scores = fold_scores(facts)
        entered = {}  # call -> when it first entered a queue (the bucket its evaluations go in)
        for v in sorted(visits, key=lambda v: v.entered_at):
            entered.setdefault(v.call_id, v.entered_at)
        rows = []
        for start, end in self._buckets(a, b, interval):
            vs = [v for v in visits if start <= v.entered_at < end]
            rs = [r for r in recordings if start <= entered.get(r.call_id, r.at) < end]
            ss = [s for s in scores if start <= entered.get(s.call_id or "", s.at) < end]
            for m in fm.quality_report(vs, rs, ss, by):  # type: ignore[arg-type]
                if want is not None and m.key not in want:
                    continue
                rows.append(self._row(interval, start, end, {"by": by, **m.to_dict()}))
        return rows

    # -------------------------------------------------------------- IVR facts
    def ivr_finished(self, session_id: str, call_id: str | None, outcome: Any, started_at: float, ended_at: float) -> None:
        """The IVR's observer: steps, how the session ended, survey answers → facts."""
        from reports.facts import callback_fact, ivr_end_fact, ivr_step_fact, survey_fact

        # on the reports' (CTI's) clock: the IVR's clock is its business-hours clock
        now = self.clock()
        started_at, ended_at = now - max(0.0, ended_at - started_at), now
        facts: list[Fact] = []
        for step in getattr(outcome, "steps", []) or []:
            at = started_at + getattr(step, "started_ms", 0) / 1000.0
            facts.append(ivr_step_fact(session_id, step.seq, step.flow, step.node, at, call_id))
        facts.append(ivr_end_fact(session_id, outcome.flow, IVR_OUTCOMES.get(outcome.kind, "hangup"), started_at,
                                  ended_at, call_id))
        if outcome.kind == "callback" and getattr(outcome, "callback_id", None):
            facts.append(callback_fact(str(outcome.callback_id), "requested", ended_at, outcome.queue,
                                       (outcome.context or {}).get("caller_num")))
        for question, value in (getattr(outcome, "survey_answers", None) or {}).items():
            if value is not None and call_id:
                facts.append(survey_fact(call_id, question, int(value), ended_at))
        self.record(facts)


#: IvrOutcome.kind → the IVR report's outcome
IVR_OUTCOMES = {"queue": "queue", "callback": "transfer", "voicemail": "transfer", "hangup": "completed",
                "caller_hangup": "hangup", "error": "hangup"}

#: the rollup span of a day's FCR counts and callbacks per queue (built once its FCR window is over)
EXTRA_SPAN = "fcr_day"
FCR_FIELDS = [f.name for f in fields(fm.FcrMetrics)]
#: facts that change an ``fcr_day`` rollup (of their day and the FCR window's days before it)
EXTRA_KINDS = ("call.ended", "disposition", "survey.answer", "callback.requested", "callback.completed")


def _add_counts(into: dict[str, float], counts: dict[str, Any]) -> None:
    for k, v in counts.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            into[k] = into.get(k, 0) + v


#: facts that change an agent day rollup (besides the agent state spans)
AGENT_ROLLUP_KINDS = VISIT_KINDS + ("survey.answer",) + RECORDING_KINDS + QA_KINDS

#: the quality columns of the agent report (the rest: GET /api/reports/quality?by=agent)
AGENT_QUALITY = ("recorded_pct", "evaluations", "qa_avg_score", "qa_critical_failed")

_EMPTY_EXTRA: dict[str, Any] = {
    **{k: v for k, v in fm.FcrMetrics().to_dict().items()},
    "callbacks_requested": 0,
    "callbacks_completed": 0,
}


def _by_queue(vs: Iterable[fm.Visit]) -> dict[str, list[fm.Visit]]:
    out: dict[str, list[fm.Visit]] = {}
    for v in vs:
        out.setdefault(v.queue, []).append(v)
    return out


def _gaps(lo: float, hi: float, rolled: set[float]) -> list[tuple[float, float]]:
    """[lo, hi) minus the rolled-up 15-minute slots, as merged ranges."""
    out: list[tuple[float, float]] = []
    cur: float | None = None
    s = lo
    while s < hi:
        if s in rolled:
            if cur is not None:
                out.append((cur, s))
                cur = None
        elif cur is None:
            cur = s
        s += SLOT
    if cur is not None:
        out.append((cur, hi))
    return out


def _avg_logged_in(spans: list[fm.AgentSpan], lo: float, hi: float, queue: str) -> float | None:
    """Average agents logged in to ``queue`` over [lo, hi): its member-seconds ÷ the length."""
    if hi <= lo:
        return None
    total = sum(fm.clip(s.start, s.end, lo, hi) for s in spans if s.state == "member" and s.queue == queue)
    return round(total / (hi - lo), 2)
