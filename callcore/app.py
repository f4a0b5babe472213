"""The composition root: builds every object, wires them, owns every task.

Order: settings → database → bus → domain services (CTI, IVR) → AMI client →
FastAGI server → HTTP app. Nothing else in the code base constructs a
long-lived service or starts a background task on its own; every task is
created through :meth:`Container.spawn` and cancelled in :meth:`Container.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from typing import Any, Awaitable, Callable

import uvicorn
from sqlalchemy import text

from callcore import migrate
from callcore.broker import RelayedBus
from callcore.bus import Bus
from callcore.db import create_engine, session_factory
from callcore.metrics import Metrics
from callcore.gctune import GcFreezer
from callcore.loopwatch import LoopWatch
from callcore.wsguard import SlowClientPolicy, WsGuard
from callcore.readiness import backlog_report, readiness_reasons
from callcore.settings import Settings

log = logging.getLogger("callcore")


def uvicorn_config(app: Any, s: Settings) -> uvicorn.Config:
    """The HTTP server's configuration: the sans-I/O websockets protocol (no task of its own per
    connection), keepalive pings as uvicorn's defaults (20 s), permessage-deflate only when
    ``ws_per_message_deflate`` asks for it, and an HTTP protocol that frees itself after a
    websocket upgrade (issue 18 round five)."""
    from callcore.httpproto import http_protocol

    # http: uvicorn's httptools protocol, minus the cycle each websocket upgrade leaves (callcore/httpproto.py)
    return uvicorn.Config(app, host=s.http_host, port=s.http_port, log_config=None, lifespan="off", ws="websockets-sansio",
                          ws_per_message_deflate=s.ws_per_message_deflate, http=http_protocol())


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling.

    ``uvicorn.Server.serve`` wraps everything in ``capture_signals()``, which
    replaces the process's SIGINT/SIGTERM handlers and re-raises the signal
    when it returns. The composition root owns signals for the whole process
    (AGI grace period, AMI logoff, DB close), so we disable that here and stop
    uvicorn by setting ``should_exit``.
    """

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def _bind_http(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, f"HTTP port {host}:{port} cannot be opened ({why}): stop the process using it "
                      "or choose another with CALLCORE_HTTP_PORT / callcore serve --http-port") from None


