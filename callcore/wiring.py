"""How the domain packages are plugged together (called by ``callcore.app.Container``).

Kept apart from the container's lifecycle code so the container reads as
"what runs and in which order" and this file as "what talks to what":

* AMI client ──typed events──▶ ``CtiService.handle_event``; after every
  (re)login the client runs ``CtiService.resync`` before events are trusted.
* ``CtiService`` ──actions──▶ AMI client (through its narrow ``AmiPort``).
* IVR ──``Router``/``CallbackSink`` ports──▶ CTI routing and callbacks;
  CTI ──``IvrContextSource``──▶ the IVR's stored context for screen pops.
* FastAGI route ``ivr`` ──``AgiChannel``──▶ ``IvrService.run``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cti.ami.actions import Action, AmiNotConnected, AmiResponse
from outbox.repository import OutboxRepository
from cti.repository import CtiRepository
from journal.service import CallJournal, JournaledCalls
from outbox.service import OutboxSender

if TYPE_CHECKING:  # pragma: no cover
    from callcore.app import Container
    from callcore.settings import Settings

log = logging.getLogger("callcore.wiring")


class NoAmi:
    """The AMI port of a process started without the ``ami`` part (e.g. ``--only http``):
    call control answers 503 instead of pretending."""

    state = "disabled"

    async def send(self, action: Action, timeout: float | None = None) -> AmiResponse:
        raise AmiNotConnected(f"{action.name}: this process runs without the AMI part (--only)")


async def build_services(c: "Container") -> None:
    from cti.service import CtiService
    from ivr.service import build_ivr_service

    s = c.settings
    await build_broker(c)  # scale-out (issue 19): before anything publishes
    if s.runs("ami"):
        c.ami = build_ami(c)
    ivr_holder: dict[str, Any] = {}

    class _IvrContext:  # late-bound: the IVR service is built after CTI (it needs CTI's router)
        async def context_for(self, uniqueid: str) -> dict[str, Any] | None:
            ivr = ivr_holder.get("ivr")
            return await ivr.context_for(uniqueid) if ivr is not None else None

    # reliability (issue 12): ended calls go through the durable local journal (journal/service.py)
    c.journal = JournaledCalls(
        CallJournal(s.data_dir / "journal.sqlite3", max_entries=s.journal_max_entries), CtiRepository(c.sessionmaker)
    )
    await c.journal.start()
    c.add_closer(c.journal.stop)  # closers run in reverse: after CTI has flushed its last calls
    c.cti = CtiService.from_settings(
        s, ami=c.ami if c.ami is not None else NoAmi(), sessionmaker=c.sessionmaker, bus=c.bus, ivr_context=_IvrContext(),
        call_store=c.journal,
    )
    await build_security(c)  # security (issue 11): one Authenticator for every edge, audit log, logins
    # reliability (issue 12): webhooks go through the durable outbox (outbox/service.py)
    c.outbox = OutboxRepository(c.sessionmaker)
    if s.webhooks:
        c.cti.webhooks = OutboxSender(
            c.bus, s.webhooks, c.outbox, first_wait=s.webhook_retry_first_wait, max_wait=s.webhook_retry_max_wait
        )
        if c.relay is not None:  # scale-out (issue 19): instances share the outbox
            c.cti.webhooks.claim_lease = 60.0
    # reliability (issue 12): calls in progress are journaled too (journal/live.py); what a killed
    # process left is handed to the first resync, which ends or continues each call
    from journal.live import LiveCallJournal

    live = LiveCallJournal(c.journal.journal, c.cti.state, interval=s.journal_live_interval)
    await live.start()
    if hasattr(c.ami, "server_of_channel"):  # several servers: call control goes to the call's server
        c.ami.server_of_channel = c.cti.state.server_of_channel
    c.cti.dispatcher.subscribe("live-call-journal", live)
    c.cti.resyncer.before_first_rebuild = live.before_rebuild
    c.cti.resyncer.startup_window = s.ami_startup_resync_window  # several servers: one agent.resync per start-up
    c.live_journal = live
    await c.cti.start()
    c.add_closer(c.cti.stop)
    c.add_closer(live.stop)  # closers run in reverse: the last pictures before CTI stops

    c.ivr = await build_ivr_service(
        s, sessionmaker=c.sessionmaker, router=c.cti.router, callbacks=c.cti.callbacks, crm=c.cti.crm, clock=c.clock,
        pop_preload=c.cti.preload,  # cti: the screen pop is preloaded at the IVR hand-off
    )
    ivr_holder["ivr"] = c.ivr
    if hasattr(c.ivr, "start"):
        await c.ivr.start()
        c.add_closer(c.ivr.stop)
    await build_reports(c)
    await build_recording(c)
    # --- kb (issue 17): the knowledge base, fed by the screen pop of CTI's calls (attachments on
    # the recording storage port when recording is on)
    if s.runs("http") or s.runs("ami"):
        await build_kb(c)
    await build_qa(c)


# --- several Asterisk servers (issue 19; docs/multi-asterisk.md)
def build_ami(c: "Container") -> Any:
    """One :class:`~cti.ami.AmiClient` per Asterisk server (``settings.effective_ami_servers``), each
    tagging its events with the server's name and resyncing THAT server on (re)login. One
    server: the client itself is the AMI port (as before); several: a
    :class:`~cti.ami.multi.MultiAmi` routes each action to its server(s) (cti/servers.py)."""
    from cti.ami import AmiClient
    from cti.ami.multi import MultiAmi, ServerPort
    from cti.servers import ServerMap

    s = c.settings
    servers = s.effective_ami_servers
    smap = ServerMap([(srv.name, srv.queues) for srv in servers], s.agent_servers)
    ports: list[ServerPort] = []
    for srv in servers:
        holder: dict[str, Any] = {}
        client = AmiClient(
            srv.host,
            srv.port,
            srv.username,
            srv.secret.get_secret_value(),
            action_timeout=s.ami_action_timeout,
            reconnect_min=s.ami_reconnect_min,
            reconnect_max=s.ami_reconnect_max,
            max_frame_bytes=s.ami_max_frame_bytes,  # reliability: bounded AMI framing
            max_headers=s.ami_max_headers,
            on_event=lambda event: _counted_event(c, event),  # ops: counted by type, then CTI
            on_connect=lambda holder=holder: _timed_resync(c, holder["port"]),
            server=srv.name,
        )
        port = ServerPort(srv.name, client, smap)
        holder["port"] = port if len(servers) > 1 else client
        ports.append(port)
    if len(ports) == 1:
        return ports[0].client
    return MultiAmi(ports, smap)


def ami_servers(c: "Container") -> dict[str, Any]:
    """Server name → its AMI client (one entry for a single server)."""
    ami = c.ami
    if ami is None:
        return {}
    if hasattr(ami, "ports"):
        return {name: p.client for name, p in ami.ports.items()}
    return {getattr(ami, "server", "") or c.settings.ami_name: ami}


# --- scale-out (issue 19): the cross-instance bus relay (callcore/broker.py)
async def build_broker(c: "Container") -> None:
    s = c.settings
    if not s.broker_url:
        return
    from callcore.broker import NatsRelay

    c.relay = NatsRelay(c.bus, s.broker_url, instance=s.instance_name, prefix=s.broker_prefix)
    await c.relay.start()
    c.add_closer(c.relay.stop)  # closers run in reverse: the relay is the last to stop
    if not await c.relay.wait_connected(3.0):
        log.warning("broker not connected yet: pops from other instances will arrive once it is")


def _leader(c: "Container") -> Any:
    """Scheduled jobs that must run on one instance (and need its live calls) run on the AMI
    holder; None (always) for a single instance."""
    if c.relay is None:
        return None
    return lambda: c.ami_duty is not None and c.ami_duty.lease.held
# --- end scale-out


# --- reports (issue 16): fact store, live counters, report API
async def build_reports(c: "Container") -> None:
    """CTI changes ──FactsSubscriber──▶ ReportService (live counters + fact store); the IVR's
    observer ──▶ IVR steps and survey answers; the CTI wallboard counters come from the facts."""
    from reports.service import ReportService
    from reports.subscriber import KINDS, FactsSubscriber

    s = c.settings
    clock = c.cti._clock  # the CTI's clock: the changes' ``now`` and the live counters' day agree
    c.reports = ReportService.from_settings(s, c.sessionmaker, clock=clock)
    facts = FactsSubscriber(c.cti.state, c.reports.record, resolved_codes=s.report_resolved_dispositions)
    c.reports.open_spans = facts.open_spans
    c.reports.leader = _leader(c)  # scale-out (issue 19): rollups on the AMI holder only
    await c.reports.start(offload_staffing=True)  # Erlang A never on the event loop (issue 18)

    async def stop_reports() -> None:
        facts.close_all(clock())
        await c.reports.stop()

    c.add_closer(stop_reports)
    c.cti.dispatcher.subscribe("report-facts", facts, kinds=KINDS)
    c.cti.state.counters = c.reports.live.queue_today
    state = c.cti.state
    c.reports.config.sl_seconds_of = lambda q: (
        state.queue_settings[q].service_level_seconds if q in state.queue_settings else None)
    if c.ivr is not None and hasattr(c.ivr, "observer"):
        c.ivr.observer = c.reports.ivr_finished

    # --- web UI (issue 14): the wallboard feed reads CTI's bus messages, pushes wallboard.update
    if s.runs("http"):
        from web.models import load_config
        from web.service import WebService

        cti = c.cti
        c.web = WebService(
            bus=c.bus, config=load_config(s.web_config), agents=cti.agents.list_agents,
            agent_ids=cti.agents.directory.ids, agent_view=cti.agents.agent_view,  # a tick reads the new agents only
            queue_stats=cti.queues.queue_views, pause_reasons=lambda: list(cti.agents.pause_reasons),
            clock=clock, reports=c.reports,  # the wallboard's counts and KPI tiles are the report store's
        )
        await c.web.start()
        c.add_closer(c.web.stop)
        # a caller joining/leaving a queue pushes the waiting tile now, not at the next tick (issue 18)
        cti.dispatcher.subscribe("web-wallboard", c.web.on_change, kinds=c.web.CHANGE_KINDS)
    # --- end web UI


# --- ops (issue 20) -----------------------------------------------------------------------
def _counted_event(c: "Container", event: Any) -> None:
    """The AMI client's ``on_event``: counted by type (``callcore_ami_events_by_type``), then CTI."""
    c.metrics.count_ami_event(event)
    c.cti.handle_event(event)


