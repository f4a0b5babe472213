"""``IvrService``: one IVR run per call, with persistence and the queue hand-off.

What an adapter (FastAGI, classic AGI, console) calls::

    outcome = await service.run(channel)

It picks the flow (``channel.info.params["flow"]``, default ``main``) and the
first language (``params["lang"]``, else the channel's), takes the registry's
current :class:`~ivr.registry.FlowSet` (so the call keeps its version through
reloads), records an ``ivr_sessions`` row, runs the engine and stores the
outcome, step log, context and survey answers. On a ``queue`` outcome it sets
the channel variables the Asterisk dialplan reads:

``IVR_QUEUE``, ``IVR_PRIORITY``, ``IVR_TIMEOUT`` (when known),
``CALLCORE_SESSION`` (the ``ivr_sessions`` id) and ``IVR_SURVEY_FLOW``
(when the flow asks for a post-call survey).

The IVR context is cached in memory (bounded) and stored in the database;
:meth:`IvrService.context_for` serves the CTI screen pop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from callcore.db import utcnow
from ivr.channel import Channel, ChannelError, ChannelHungUp
from ivr.engine import Engine, IvrOutcome
from ivr.lookup import HttpLookupClient, LookupClient, PhoneDirectoryLookup
from ivr.ports import CallbackSink, InMemoryCallbackSink, PassThroughRouter, PopPreload, Router
from ivr.registry import FlowRegistry, ReloadResult
from ivr.repository import IvrRepository, MemoryIvrRepository, SessionStart

log = logging.getLogger(__name__)


class IvrService:
    def __init__(
        self,
        registry: FlowRegistry,
        router: Router,
        callbacks: CallbackSink,
        lookup: LookupClient,
        repository: IvrRepository,
        clock: Callable[[], datetime] = utcnow,
        *,
        sounds_prefix: str = "",
        monotonic: Callable[[], float] = time.monotonic,
        context_cache_size: int = 5000,
        trace: Callable[[str], None] | None = None,
        pop_preload: PopPreload | None = None,
        pop_preload_wait: float = 0.5,
    ) -> None:
        self.registry = registry
        #: ``observer(session_id, call_id, outcome, started_at, ended_at)`` after each run (reports' facts)
        self.observer: Callable[..., None] | None = None
        self.router = router
        self.callbacks = callbacks
        self.lookup = lookup
        self.repository = repository
        self.clock = clock
        self.sounds_prefix = sounds_prefix
        self.monotonic = monotonic
        self.trace = trace
        self.pop_preload = pop_preload
        self.pop_preload_wait = pop_preload_wait
        self._contexts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = context_cache_size
        self.active_calls = 0
        #: recording port for ``sensitive: true`` collect nodes (set by the wiring; None: nothing to mute)
        self.recording: Any = None

    async def start(self) -> None:
        """Load the dialplans (and start the watcher if the registry has one)."""
        result = await self.registry.start()
        if not result.ok:
            log.error("IVR started without valid dialplans; calls will fail until a reload passes the checker")

    async def stop(self) -> None:
        await self.registry.stop()
        aclose = getattr(self.lookup, "aclose", None)
        if aclose is not None:
            await aclose()

    aclose = stop

    async def reload(self, reason: str = "SIGHUP") -> ReloadResult:
        """Reload the dialplans (SIGHUP in the composition root); see :meth:`FlowRegistry.reload`."""
        return await self.registry.reload(reason)

    def _remember(self, uniqueid: str, context: dict[str, Any]) -> None:
        self._contexts[uniqueid] = context
        self._contexts.move_to_end(uniqueid)
        while len(self._contexts) > self._cache_size:
            self._contexts.popitem(last=False)

    async def context_for(self, uniqueid: str) -> dict[str, Any] | None:
        """The stored IVR context of a call (memory first, then the database)."""
        ctx = self._contexts.get(uniqueid)
        if ctx is not None:
            return ctx
        try:
            return await self.repository.context_for(uniqueid)
        except Exception:  # noqa: BLE001 - a screen pop without IVR data beats no screen pop
            log.exception("reading IVR context of %s failed", uniqueid)
            return None

    async def run(self, channel: Channel) -> IvrOutcome:
        info = channel.info
        flowset = await self.registry.ensure_loaded()
        flow_name = info.params.get("flow") or "main"
        if flow_name not in flowset.flows:
            log.error("call %s asked for unknown flow %r; using 'main'", info.uniqueid, flow_name)
            flow_name = "main"
        language = info.params.get("lang") or info.language
        started = self.clock()
        session_id: int | None = None
        try:
            session_id = await self.repository.start_session(
                SessionStart(info.uniqueid, info.linkedid, info.channel, info.caller_num, info.dialed, flow_name,
                             flowset.versions.get(flow_name), language, started)
            )
        except Exception:  # noqa: BLE001 - the caller must still be served without a database
            log.exception("could not record IVR session for %s", info.uniqueid)
        if self.recording is not None and info.uniqueid not in self._contexts and hasattr(self.recording, "call_entered"):
            # recording policy ``start: call``: Asterisk starts MixMonitor now, so the IVR is recorded (and a
            # sensitive collect has something to mute). Not on a later run on the same channel (the survey).
            try:
                await self.recording.call_entered(channel)
            except Exception:  # noqa: BLE001 - the caller is served without it; [queue-entry] records later
                log.exception("recording at call entry for %s failed", info.uniqueid)
        engine = Engine(
            flowset.flows, versions=flowset.versions, router=self.router, callbacks=self.callbacks, lookup=self.lookup,
            clock=self.clock, monotonic=self.monotonic, sounds_prefix=self.sounds_prefix, trace=self.trace,
            recording=self.recording,
        )
        self.active_calls += 1
        try:
            outcome = await engine.run(channel, flow_name, language)
        finally:
            self.active_calls -= 1
        outcome.context["session_id"] = session_id
        if outcome.kind == "queue":
            self._remember(info.uniqueid, outcome.context)  # before the variables: Queue() may start at once
            await self._hand_off(channel, outcome, session_id)
        if outcome.kind == "queue" or info.uniqueid not in self._contexts:
            # a later run on the same channel (the post-call survey) keeps the call's IVR context
            self._remember(info.uniqueid, outcome.context)
        if session_id is not None:
            try:
                await self.repository.finish_session(session_id, outcome, self.clock())
            except Exception:  # noqa: BLE001
                log.exception("could not store IVR session %s", session_id)
        if self.observer is not None:  # reports: IVR steps, containment, survey answers
            try:
                self.observer(str(session_id if session_id is not None else info.uniqueid), info.linkedid or info.uniqueid,
                              outcome, started.timestamp(), self.clock().timestamp())
            except Exception:  # noqa: BLE001 - bookkeeping never fails a call
                log.exception("IVR observer failed for %s", info.uniqueid)
        return outcome

    def _prepare_pop(self, info: Any, context: dict[str, Any]) -> Any:
        """The IVR knows who is calling when it hands the call to the queue: the screen pop's
        preload starts now, while the hand-off variables are being set."""
        if self.pop_preload is None:
            return None
        try:
            return self.pop_preload.prepare(info.uniqueid, info.linkedid, info.caller_num, dict(context))
        except Exception:  # noqa: BLE001 - a pop without preload beats a caller not queued
            log.exception("screen-pop preload of %s could not start", info.uniqueid)
            return None

    async def _await_preload(self, preload: Any) -> None:
        """Let the preload finish before ``Queue()`` rings an agent — bounded: with a slow CRM
        the call goes on after ``pop_preload_wait`` s and the pop says ``loading``."""
        if preload is None or self.pop_preload_wait <= 0:
            return
        future = asyncio.ensure_future(preload)
        if not future.done():
            await asyncio.wait({future}, timeout=self.pop_preload_wait)

    async def _hand_off(self, channel: Channel, outcome: IvrOutcome, session_id: int | None) -> None:
        preload = self._prepare_pop(channel.info, outcome.context)  # the screen pop loads while the variables are set
        variables = [("IVR_QUEUE", outcome.queue or ""), ("IVR_PRIORITY", str(outcome.priority or 0))]
        if outcome.timeout is not None:
            variables.append(("IVR_TIMEOUT", str(outcome.timeout)))
        if session_id is not None:
            variables.append(("CALLCORE_SESSION", str(session_id)))
        if outcome.survey_flow:
            variables.append(("IVR_SURVEY_FLOW", outcome.survey_flow))
        if self.recording is not None:  # the recording policy at queue entry (CALLCORE_RECORD, ...)
            try:
                variables.extend(self.recording.hand_off_variables(outcome.queue, channel.info.dialed,
                                                                   self.clock().timestamp()))
            except Exception:  # noqa: BLE001 - the caller still reaches the queue (the dialplan's defaults record)
                log.exception("recording policy for %s failed; the dialplan defaults apply", channel.info.uniqueid)
        try:
            for name, value in variables:
                await channel.set_variable(name, value)
        except ChannelHungUp:
            outcome.kind = "caller_hangup"
            outcome.context["outcome"] = "caller_hangup"
        except ChannelError:
            log.exception("could not hand call %s to queue %s", channel.info.uniqueid, outcome.queue)
            outcome.kind = "error"
            outcome.error = "queue hand-off failed"
            outcome.context["outcome"] = "error"
        if outcome.kind == "queue":  # not when the caller left during the hand-off
            await self._await_preload(preload)


async def build_ivr_service(
    settings: Any,
    *,
    sessionmaker: Any = None,
    router: Router | None = None,
    callbacks: CallbackSink | None = None,
    lookup: LookupClient | None = None,
    crm: Any = None,
    clock: Any = None,
    pop_preload: PopPreload | None = None,
) -> IvrService:
    """Wire an :class:`IvrService` from :class:`callcore.settings.Settings` (async: ``await`` it).

    Call ``await service.start()`` before the first call (loads the dialplans,
    starts the file watcher when ``settings.dialplan_watch``) and ``await
    service.stop()`` at shutdown; ``run`` also loads lazily (classic AGI).
    Without ``sessionmaker`` sessions and versions are kept in memory; without
    ``callbacks`` callback requests are kept in memory (and logged) — the
    composition root passes the CTI one. Lookups go to ``settings.crm_url``;
    with ``crm`` (any object with ``async lookup(phone) -> dict | None``, e.g.
    CTI's built-in customer table) ``/customers/by-phone/{phone}`` is answered
    by it and other paths still go to ``crm_url``. With ``pop_preload`` (CTI's
    ``CrmPreload``) the screen pop is preloaded at the queue hand-off, waited for at
    most ``settings.pop_preload_wait`` seconds.
    """
    from ivr.repository import SqlIvrRepository

    repository: IvrRepository = SqlIvrRepository(sessionmaker) if sessionmaker is not None else MemoryIvrRepository()
    sounds_dir = Path(settings.effective_sounds_dir)
    registry = FlowRegistry(
        Path(settings.dialplans_dir), sounds_dir, store=repository, watch=bool(settings.dialplan_watch),
        voicemail_conf=getattr(settings, "voicemail_conf", None),
    )
    if callbacks is None:
        log.warning("no callback store configured: callback requests are kept in memory only")
        callbacks = InMemoryCallbackSink()
    if lookup is None:
        lookup = HttpLookupClient(settings.crm_url)
        if crm is not None:
            lookup = PhoneDirectoryLookup(crm, fallback=lookup)
    return IvrService(
        registry,
        router or PassThroughRouter(),
        callbacks,
        lookup,
        repository,
        sounds_prefix=_sounds_prefix(settings, sounds_dir),
        pop_preload=pop_preload,
        pop_preload_wait=float(getattr(settings, "pop_preload_wait", 0.5)),
        **({"clock": clock} if clock is not None else {}),
    )


def _sounds_prefix(settings: Any, sounds_dir: Path) -> str:
    """Where Asterisk finds the sounds: ``asterisk_sounds_prefix`` when Asterisk sees them
    under another path (another container/host), else this host's absolute sounds dir."""
    prefix = getattr(settings, "asterisk_sounds_prefix", None) or str(sounds_dir.resolve())
    return prefix.rstrip("/") + "/"