class Container:
    def __init__(self, settings: Settings, *, clock: Callable[[], Any] | None = None) -> None:
        from callcore.logs import install_redaction

        install_redaction()  # security (issue 11): no token/PIN/secret in any log line
        self.settings = settings
        #: wall clock for the IVR (business hours); injectable so tests can call "at" a given time
        self.clock = clock
        self.metrics = Metrics()
        # scale-out (issue 19): with a broker, bus messages cross instances (callcore/broker.py)
        self.bus = RelayedBus() if settings.broker_url else Bus()
        self.relay: Any = None
        self.ami_duty: Any = None  # scale-out: the leased AMI consumer (callcore/cluster.py)
        # reliability (issue 12): slow websocket clients are cut off (callcore/wsguard.py)
        self.ws_guard = WsGuard(
            SlowClientPolicy(settings.ws_send_timeout, settings.ws_max_queued), on_written=self.metrics.observe_pop
        )
        # issue 18: loop stalls measured in production (callcore/loopwatch.py), started in start()
        self.loop_watch = LoopWatch(
            self.metrics.loop_lag.observe, debug=settings.loop_debug, stack_threshold=settings.loop_stall_stacks_ms / 1000
        )
        self.gc_freezer = GcFreezer(
            settings.gc_freeze_interval, settings.gc_thaw_interval, settings.gc_young_threshold,
            burst_blocks=settings.gc_freeze_burst_blocks, thaw_growth_blocks=settings.gc_thaw_growth_blocks,
            thaw_max_interval=settings.gc_thaw_max_interval, freeze_after_full=settings.gc_freeze_after_full,
        )
        self.outbox: Any = None  # reliability: the webhook outbox repository (outbox/)
        self.journal: Any = None  # reliability: the call journal (journal/)
        self.live_journal: Any = None  # reliability: calls in progress (journal/live.py)
        self.server_watch: Any = None  # issue 19: servers lost for good (cti/server_watch.py)
        self.engine = None
        self.sessionmaker = None
        self.ami: Any = None
        self.agi: Any = None
        self.ivr: Any = None
        self.cti: Any = None
        self.recording: Any = None
        # security (issue 11): built by callcore.wiring.build_security
        self.keyring: Any = None
        self.authenticator: Any = None
        self.auth: Any = None
        self.audit: Any = None
        self.reports: Any = None  # reports.service.ReportService (issue 16)
        self.qa: Any = None
        self.web: Any = None  # web UI service (wallboard feed), built in wiring
        self.http: _EmbeddedUvicorn | None = None
        self.http_port: int | None = None
        self.started_at = time.time()
        self._tasks: set[asyncio.Task] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._register_metrics()

    # ------------------------------------------------------------------ tasks
    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task:
        """Start a background task owned by the container (cancelled on stop)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register a service's async ``stop``; closers run in reverse order of registration."""
        self._closers.append(closer)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ build
    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        # security (issue 11): refuse guessable keys/secrets before anything listens
        from auth.checker import check_startup

        self.keyring = check_startup(s)
        url = s.effective_database_url
        if url.startswith("sqlite"):
            # the embedded store upgrades itself; PostgreSQL is upgraded by `callcore db upgrade`
            await asyncio.to_thread(migrate.upgrade, url)
        self.engine = create_engine(url)
        self.sessionmaker = session_factory(self.engine)

        await self._build_services()
        self.spawn(self.loop_watch.run(), "loop-watch")
        if s.runs("ami"):
            await self._start_ami()
        if s.runs("agi"):
            await self._start_agi()
        if s.runs("http"):
            await self._start_http()
        # Start-up objects (routes, flows, settings, module state) live as long as the process:
        # move them out of the collector's reach, or every full collection re-scans them
        # (benchmarks/README.md: FastAGI p99 under load 5.0 → 2.8 ms, shorter pop tails).
        gc.collect()
        gc.freeze()
        self.spawn(self.gc_freezer.run(), "gc-freezer")  # and, from now on, what survives (issue 18)
        log.info(
            "callcore running: %s (database %s)",
            ", ".join(self._listening()) or "no parts",
            _redact_url(url),
        )

    async def _build_services(self) -> None:
        """Domain services; filled in by the CTI and IVR wiring below."""
        from callcore.wiring import build_services

        await build_services(self)

    async def _start_ami(self) -> None:
        from callcore.wiring import start_ami

        await start_ami(self)

    async def _start_agi(self) -> None:
        from callcore.wiring import start_agi

        await start_agi(self)

    async def _start_http(self) -> None:
        from api.app import create_app

        s = self.settings
        from callcore.wiring import cluster_app

        app = cluster_app(self, create_app(self))  # scale-out (issue 19): call control to the AMI holder
        server = _EmbeddedUvicorn(uvicorn_config(app, s))
        # bind here, not inside uvicorn: a port in use is one clear line (uvicorn logs a traceback and
        # raises SystemExit(3) from its task); uvicorn then serves on this socket
        sock = _bind_http(s.http_host, s.http_port)
        self.http = server
        task = self.spawn(server.serve(sockets=[sock]), "http")
        deadline = time.monotonic() + 10
        while not server.started:
            if task.done():
                task.result()  # raises the bind error, e.g. "address already in use"
                raise RuntimeError("HTTP server stopped during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server did not start on {s.http_host}:{s.http_port}")
            await asyncio.sleep(0.01)
        sockets = [sock for srv in server.servers for sock in srv.sockets]
        self.http_port = sockets[0].getsockname()[1] if sockets else s.http_port

    def _listening(self) -> list[str]:
        s = self.settings
        out = []
        if self.http is not None:
            out.append(f"HTTP http://{s.http_host}:{self.http_port}")
        if self.agi is not None:
            out.append(f"FastAGI agi://{s.agi_host}:{getattr(self.agi, 'port', s.agi_port)}")
        if self.ami is not None:
            servers = s.effective_ami_servers  # issue 19: one client per Asterisk server
            for srv in servers:
                out.append(f"AMI client {srv.name} → {srv.host}:{srv.port}" if len(servers) > 1 else f"AMI client → {srv.host}:{srv.port}")
        return out

    # --------------------------------------------------------------- http glue
    def routers(self) -> list[Any]:
        from callcore.wiring import routers

        return routers(self)

    def app_services(self) -> dict[str, Any]:
        services = {"cti": self.cti, "ivr": self.ivr, "reports": self.reports, "recording": self.recording, "qa": self.qa,
                    "web": self.web}
        services["kb"] = getattr(self, "kb", None)  # kb (issue 17), built by callcore.wiring.build_kb
        services.update({"ws_guard": self.ws_guard, "outbox": self.outbox})  # reliability (issue 12)
        if self.cti is not None:
            services["authenticator"] = self.cti.authenticator
        services.update({"auth": self.auth, "audit": self.audit, "settings": self.settings})  # security (issue 11)
        return {k: v for k, v in services.items() if v is not None}

    async def readiness(self) -> dict[str, Any]:
        db_ok, db_error = True, None
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:  # type: ignore[union-attr]
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # reported, not raised: this is a health probe
            db_ok, db_error = False, f"{type(exc).__name__}: {exc}"
        ami_state = self.ami.state if self.ami is not None else "disabled"
        if self.ami_duty is not None:  # scale-out: a standby's AMI is held by another instance
            ami_state = self.ami_duty.state
        # reliability (issue 12): not ready while AMI is down (when this process runs the AMI
        # part) or while bookkeeping backs up; callcore/readiness.py
        reasons = readiness_reasons(self, db_ok, ami_state)
        report: dict[str, Any] = {
            "ready": not reasons,
            "reasons": reasons,
            "database": {"ok": db_ok, **({"error": db_error} if db_error else {})},
            "ami": {
                "state": ami_state,
                "connected": ami_state == "connected",
                "address": f"{self.settings.ami_host}:{self.settings.ami_port}",
            },
            "agi": {"listening": self.agi is not None, "active_sessions": self._agi_active()},
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }
        if ami_state not in ("connected", "disabled"):
            report["ami"]["detail"] = "disconnected, retrying" if ami_state != "auth_failed" else "login refused"
        from callcore.readiness import server_states  # several Asterisk servers (issue 19)

        servers = server_states(self, ami_state)
        if servers:
            report["ami"]["servers"] = servers
            report["ami"]["down"] = sorted(n for n, v in servers.items() if v["state"] not in ("connected", "standby"))
            if len(servers) > 1:
                report["ami"]["address"] = ", ".join(v["address"] for v in servers.values())
        report["ami"]["required"] = self.ami is not None
        if self.ami is None:
            report["ami"]["detail"] = "this process does not run the AMI part (--only), so AMI does not affect readiness"
        report["backlog"] = backlog_report(self)
        if self.relay is not None:  # scale-out (issue 19)
            lease = self.ami_duty.lease if self.ami_duty is not None else None
            report["cluster"] = {
                "instance": self.relay.instance, "broker": self.relay.state,
                "ami_lease": None if lease is None else {
                    "name": lease.name, "held": lease.held, "holder": lease.holder, "epoch": lease.epoch},
            }
        return report

    def _agi_active(self) -> int:
        return int(getattr(self.agi, "active_sessions", 0)) if self.agi is not None else 0

    def _register_metrics(self) -> None:
        c = self.metrics.collector
        c.ami_state = lambda: self.ami.state if self.ami is not None else "disabled"

        from callcore.wiring import ami_servers

        def per_server() -> list[tuple[tuple[str, ...], float]]:  # issue 19: one sample per Asterisk server
            held = self.ami_duty is None or self.ami_duty.lease.held
            return [((name,), 1 if held and client.state == "connected" else 0) for name, client in ami_servers(self).items()]

        c.labelled("callcore_ami_server_connected", "1 when this instance is logged in to that Asterisk server", "gauge",
                   ("server",), per_server)
        c.labelled("callcore_ami_server_events_total", "AMI events delivered, by Asterisk server", "counter", ("server",),
                   lambda: [((name,), getattr(client, "events_delivered", 0)) for name, client in ami_servers(self).items()])
        c.gauge("callcore_ami_uniqueid_collisions_total",
                "AMI events whose call id belonged to a call of another Asterisk server (set systemname in asterisk.conf)",
                lambda: getattr(getattr(self.cti, "state", None), "collisions", 0))
        c.gauge("callcore_agi_sessions_active", "FastAGI sessions in progress", self._agi_active)
        c.counter(
            "callcore_agi_sessions_total",
            "FastAGI sessions accepted since start",
            lambda: getattr(self.agi, "sessions_total", 0) if self.agi is not None else 0,
        )
        c.counter(  # security (issue 11)
            "callcore_agi_refused_total",
            "FastAGI connections refused or dropped: peer not allowed, per-peer limit, idle header, silent session",
            lambda: sum(getattr(self.agi, "refused", {}).values()) if self.agi is not None else 0,
        )
        c.gauge("callcore_websocket_clients", "Connected websocket clients", self._ws_clients)
        c.counter(  # issue 18
            "callcore_event_loop_stalls_total",
            "Times the event loop was held longer than 50 ms (logged as 'event loop stalled')",
            lambda: self.loop_watch.stalls,
        )
        c.gauge("callcore_event_loop_longest_stall_seconds", "Longest event-loop hold since start", lambda: self.loop_watch.longest)
        c.gauge("callcore_gc_frozen_objects", "Objects moved out of the garbage collector's reach (gc.freeze; callcore/gctune.py)",
                GcFreezer.frozen)
        c.counter(
            "callcore_ami_events_total",
            "AMI events delivered to callcore state",
            lambda: getattr(self.ami, "events_delivered", 0) if self.ami is not None else 0,
        )
        c.counter(
            "callcore_ami_unknown_events_total",
            "AMI events callcore does not consume (filtered cheaply)",
            lambda: getattr(self.ami, "unknown_events", 0) if self.ami is not None else 0,
        )
        c.counter("callcore_bus_published_total", "Notifications published on the internal bus", lambda: self.bus.published)
        c.counter("callcore_bus_dropped_total", "Notifications dropped for slow subscribers", lambda: self.bus.dropped)
        # cti: changes a CTI subscriber failed on (logged with the subscriber's name; cti/dispatcher.py)
        c.counter(
            "callcore_cti_subscriber_failures_total",
            "CTI changes a subscriber failed to handle",
            lambda: sum(self.cti.dispatcher.failures.values()) if getattr(self.cti, "dispatcher", None) else 0,
        )
        c.counter(
            "callcore_cti_bookkeeping_failures_total",
            "Database writes after an AMI action that failed every retry (cti/bookkeeping.py)",
            lambda: self.cti.bookkeeping.failures if getattr(self.cti, "bookkeeping", None) else 0,
        )
        c.counter(
            "callcore_cti_persist_failures_total",
            "Ended calls whose record could not be stored after every retry",
            lambda: self.cti.persist_failures if getattr(self.cti, "persistence", None) else 0,
        )
        # ops (issue 20): queues, AMI per endpoint, FastAGI, database lag (callcore/probes.py)
        from callcore import probes

        probes.register(self)

        # reliability (issue 12): bounded AMI framing; see cti/ami/protocol.py
        for name, doc, attr in (
            ("callcore_ami_oversized_frames_total", "AMI frames dropped for exceeding ami_max_frame_bytes", "oversized_frames"),
            ("callcore_ami_oversized_bytes_total", "Bytes thrown away with oversized AMI frames", "oversized_bytes"),
            ("callcore_ami_too_many_headers_total", "AMI frames dropped for exceeding ami_max_headers", "too_many_headers"),
            ("callcore_ami_decode_errors_total", "AMI frames that were not valid UTF-8 (decoded with replacement)", "decode_errors"),
            ("callcore_ami_orphan_responses_total", "AMI Responses matching no pending action", "orphan_responses"),
            ("callcore_ami_dropped_noise_total", "AMI events dropped by the name filter", "dropped_noise"),
        ):
            c.counter(name, doc, lambda attr=attr: getattr(self.ami.stats, attr) if self.ami is not None else 0)
        c.gauge(
            "callcore_cti_subscriber_backlog",
            "CTI changes waiting in async subscribers (persistence, wrap-up, ...)",
            lambda: sum(self.cti.dispatcher.backlog().values()) if getattr(self.cti, "dispatcher", None) else 0,
        )
        journal = lambda attr: getattr(self.journal, attr, 0) if self.journal is not None else 0  # noqa: E731
        c.gauge("callcore_journal_depth", "Ended calls in the local journal not yet in the database", lambda: self.journal.journal.depth if self.journal else 0)
        c.gauge("callcore_journal_lag_seconds", "Age of the oldest call record not yet in the database", lambda: self.journal.journal.oldest_age() if self.journal else 0)
        c.counter("callcore_journal_drained_total", "Call records written from the journal after an outage or restart", lambda: journal("drained"))
        c.counter("callcore_journal_refused_total", "Call records not journaled because the journal was full", lambda: journal("refused"))
        outbox = lambda attr: getattr(getattr(self.cti, "webhooks", None), attr, 0)  # noqa: E731
        c.gauge("callcore_webhook_outbox_pending", "Webhook deliveries not done yet (stored or buffered)", lambda: outbox("pending"))
        c.counter("callcore_webhook_delivered_total", "Webhook deliveries answered 2xx", lambda: outbox("delivered"))
        c.counter("callcore_webhook_dead_total", "Webhook deliveries dead-lettered after every attempt", lambda: outbox("failed"))
        c.counter("callcore_webhook_lost_total", "Webhook deliveries dropped unstored (buffer full, DB down)", lambda: outbox("lost"))
        c.counter_by(
            "callcore_websocket_slow_disconnects_total",
            "Websocket clients disconnected for being too slow, by reason",
            "reason",
            self.ws_guard.stats.by_reason,
        )

    def _ws_clients(self) -> int:
        if self.cti is not None and hasattr(self.cti, "websocket_clients"):
            return int(self.cti.websocket_clients)
        return 0

    # ------------------------------------------------------------------ stop
    async def stop(self) -> None:
        s = self.settings
        if self.http is not None:
            self.http.should_exit = True
        if self.agi is not None:
            with contextlib.suppress(Exception):
                await self.agi.close(grace=s.agi_shutdown_grace)
        if self.server_watch is not None:  # before the AMI closes: closing is not losing the servers
            await self.server_watch.stop()
        if self.ami is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ami.close(), 2)
        # give uvicorn a moment to close its sockets, then cancel whatever is left
        http_tasks = [t for t in self._tasks if t.get_name() == "http"]
        if http_tasks:
            await asyncio.wait(http_tasks, timeout=2)
        for closer in reversed(self._closers):
            try:
                await asyncio.wait_for(closer(), 5)
            except Exception:
                log.exception("error while stopping %s", getattr(closer, "__qualname__", closer))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self.engine is not None:
            await self.engine.dispose()  # the database last: services flush into it while stopping
        log.info("callcore stopped")


def _redact_url(url: str) -> str:
    """postgresql+asyncpg://user:secret@host/db → postgresql+asyncpg://user:***@host/db"""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


async def serve(settings: Settings, ready: Callable[[Container], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM; SIGHUP reloads the dialplans."""
    container = Container(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _on_sighup(container))
    try:
        await container.start()
        if ready is not None:
            ready(container)
        await stop.wait()
        log.info("shutting down (signal received)")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await container.stop()


def _on_sighup(container: Container) -> None:
    if container.qa is not None:  # qa: the evaluation forms reload like the dialplans
        container.qa.registry.request_reload("SIGHUP")
    if container.ivr is None:
        log.info("SIGHUP: no IVR in this process, nothing to reload")
        return
    log.info("SIGHUP: dialplan reload requested")
    container.ivr.registry.request_reload("SIGHUP")  # an owned task of the registry; it logs the result