async def _timed_resync(c: "Container", port: Any = None) -> Any:
    """An AMI client's ``on_connect``: CTI's resync of that server (``port``), timed into
    ``callcore_ami_resync_duration_seconds`` (labelled by the server's endpoint)."""
    import time

    port = port if port is not None else c.ami
    started = time.perf_counter()
    try:
        return await c.cti.resync(port)
    finally:
        client = getattr(port, "client", port)
        endpoint = f"{getattr(client, 'host', c.settings.ami_host)}:{getattr(client, 'port', c.settings.ami_port)}"
        c.metrics.ami_resync_duration.labels(endpoint).observe(time.perf_counter() - started)
# --- end ops --------------------------------------------------------------------------------


async def build_recording(c: "Container") -> None:
    """Recording (issue 13): the service, its subscriber on the CTI change dispatcher,
    the IVR's ``sensitive: true`` port, and its owned job/purge loops."""
    s = c.settings
    if not s.recording_enabled:
        return
    from recording.service import build_recording_service
    from recording.subscriber import RecordingSubscriber

    c.recording = build_recording_service(
        s, sessionmaker=c.sessionmaker, ami=c.ami if c.ami is not None else NoAmi(), clock=getattr(c.cti, "_clock", None),
        bus=c.bus, audit=getattr(c, "audit", None),  # the security package's audit log, once it is built
    )
    c.recording.call_lookup = lambda call_id: c.cti.state.calls.get(call_id)
    resyncer = getattr(c.cti, "resyncer", None)
    if resyncer is not None:  # calls created after the first resync are known from their start (issue 18)
        c.recording.synced = lambda: resyncer.resyncs > 0
    c.cti.outbound.recording_variables = c.recording.originate_variables  # click-to-call / callback recorded per policy
    c.recording.leader = _leader(c)  # scale-out (issue 19): purge + orphan recovery on the AMI holder only
    if getattr(c, "reports", None) is not None:  # reports (issue 16): recording coverage
        from reports.subscriber import QualityFacts

        c.recording.observer = QualityFacts(c.reports.record).recording
    c.cti.dispatcher.subscribe(
        "recording", RecordingSubscriber(c.cti.state, c.recording), kinds=RecordingSubscriber.KINDS
    )
    if c.ivr is not None and hasattr(c.ivr, "recording"):
        c.ivr.recording = c.recording
    m = c.metrics.collector
    m.gauge("callcore_recordings_live", "Calls being recorded now", lambda: len(c.recording.live))
    m.counter("callcore_recording_jobs_done_total", "Recording post-processing jobs finished", lambda: c.recording.jobs_done)
    m.gauge("callcore_recording_jobs_backlog", "Recording post-processing jobs pending or running (as of the last job pass)",
            lambda: c.recording.jobs_backlog)
    m.counter("callcore_recording_write_failures_total", "Recording bookkeeping writes that failed for good",
              lambda: c.recording.write_failures)
    await c.recording.start()
    c.add_closer(c.recording.stop)


