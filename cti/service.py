"""CtiService: the CTI package assembled — one object the composition root
(``callcore/wiring.py``) builds, starts and stops. It holds no feature logic;
it builds the parts and says what talks to what:

* AMI ``on_event`` → :meth:`handle_event`: ``CtiState.apply`` (pure) turns the
  typed event into ``Change``s → :class:`cti.dispatcher.ChangeDispatcher` → the
  subscribers (``cti/subscribers/``: CRM preload, screen-pop notifier, call
  persistence, wrap-up timing, overflow; and click-to-call's ``call.created``);
* AMI ``on_connect`` → :meth:`resync` (:class:`cti.resync.ResyncService`);
* the feature services the routes call, one job each: :attr:`agents`
  (``cti/agents.py``), :attr:`calls` (call control, ``cti/calls.py``),
  :attr:`outbound` (click-to-call, ``cti/outbound.py``), :attr:`supervision`
  (``cti/supervision.py``), :attr:`callbacks` (``cti/callbacks.py``, the IVR's
  ``CallbackSink``), :attr:`customers` (``cti/customers.py``), :attr:`queues`
  (``cti/queues.py``), :attr:`router` (``cti/routing.py``, the IVR's ``Router``);
* :attr:`pops` (``cti/pops.py``) builds every screen-pop payload and takes pop
  enrichers; :attr:`dispatcher` takes new subscribers.

``handle_event`` is synchronous and never awaits the database: the ringing path
(AgentCalled → ``call.ringing``) only assembles a pop from the state and the
preload cache. Every background task is owned (``TaskOwner``) and flushed or
cancelled by :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from api.auth import Authenticator
from callcore.bus import Bus
from cti.agents import AgentService
from cti.ami import events as ev
from cti.bookkeeping import Bookkeeping
from cti.callbacks import CallbackService
from cti.calls import CallControlService
from cti.crm import BuiltinCrm, Crm, HttpCrm
from cti.customers import CustomerService
from cti.directory import AgentDirectory
from cti.dispatcher import ChangeDispatcher
from cti.errors import AmiFailed, AmiUnavailable, Conflict, CtiError, Forbidden, Invalid, NotFound  # noqa: F401 (re-exported)
from cti.notifier import CtiNotifier
from cti.outbound import OutboundService
from cti.pops import PopBuilder
from cti.ports import AmiPort, IvrContextSource, is_live
from cti.queues import QueueService
from cti.repository import CtiRepository
from cti.resync import ResyncService
from cti.routing import CtiRouter
from cti.state import Change, CtiState
from cti.subscribers import crm_preload, overflow, persistence, screen_pop, wrapup
from cti.supervision import SupervisionService
from cti.tasks import TaskOwner
from cti import outbound as outbound_mod

log = logging.getLogger("callcore.cti")


class CtiService:
    def __init__(
        self,
        *,
        ami: AmiPort,
        repository: CtiRepository,
        bus: Bus,
        crm: Crm,
        authenticator: Authenticator,
        ivr_context: IvrContextSource | None = None,
        webhooks: Any | None = None,
        clock: Callable[[], float] = time.time,
        pause_reasons: Iterable[str] = ("break", "lunch", "training", "meeting", "admin"),
        default_wrapup_seconds: int = 10,
        repeat_caller_hours: int = 24,
        outbound_context: str = "outbound",
        transfer_context: str = "transfer",
        hold_context: str = "hold",
        stats_interval: float = 1.0,
        tick_interval: float = 0.25,
        crm_timeout: float = 1.5,
        crm_cache_seconds: float = 120.0,
        crm_miss_cache_seconds: float = 5.0,
        call_store: Any | None = None,  # reliability: where ended calls are saved (journal/service.py); default the repository
    ) -> None:
        self._ami = ami
        self.repository = repository
        self.bus = bus
        self.crm = crm
        self.authenticator = authenticator
        self.webhooks = webhooks
        self._clock = clock
        self.stats_interval = stats_interval
        self.tick_interval = tick_interval

        # the core: pure state, the one dispatcher, the one notifier, the pop builder
        self.state = CtiState(default_wrapup_seconds=default_wrapup_seconds)
        self.dispatcher = ChangeDispatcher()
        self.notifier = CtiNotifier(bus)
        self.pops = PopBuilder(clock)
        self.tasks = TaskOwner("cti")  # persistence, AMI side effects: flushed on stop
        self.directory = AgentDirectory(repository, self.state)
        self.customers = CustomerService(
            repository, crm, clock=clock, timeout=crm_timeout, cache_seconds=crm_cache_seconds, miss_cache_seconds=crm_miss_cache_seconds
        )
        self.router = CtiRouter(
            self.state,
            lookup_customer=self.customers.lookup_customer,
            count_recent_calls=self.customers.count_recent_calls,
            repeat_caller_hours=repeat_caller_hours,
            lookup_timeout=crm_timeout,
            live=lambda: is_live(self._ami),
        )

        # subscribers (each its own module in cti/subscribers/)
        self.preload = crm_preload.CrmPreload(
            self.state, self.pops, self.customers, repository, self.notifier, ivr_context, timeout=crm_timeout, clock=clock
        )
        self.screen_pop = screen_pop.ScreenPopNotifier(self.state, self.pops, self.notifier)
        self.persistence = persistence.CallPersistence(
            self.state, call_store or repository, self.customers, self.preload, self.tasks
        )
        self.bookkeeping = Bookkeeping()  # database writes that follow an AMI action: retried, never blocking it
        self.wrapup = wrapup.WrapupTimer(self.state, self.directory, ami, repository, self.tasks, self.bookkeeping)
        self.overflow = overflow.Overflow(self.state, ami, self.tasks, transfer_context=transfer_context)

        # feature services, one job each (the routes call these)
        common = {"state": self.state, "directory": self.directory}
        self.agents = AgentService(
            ami=ami, repository=repository, dispatcher=self.dispatcher, pops=self.pops, wrapup=self.wrapup,
            authenticator=authenticator, clock=clock, pause_reasons=pause_reasons, bookkeeping=self.bookkeeping, **common,
        )
        self.calls = CallControlService(
            ami=ami, repository=repository, dispatcher=self.dispatcher, pops=self.pops, persistence=self.persistence,
            tasks=self.tasks, clock=clock, transfer_context=transfer_context, hold_context=hold_context, **common,
        )
        self.outbound = OutboundService(
            ami=ami, repository=repository, customers=self.customers, pops=self.pops, notifier=self.notifier,
            tasks=self.tasks, clock=clock, outbound_context=outbound_context, **common,
        )
        self.supervision = SupervisionService(ami=ami, **common)
        self.callbacks = CallbackService(repository=repository, directory=self.directory, notifier=self.notifier, outbound=self.outbound)
        self.queues = QueueService(repository=repository, state=self.state, notifier=self.notifier, clock=clock)
        self.resyncer = ResyncService(
            ami=ami, dispatcher=self.dispatcher, pops=self.pops, preload=self.preload, wrapup=self.wrapup,
            notifier=self.notifier, clock=clock, **common,
        )
        self._subscribe()

        self._loops: list[asyncio.Task[Any]] = []
        self.websocket_clients = 0
        self.events_handled = 0

    def _subscribe(self) -> None:
        """Every reaction to a change, in the order the sync ones run. A new one: one line."""
        d = self.dispatcher
        d.subscribe("crm-preload", self.preload, crm_preload.KINDS)
        d.subscribe("click-to-call", self.outbound, outbound_mod.KINDS)
        d.subscribe("screen-pop", self.screen_pop, screen_pop.KINDS)
        d.subscribe("call-persistence", self.persistence, persistence.KINDS)
        d.subscribe("wrap-up", self.wrapup, wrapup.KINDS)
        d.subscribe("overflow", self.overflow, overflow.KINDS)

    # ---------------------------------------------------------- factory
    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        ami: AmiPort,
        sessionmaker: Any,
        bus: Bus,
        ivr_context: IvrContextSource | None = None,
        **overrides: Any,
    ) -> "CtiService":
        from cti.webhooks import WebhookSender

        repository = CtiRepository(sessionmaker)
        crm: Crm = HttpCrm(settings.crm_url) if settings.crm_url else BuiltinCrm(repository)
        authenticator = Authenticator(settings.jwt_key.get_secret_value(), settings.api_tokens)
        webhooks = WebhookSender(bus, settings.webhooks) if settings.webhooks else None
        return cls(
            ami=ami,
            repository=repository,
            bus=bus,
            crm=crm,
            authenticator=authenticator,
            ivr_context=ivr_context,
            webhooks=webhooks,
            pause_reasons=settings.pause_reasons,
            default_wrapup_seconds=settings.default_wrapup_seconds,
            repeat_caller_hours=settings.repeat_caller_hours,
            crm_miss_cache_seconds=getattr(settings, "crm_miss_cache_seconds", 5.0),
            **overrides,
        )

    # -------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the directory and queue settings; start the owned background loops."""
        self.customers.watch()  # customer writes drop cached CRM lookups
        await self.directory.reload()
        for qs in await self.repository.queue_settings():
            self.state.set_queue_settings(qs)
        now = self._clock()
        midnight = datetime.fromtimestamp(now - now % 86400, timezone.utc)  # today's counters are per UTC day
        self.state.seed_today(await self.repository.queue_outcomes_since(midnight), now)
        await self.agents.load_pause_reasons()
        self._loops = [
            asyncio.create_task(self._timer_loop(), name="cti-wrapup-timer"),
            asyncio.create_task(self._stats_loop(), name="cti-queue-stats"),
        ]
        if self.webhooks is not None:
            await self.webhooks.start()

    async def stop(self, flush_timeout: float = 5.0) -> None:
        for t in self._loops:
            t.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        await self.resyncer.stop()  # the start-up's agent.resync window (several servers)
        await self.preload.tasks.stop()  # a pop nobody will see
        await self.tasks.stop(flush_timeout)  # let call persistence finish; cancel what does not
        await self.dispatcher.stop(flush_timeout)
        if self.webhooks is not None:
            await self.webhooks.stop()
        self.customers.unwatch()
        close = getattr(self.crm, "aclose", None)
        if close is not None:
            await close()

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until no background work (preloads, persistence, AMI side effects, async subscribers) is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.tasks.busy or self.preload.tasks.busy or self.dispatcher.pending():
            if loop.time() > deadline:
                raise TimeoutError("CTI background work still pending")
            await asyncio.sleep(0.005)

    async def _timer_loop(self) -> None:
        tick = [Change("clock.tick")]
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                now = self._clock()
                self.dispatcher.dispatch(self.state.tick(now), now)
                self.dispatcher.dispatch(tick, self._clock())
            except Exception:
                log.exception("CTI timer failed")

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            try:
                self.queues.publish_queue_stats()
            except Exception:
                log.exception("queue stats failed")

    # ------------------------------------------------------------ AMI hooks
    def handle_event(self, event: ev.AmiEvent) -> None:
        """The AMI client's ``on_event``: synchronous and fast."""
        now = self._clock()
        self.events_handled += 1
        changes = self.state.apply(event, now)
        if changes:
            self.dispatcher.dispatch(changes, now)
        self.outbound.on_event(event)
        self.calls.on_event(event)

    async def resync(self, ami: AmiPort | None = None) -> dict[str, Any]:
        """The AMI client's ``on_connect``: see :class:`cti.resync.ResyncService`."""
        return await self.resyncer.resync(ami)

    @property
    def resyncs(self) -> int:
        return self.resyncer.resyncs

    @property
    def last_resync(self) -> float | None:
        return self.resyncer.last_resync

    @property
    def persist_failures(self) -> int:
        return self.persistence.failures