async def build_kb(c: "Container") -> None:
    """Knowledge base (``app.state.kb``): search, the ``"kb"`` pop enricher, suggestions and
    marks for a call read from CTI's pop of that call."""
    from kb.analysis import Analyzer
    from kb.notifier import KbNotifier
    from kb.repository import KbRepository
    from kb.service import SAMPLE_DIR, KbService
    from recording.storage import build_storage

    s = c.settings
    rules_file = s.effective_kb_rules_file
    cti = c.cti
    notifier = KbNotifier(c.bus, agents=lambda: [a.id for a in cti.state.agents.values() if a.logged_in])
    ivr = c.ivr

    def flow_nodes() -> list[str] | None:  # for the rules checker's "no dialplan node named …" warning
        registry = getattr(ivr, "registry", None)
        if registry is None or not registry.loaded:
            return None
        return [n for f in registry.current.flows.values() for n in f.nodes]

    def pop_for(call_id: str) -> dict[str, Any] | None:  # the pop of a live or just-ended call
        call = cti.state.calls.get(call_id) or cti.state.ended.get(call_id)
        return cti.pops.pop(call, call.agent_id) if call is not None else None

    # attachments on the recording storage port: the same backend (fs or S3), keys kb/<article>/<sha256>
    store = c.recording.storage if c.recording is not None else build_storage(s)
    c.kb = KbService(KbRepository(c.sessionmaker), Analyzer(), store=store,
                     notifier=notifier, rules_file=rules_file, flow_nodes=flow_nodes, pops=pop_for)
    if rules_file.is_file():
        loaded = c.kb.reload_rules()
        for problem in loaded["problems"]:
            log.warning("kb rules: %s", problem)
        if not loaded["reloaded"]:
            log.error("kb rules %s have errors: the pop carries no suggestions until they are fixed", rules_file)
    else:
        log.warning("kb rules %s not found: the pop carries no suggestions", rules_file)
    await c.kb.start(sample_dir=(s.kb_sample_dir or SAMPLE_DIR) if s.kb_load_sample else None)
    c.add_closer(c.kb.stop)
    # the pop preload (at the IVR hand-off, before the phone rings) runs kb's enricher: the pop
    # carries {"kb": {"context", "suggestions"}} (cti/pops.py)
    cti.pops.add_enricher("kb", c.kb.enrich)


# --- qa (issue 15): forms registry (hot reload) + evaluations, work list, calibration
async def build_qa(c: "Container") -> None:
    from qa.service import build_qa_service

    c.qa = build_qa_service(c.settings, c.sessionmaker, audit=c.audit, recordings=c.recording is not None)
    if getattr(c, "reports", None) is not None:  # reports (issue 16): QA scores and coverage
        from reports.subscriber import QualityFacts

        c.qa.observer = QualityFacts(c.reports.record).qa
    await c.qa.start()
    c.add_closer(c.qa.stop)
    if c.settings.qa_worklist_schedule:  # scheduled work-list build, leased per period
        from datetime import time as _time

        from qa.scheduler import WorkListScheduler

        sched = WorkListScheduler(c.qa, at=_time.fromisoformat(c.settings.qa_worklist_at), every=c.settings.qa_worklist_every)
        sched.start()
        c.add_closer(sched.stop)


# --- security (issue 11) ------------------------------------------------------------------
async def build_security(c: "Container") -> None:
    """The audit log, the one :class:`~auth.tokens.Authenticator` (signing key ring checked by
    ``auth.checker.check_startup`` in ``Container.start``) and the login service. CTI's agent
    PIN store backs agent logins; CTI issues and checks tokens with the same authenticator."""
    import time

    from audit.service import AuditLog
    from auth.ratelimit import SharedLoginThrottle
    from auth.repository import AuthRepository
    from auth.service import AuthService
    from auth.tokens import Authenticator

    s = c.settings
    c.audit = AuditLog(c.sessionmaker)
    c.authenticator = Authenticator(
        c.keyring, s.api_tokens, token_ttl=s.access_token_ttl, refresh_ttl=s.refresh_token_ttl, session_ttl=s.session_ttl,
    )
    c.cti.authenticator = c.authenticator
    if getattr(c.cti, "agents", None) is not None:  # the agent feature service issues PIN-login tokens too
        c.cti.agents.authenticator = c.authenticator
    from auth.crypto import FieldCipher

    c.cti.repository.cipher = FieldCipher.from_settings(s)  # sensitive customer fields sealed at rest
    # shared by every instance on the database (auth_login_throttle): wall-clock times
    throttle = SharedLoginThrottle(
        c.sessionmaker,
        time.time,
        account_failures=s.login_max_failures_account,
        address_failures=s.login_max_failures_address,
        window=s.login_failure_window,
        lockout=s.login_lockout_seconds,
    )
    c.auth = AuthService(
        AuthRepository(c.sessionmaker), c.authenticator, audit=c.audit, throttle=throttle,
        agents=c.cti.repository, cookie_secure=s.cookie_secure,
    )
    await c.auth.start()
# --- end security ---------------------------------------------------------------------------


def ami_lease(s: "Settings", instance: str) -> tuple[Any, Any]:
    """The cluster's AMI lease and the engine it beats on: a connection of its own. On the shared
    pool, a burst of per-call writes made renewals wait for a connection past their timeout, and a
    healthy holder gave the lease up (benchmarks/README.md §10: the lease moved between two live
    instances under load, with pops lost and duplicated at each take-over)."""
    from callcore.db import create_engine, session_factory
    from callcore.lease import Lease

    engine = create_engine(s.effective_database_url, pool_size=1, max_overflow=1)
    return Lease(session_factory(engine), f"ami:{s.ami_name}", instance, ttl=s.ami_lease_ttl,
                 interval=s.ami_lease_interval), engine


async def start_server_watch(c: "Container") -> None:
    """Issue 19: a server not connected for ``ami_server_lost_grace`` has its live calls ended once
    (cti/server_watch.py); only while this instance is the AMI consumer (a cluster's lease holder)."""
    from cti.server_watch import ServerLossWatch

    def active() -> bool:
        duty = getattr(c, "ami_duty", None)
        return duty is None or bool(duty.lease.held)

    c.server_watch = ServerLossWatch(
        states=lambda: {name: client.state for name, client in ami_servers(c).items()}, state=c.cti.state,
        dispatcher=c.cti.dispatcher, grace=c.settings.ami_server_lost_grace, clock=c.cti._clock, active=active)
    await c.server_watch.start()
    c.add_closer(c.server_watch.stop)


async def start_ami(c: "Container") -> None:
    await start_server_watch(c)
    if c.relay is None:  # one instance: always the AMI consumer
        await c.ami.start()
        return
    # scale-out (issue 19): with a broker, the AMI consumer is leased (callcore/cluster.py)
    from callcore.cluster import AmiDuty

    s = c.settings

    async def serve_http(request: dict[str, Any]) -> dict[str, Any]:  # forwarded call control, into our app
        replay = getattr(c, "http_replay", None)
        if replay is None:
            from callcore.cluster import _reply

            return _reply(503, {"detail": "the AMI holder's HTTP part is not running"})
        return await replay(request)

    lease, lease_engine = ami_lease(s, c.relay.instance)
    c.add_closer(lease_engine.dispose)  # closers run in reverse: after the duty has released the lease
    # live calls handed from the holder to the standbys (callcore/handoff.py), sealed with the cluster's signing key
    from callcore.handoff import HandoffPublisher, HandoffReceiver

    key = c.keyring.signing_key()[1]
    subject = f"live.{s.ami_name}"
    receiver = HandoffReceiver(key)
    await c.relay.listen(subject, receiver.receive)
    publisher = HandoffPublisher(c.cti.state, lambda data: c.relay.publish_raw(subject, data), key, held=lambda: lease.held)
    c.cti.dispatcher.subscribe("live-call-handoff", publisher)
    await publisher.start()
    c.add_closer(publisher.stop)
    journal_hook = c.cti.resyncer.before_first_rebuild  # the local journal's pictures (journal/live.py), once

    def prepare() -> None:  # at every acquisition: the previous holder's pictures, else the local journal's
        def before_rebuild() -> None:
            nonlocal journal_hook
            hook, journal_hook = journal_hook, None
            if not receiver.before_rebuild(c.cti.state) and hook is not None:
                hook()

        c.cti.resyncer.before_first_rebuild = before_rebuild
        c.cti.resyncer.coalesce_next()  # taking the lease is a start-up: one agent.resync for all servers

    c.handoff = receiver
    c.ami_duty = AmiDuty(s.ami_name, c.ami, lease, relay=c.relay, serve_http=serve_http, prepare=prepare)
    await c.ami_duty.start()
    c.add_closer(c.ami_duty.stop)


def cluster_app(c: "Container", app: Any) -> Any:
    """The HTTP app of a clustered instance: call control goes to the AMI holder (callcore/cluster.py)."""
    if c.relay is None:
        return app
    from callcore.cluster import HolderForwarding, asgi_replayer

    duty = getattr(c, "ami_duty", None)
    c.http_replay = asgi_replayer(app)
    c.add_closer(c.http_replay.aclose)
    return HolderForwarding(app, c.settings.ami_name, (lambda: duty.lease.held) if duty is not None else (lambda: False),
                            c.relay, timeout=c.settings.cluster_forward_timeout)


async def start_agi(c: "Container") -> None:
    from ivr.agi import AgiChannel, AgiSession, FastAgiServer

    s = c.settings
    server = FastAgiServer(
        s.agi_host,
        s.agi_port,
        header_timeout=s.agi_header_timeout,
        command_timeout=s.agi_command_timeout,
        # security (issue 11): allow-list, per-peer limits, silent-peer limit
        max_sessions=s.agi_max_sessions,
        allowed_peers=s.agi_allowed_peers,
        max_sessions_per_peer=s.agi_max_sessions_per_peer,
        max_pending_per_peer=s.agi_max_pending_per_peer,
        first_answer_timeout=s.agi_first_answer_timeout,
        on_command=c.metrics.observe_agi_command,  # ops (issue 20): command latency histogram
    )
    ivr = c.ivr

    async def handle_ivr(session: AgiSession) -> None:  # agi://host:4573/ivr?flow=main&lang=ko
        await ivr.run(AgiChannel(session))

    server.add_route("ivr", handle_ivr)
    await server.start()
    c.agi = server


async def build_standalone_ivr(settings: Any) -> tuple[Any, Any]:
    """The IVR of one classic-AGI process (``callcore agi``, one process per call): the
    server's database (IVR context for the screen pop, session log, callbacks), its CRM
    and its routing priorities (VIP, repeat caller) — without AMI, so without queue-load
    decisions. Returns ``(ivr_service, aclose)``."""
    from callcore.bus import Bus
    from callcore.db import create_engine, session_factory
    from cti.service import CtiService
    from ivr.service import build_ivr_service

    engine = create_engine(settings.effective_database_url)
    sessionmaker = session_factory(engine)
    cti = CtiService.from_settings(settings, ami=NoAmi(), sessionmaker=sessionmaker, bus=Bus())
    ivr = await build_ivr_service(settings, sessionmaker=sessionmaker, router=cti.router, callbacks=cti.callbacks, crm=cti.crm)
    # --- reports (issue 16): this call's IVR steps, survey answers and callback request
    from reports.service import ReportService

    reports = ReportService.from_settings(settings, sessionmaker, rollup_every=None)
    await reports.start(load_today=False)
    ivr.observer = reports.ivr_finished

    async def aclose() -> None:
        try:
            await reports.stop()
            await ivr.stop()
            crm_close = getattr(cti.crm, "aclose", None)
            if crm_close is not None:
                await crm_close()
        finally:
            await engine.dispose()

    return ivr, aclose


def routers(c: "Container") -> list[Any]:
    from cti.routes import routers as cti_routers
    from ivr.routes import router as ivr_router
    from kb.routes import router as kb_router  # kb (issue 17)
    from outbox.routes import router as outbox_router

    from audit.routes import router as audit_router
    from auth.routes import router as auth_router
    from recording.routes import router as recording_router
    from qa.routes import router as qa_router

    # auth first: its /api/auth/login replaces CTI's older one (same path, same body)
    from reports.routes import router as reports_router

    return [auth_router, audit_router, *cti_routers(), ivr_router, reports_router, recording_router, kb_router, qa_router, outbox_router]


# --- ivr: `callcore dialplan try` looks customers up where the server does (issue 20)
async def build_try_lookup(settings: Any) -> tuple[Any, str, Any]:
    """The IVR lookup the server would use, for ``callcore dialplan try``: ``settings.crm_url`` if
    set, else the built-in customer table of the configured database. Returns
    ``(lookup, what it is, async aclose or None)``."""
    from pathlib import Path

    from callcore.app import _redact_url
    from ivr.lookup import HttpLookupClient, PhoneDirectoryLookup

    if settings.crm_url:
        return HttpLookupClient(settings.crm_url), f"lookups: the CRM at {settings.crm_url} (settings.crm_url)", None
    url = settings.effective_database_url
    if url.startswith("sqlite") and ":///" in url and not Path(url.split(":///", 1)[1]).exists():
        return (HttpLookupClient(""), f"lookups: no database at {url.split(':///', 1)[1]} yet (start the server once, or pass "
                "--lookup-fixture / --crm-url): every customer lookup takes its fallback", None)
    from callcore.db import create_engine, session_factory
    from cti.crm import BuiltinCrm
    from cti.repository import CtiRepository

    engine = create_engine(url)
    lookup = PhoneDirectoryLookup(BuiltinCrm(CtiRepository(session_factory(engine))), fallback=HttpLookupClient(""))
    return lookup, f"lookups: the built-in customer table of {_redact_url(url)} (as the server)", engine.dispose
