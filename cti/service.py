"""CtiService: wires the AMI port, the pure state, the repository, the CRM, the
IVR context source and the notifier, and owns the CTI background tasks.

Wiring (composition root)::

    cti = CtiService.from_settings(settings, ami=ami_client, sessionmaker=sm, bus=bus, ivr_context=ivr_service)
    ami_client = AmiClient(..., on_event=cti.handle_event, on_connect=cti.resync)
    await cti.start()            # loads agents/queue settings, starts wrap-up timer, queue.stats ticker, webhooks
    app.state.cti = cti          # routes find it there
    ivr: router=cti.router, callbacks=cti   (cti implements ivr.ports.CallbackSink)
    ...
    await cti.stop()             # cancels every task it owns, flushes pending call persistence

``handle_event`` is synchronous and never awaits the database: the ringing path
(AgentCalled → ``call.ringing``) only assembles a pop from the state and the
preload cache filled when the caller joined the queue (QueueCallerJoin).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Coroutine, Iterable, Protocol

from cti import repository as repo_mod
from cti.ami import actions as act
from cti.ami import events as ev
from cti.ami.actions import Action, AmiActionError, AmiNotConnected, AmiResponse, AmiTimeout
from api.auth import Authenticator, Principal
from cti.crm import BuiltinCrm, Crm, HttpCrm
from cti.notifier import CtiNotifier
from cti.repository import AgentRecord, CtiRepository, Duplicate
from cti.routing import CtiRouter
from cti.state import Call, Change, CtiState, QueueSettings, channel_key, interface_key
from callcore.bus import Bus
from ivr.ports import CallbackRequest

log = logging.getLogger("callcore.cti")


# ------------------------------------------------------------------ ports
class AmiPort(Protocol):
    async def send(self, action: Action) -> AmiResponse: ...


class IvrContextSource(Protocol):
    def context_for(self, uniqueid: str) -> dict[str, Any] | None: ...  # may also be a coroutine function


# ----------------------------------------------------------------- errors
class CtiError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CtiError):
    status = 404


class Conflict(CtiError):
    status = 409


class Forbidden(CtiError):
    status = 403


class Invalid(CtiError):
    status = 422


class AmiFailed(CtiError):
    status = 502


class AmiUnavailable(CtiError):
    status = 503


_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")
_NO_CHANNEL = ("no such channel", "does not exist", "not found", "unable to find")


def _bridge(channel1: str, channel2: str) -> Action:
    """``Bridge`` two channels (unhold). Not among cti.ami.actions' factories yet."""
    return Action.make("Bridge", Channel1=channel1, Channel2=channel2, Tone="no")


def _confirmed_member(queue: str, rec: AgentRecord, penalty: int, now: float) -> ev.QueueMemberAdded:
    """The QueueMemberAdded Asterisk emits for a successful ``QueueAdd`` of ``rec``."""
    return ev.QueueMemberAdded(
        ev.MemberInfo(
            queue=queue,
            name=rec.name,
            interface=rec.interface,
            state_interface=rec.interface,
            membership="dynamic",
            penalty=penalty,
            calls_taken=0,
            last_call=0,
            last_pause=0,
            login_time=int(now),
            in_call=False,
            status=1,
            paused=rec.paused,
            paused_reason=(rec.pause_reason or "") if rec.paused else "",
            wrapuptime=0,
        )
    )


_QUEUE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,79}")


def _dial_target(interface: str) -> str:
    """The Originate channel for a queue-member interface (``Local/1001@agents/n`` → ``Local/1001@agents``)."""
    return interface[:-2] if interface.endswith("/n") else interface


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
    ) -> None:
        self._ami = ami
        self.repository = repository
        self.bus = bus
        self.crm = crm
        self.authenticator = authenticator
        self._ivr = ivr_context
        self.webhooks = webhooks
        self._clock = clock
        self.pause_reasons = list(pause_reasons)
        self.repeat_caller_hours = repeat_caller_hours
        self.outbound_context = outbound_context
        self.transfer_context = transfer_context
        self.hold_context = hold_context
        self.stats_interval = stats_interval
        self.tick_interval = tick_interval
        self.crm_timeout = crm_timeout
        self.crm_cache_seconds = crm_cache_seconds

        self.state = CtiState(default_wrapup_seconds=default_wrapup_seconds)
        self.notifier = CtiNotifier(bus)
        self.router = CtiRouter(
            self.state,
            lookup_customer=self.lookup_customer,
            count_recent_calls=self._count_recent_calls,
            repeat_caller_hours=repeat_caller_hours,
            lookup_timeout=crm_timeout,
            live=self._queues_live,
        )
        self._agents: dict[str, AgentRecord] = {}  # DB directory (desired state)
        self._pop_cache: dict[str, dict[str, Any]] = {}  # call id -> {"customer", "ivr", "previous"}
        self._crm_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._pending_clicks: dict[str, dict[str, Any]] = {}  # agent id -> click-to-call details
        self._wrapup_paused: set[str] = set()  # agents callcore paused in Asterisk for wrap-up
        self._parked: dict[str, tuple[str, str]] = {}  # leg of an on-hold call -> (call id, the other leg)
        self._preloads: dict[str, asyncio.Task[None]] = {}
        self._persisting: dict[str, asyncio.Task[Any]] = {}  # call id -> persistence task
        self._after_wrapup_tasks: dict[str, asyncio.Task[Any]] = {}
        self._wrapup_start_tasks: dict[str, asyncio.Task[Any]] = {}
        self._bg: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self.websocket_clients = 0
        self.resyncs = 0
        self.last_resync: float | None = None
        self.events_handled = 0
        self.persist_failures = 0

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
            **overrides,
        )

    def _queues_live(self) -> bool:
        """True when the state mirrors Asterisk: the AMI link is up and resynced. (A port
        without ``state``, such as a test double, is taken as live.)"""
        return getattr(self._ami, "state", "connected") == "connected"

    # -------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the directory and queue settings; start the owned background loops."""
        await self.reload_directory()
        for qs in await self.repository.queue_settings():
            self.state.set_queue_settings(qs)
        now = self._clock()
        midnight = datetime.fromtimestamp(now - now % 86400, timezone.utc)  # today's counters are per UTC day
        self.state.seed_today(await self.repository.queue_outcomes_since(midnight), now)
        for r in await self.repository.pause_reasons():
            if r["active"] and r["code"] not in self.pause_reasons:
                self.pause_reasons.append(r["code"])
            elif not r["active"] and r["code"] in self.pause_reasons:
                self.pause_reasons.remove(r["code"])
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
        for t in list(self._preloads.values()):
            t.cancel()
        pending = [t for t in self._bg if not t.done()]
        if pending:  # let call persistence finish; cancel what does not
            done, not_done = await asyncio.wait(pending, timeout=flush_timeout)
            for t in not_done:
                t.cancel()
            await asyncio.gather(*not_done, return_exceptions=True)
        await asyncio.gather(*self._preloads.values(), return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.stop()
        close = getattr(self.crm, "aclose", None)
        if close is not None:
            await close()

    async def reload_directory(self) -> None:
        agents = await self.repository.list_agents()
        for gone in set(self._agents) - {a.id for a in agents}:
            self.state.unregister_agent(gone)
        self._agents = {a.id: a for a in agents}
        for a in agents:
            self.state.register_agent(a.id, a.interface, a.name, a.extension)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._bg.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._bg.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("CTI task %s failed", task.get_name(), exc_info=task.exception())

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until no background work (preloads, persistence, AMI side effects) is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._bg or self._preloads:
            if loop.time() > deadline:
                raise TimeoutError("CTI background work still pending")
            await asyncio.sleep(0.005)

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self._dispatch(self.state.tick(self._clock()), self._clock())
                self._overflow(self._clock())
            except Exception:
                log.exception("CTI timer failed")

    def _overflow(self, now: float) -> None:
        """The engine decides, Asterisk enforces: callers past their queue's overflow
        threshold (or in a queue nobody is logged into) are redirected to
        ``transfer,<overflow queue>,1`` (asterisk-config/extensions.conf ``[transfer] _[a-z].``)."""
        for call, target, why in self.state.overflow_due(now):
            leg = call.caller_leg
            if leg is None or leg.ended_at is not None:
                continue
            call.overflowed_to = target
            call.log(now, "overflow", from_queue=call.queue, to_queue=target, why=why)
            self._spawn(self._redirect_overflow(call.id, leg.channel, target), f"cti-overflow-{call.id}")

    async def _redirect_overflow(self, call_id: str, channel: str, target: str) -> None:
        try:
            await self._ami.send(act.redirect(channel, self.transfer_context, target))
        except Exception as exc:
            log.warning("overflow of %s to %s failed: %s", call_id, target, exc)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            try:
                self.publish_queue_stats()
            except Exception:
                log.exception("queue stats failed")

    def publish_queue_stats(self) -> int:
        now = self._clock()
        return self.notifier.queue_stats(self.state.all_queue_stats(now), now)

    # ---------------------------------------------------------- events
    def handle_event(self, event: ev.AmiEvent) -> None:
        """The AMI client's ``on_event``: synchronous and fast."""
        now = self._clock()
        self.events_handled += 1
        changes = self.state.apply(event, now)
        if changes:
            self._dispatch(changes, now)
        if isinstance(event, ev.OriginateResponse) and event.response != "Success":
            self._originate_failed(event)
        elif isinstance(event, ev.Hangup) and event.chan.channel in self._parked:
            self._release_parked_peer(event.chan.channel)

    def _release_parked_peer(self, gone: str) -> None:
        """One leg of an on-hold call hung up. On hold, the legs sit apart in ``[hold]``
        (customer: music on hold; agent: ``Wait(3600)``) and nothing links them any more,
        so Asterisk would keep the other side on a dead line. Hang it up."""
        call_id, other = self._parked.pop(gone)
        self._parked.pop(other, None)
        self._spawn(self._hangup_quietly(other, call_id), f"cti-release-{call_id}")

    async def _hangup_quietly(self, channel: str, call_id: str) -> None:
        try:
            await self._ami.send(act.hangup(channel))
        except Exception as exc:  # already gone is fine; anything else is logged
            log.info("release of parked agent leg %s (call %s): %s", channel, call_id, exc)

    def _dispatch(self, changes: list[Change], now: float) -> None:
        for ch in changes:
            kind = ch.kind
            if kind == "call.ringing":
                call = self.state.calls.get(ch.call_id or "")
                if call is not None and ch.agent_id:
                    self.notifier.call_ringing(ch.agent_id, self.pop(call, ch.agent_id, now))
                    if call.id not in self._pop_cache and call.id not in self._preloads:
                        self._start_preload(call.id)
            elif kind == "call.queued":
                self._start_preload(ch.call_id or "")
            elif kind == "call.created":
                self._on_call_created(ch.call_id or "")
            elif kind == "call.answered":
                call = self.state.calls.get(ch.call_id or "")
                if call is not None:
                    self.notifier.call_answered(ch.agent_id, self.pop(call, ch.agent_id, now))
            elif kind == "call.missed":
                if ch.agent_id:
                    self.notifier.call_missed(
                        ch.agent_id, {"call_id": ch.call_id, "agent_id": ch.agent_id, "queue": ch.queue, **(ch.data or {})}
                    )
            elif kind == "call.transferred":
                call = self.state.calls.get(ch.call_id or "")
                if call is not None:
                    data = ch.data or {}
                    pop = self.pop(call, call.agent_id, now)
                    pop["transfer"] = {k: v for k, v in data.items() if k != "at"}
                    # the transferring agent (``by``), the agent who has the call now, the target
                    audience = {call.agent_id or "", data.get("to_agent") or "", data.get("by") or ""}
                    self.notifier.call_transferred(audience, pop)
            elif kind in ("call.updated", "call.held", "call.unheld"):
                call = self.state.calls.get(ch.call_id or "")
                if call is not None and call.agent_id:
                    self.notifier.call_updated(call.agent_id, self.pop(call, call.agent_id, now))
            elif kind == "call.ended":
                call = self.state.ended.get(ch.call_id or "")
                if call is not None:
                    self._on_call_ended(call, now)
            elif kind == "agent.updated":
                agent = self.state.agents.get(ch.agent_id or "")
                if agent is not None:
                    self.notifier.agent_status(agent.to_dict())
                    if (ch.data or {}).get("reason") == "wrapup_done":
                        task = self._spawn(
                            self._after_wrapup(agent.id, (ch.data or {}).get("call_id")), f"cti-ready-{agent.id}"
                        )
                        self._after_wrapup_tasks[agent.id] = task
                        task.add_done_callback(
                            lambda t, aid=agent.id: self._after_wrapup_tasks.pop(aid, None)
                            if self._after_wrapup_tasks.get(aid) is t
                            else None
                        )
            elif kind == "agent.wrapup":
                if ch.agent_id:
                    self._wrapup_start_tasks[ch.agent_id] = self._spawn(
                        self._start_wrapup(ch.agent_id, ch.call_id, ch.queue), f"cti-wrapup-{ch.agent_id}"
                    )

    # ------------------------------------------------------------- pops
    def pop(self, call: Call, agent_id: str | None, now: float | None = None) -> dict[str, Any]:
        """The screen-pop payload: only reads memory (state + preload cache)."""
        now = now if now is not None else self._clock()
        cache = self._pop_cache.get(call.id) or {}
        waited = None
        if call.queued_at is not None:
            waited = max(0, int((call.answered_at or call.ended_at or now) - call.queued_at))
        return {
            "call_id": call.id,
            "direction": call.direction,
            "origin": call.origin,
            "caller_num": call.caller_num,
            "caller_name": call.caller_name,
            "dialed": call.dialed,
            "status": call.status,
            "queue": call.queue,
            "priority": call.priority,
            "waited": waited,
            "agent_id": agent_id,
            "customer": cache.get("customer", call.customer),
            "ivr": cache.get("ivr", call.ivr_context),
            "previous_interactions": cache.get("previous", []),
            "recording": call.recording,
            "on_hold": call.on_hold,
            "on_hold_seconds": round(call.on_hold_seconds, 3),
            "transfers": list(call.transfers),
            "outcome": call.outcome,
            "end_cause": call.end_cause,
            "end_cause_txt": call.end_cause_txt,
            "talk_time": call.talk_time,
            "disposition": call.disposition,
            "sent_at": now,
        }

    def _start_preload(self, call_id: str) -> None:
        call = self.state.calls.get(call_id)
        if call is None:
            return
        prev = self._preloads.get(call_id)
        if prev is not None and not prev.done():
            prev.cancel()
        task = asyncio.get_running_loop().create_task(self._preload(call_id), name=f"cti-preload-{call_id}")
        self._preloads[call_id] = task

        def done(t: asyncio.Task[None], cid: str = call_id) -> None:
            if self._preloads.get(cid) is t:
                del self._preloads[cid]
            if not t.cancelled() and t.exception() is not None:
                log.error("preload of %s failed", cid, exc_info=t.exception())

        task.add_done_callback(done)

    async def _preload(self, call_id: str) -> None:
        call = self.state.calls.get(call_id)
        if call is None:
            return
        phone = call.caller_num
        caller = call.caller_leg
        ivr_ctx = await self._ivr_context(caller.uniqueid if caller else call.id)
        if ivr_ctx is None and caller is not None and caller.uniqueid != call.id:
            ivr_ctx = await self._ivr_context(call.id)
        customer: dict[str, Any] | None = call.customer
        previous: list[dict[str, Any]] = []
        if phone:
            if customer is None:
                customer = await self.lookup_customer(phone)
            try:
                previous = await asyncio.wait_for(self.repository.previous_calls(phone, limit=5, exclude=call_id), self.crm_timeout)
            except (asyncio.TimeoutError, Exception):
                log.warning("previous calls of %s not loaded", phone)
        entry = {"customer": customer, "ivr": ivr_ctx, "previous": previous}
        live = self.state.calls.get(call_id)
        if live is None:
            return
        self._pop_cache[call_id] = entry
        live.customer = customer
        live.ivr_context = ivr_ctx
        queued = ivr_ctx.get("queue") if isinstance(ivr_ctx, dict) else None
        if isinstance(queued, dict) and isinstance(queued.get("priority"), int):
            live.priority = queued["priority"]  # what the router decided for this caller
        # the desk may already show a pop without the enrichment: update it
        targets = set(live.ringing_agents)
        if live.agent_id:
            targets.add(live.agent_id)
        for agent_id in targets:
            self.notifier.call_updated(agent_id, self.pop(live, agent_id))

    async def _ivr_context(self, uniqueid: str) -> dict[str, Any] | None:
        if self._ivr is None:
            return None
        try:
            res = self._ivr.context_for(uniqueid)
            if inspect.isawaitable(res):
                res = await asyncio.wait_for(res, self.crm_timeout)
            return dict(res) if res else None
        except Exception:
            log.exception("IVR context for %s unavailable", uniqueid)
            return None

    async def lookup_customer(self, phone: str) -> dict[str, Any] | None:
        """CRM lookup with a short cache (the router and the preload share it)."""
        now = self._clock()
        hit = self._crm_cache.get(phone)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            record = await asyncio.wait_for(self.crm.lookup(phone), self.crm_timeout)
        except asyncio.TimeoutError:
            log.warning("CRM lookup for %s timed out", phone)
            return None
        except Exception:
            log.exception("CRM lookup for %s failed", phone)
            return None
        self._crm_cache[phone] = (now + self.crm_cache_seconds, record)
        if len(self._crm_cache) > 10_000:
            for k in [k for k, (exp, _) in self._crm_cache.items() if exp <= now]:
                self._crm_cache.pop(k, None)
        return record

    async def _count_recent_calls(self, phone: str, hours: int) -> int:
        return await self.repository.count_calls_since(phone, repo_mod.since_hours(hours, self._clock()))

    def _on_call_created(self, call_id: str) -> None:
        call = self.state.calls.get(call_id)
        if call is None or call.direction != "outbound" or not call.agent_id:
            return
        pending = self._pending_clicks.pop(call.agent_id, None)
        if pending is None:
            return
        call.origin = pending.get("origin", "click-to-call")
        call.customer = pending.get("customer")
        call.caller_num = pending.get("number") or call.caller_num
        if pending.get("customer") and pending["customer"].get("name"):
            call.caller_name = pending["customer"]["name"]
        self._pop_cache[call.id] = {"customer": pending.get("customer"), "ivr": None, "previous": pending.get("previous", [])}
        call.log(self._clock(), "click_to_call", number=pending.get("number"), callback_id=pending.get("callback_id"))
        if pending.get("callback_id"):
            self._spawn(
                self.repository.mark_callback(pending["callback_id"], "dialing", dial_call_id=call.id), "cti-callback-mark"
            )

    def _on_call_ended(self, call: Call, now: float) -> None:
        cache = self._pop_cache.pop(call.id, None)
        if cache is not None:
            call.customer = cache.get("customer", call.customer)
            call.ivr_context = cache.get("ivr", call.ivr_context)
        task = self._preloads.pop(call.id, None)
        if task is not None:
            task.cancel()
        # every agent who handled it: the last one and those who transferred it on
        agents = {a for a in [call.agent_id, *(t.get("by") for t in call.transfers)] if a}
        self.notifier.call_ended(agents, self.pop(call, call.agent_id, now) | {"previous_interactions": (cache or {}).get("previous", [])})
        task = self._spawn(self._persist(call), f"cti-persist-{call.id}")
        self._persisting[call.id] = task
        task.add_done_callback(lambda t, cid=call.id: self._persisting.pop(cid, None) if self._persisting.get(cid) is t else None)

    async def _persist(self, call: Call) -> None:
        # a short call may end before its preload ran: complete the record now
        if call.customer is None and call.caller_num:
            call.customer = await self.lookup_customer(call.caller_num)
        if call.ivr_context is None and call.direction == "inbound":
            caller = call.caller_leg
            call.ivr_context = await self._ivr_context(caller.uniqueid if caller else call.id)
        for attempt in range(3):
            try:
                await self.repository.save_call(call)
                if call.customer and isinstance(call.customer.get("id"), int) and call.caller_num:
                    self._crm_cache.pop(call.caller_num, None)  # previous calls changed
                return
            except Exception:
                log.exception("persisting call %s failed (attempt %d)", call.id, attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        self.persist_failures += 1

    def _originate_failed(self, e: ev.OriginateResponse) -> None:
        agent_id = self.state.agent_for_channel(e.channel) or next(
            (a.id for a in self._agents.values() if interface_key(a.interface) == channel_key(e.channel)), None
        )
        if agent_id is None:
            return
        pending = self._pending_clicks.pop(agent_id, None) or {}
        self.notifier.call_failed(
            agent_id, {"agent_id": agent_id, "number": pending.get("number") or e.exten, "reason": f"originate failed (cause {e.reason})"}
        )
        if pending.get("callback_id"):
            self._spawn(self.repository.mark_callback(pending["callback_id"], "taken"), "cti-callback-mark")

    # ---------------------------------------------------------- AMI calls
    async def _send(self, action: Action, *, missing: str = "no such call") -> AmiResponse:
        try:
            return await self._ami.send(action)
        except AmiNotConnected as exc:
            raise AmiUnavailable(f"Asterisk is not connected: {exc}") from None
        except AmiTimeout as exc:
            raise AmiFailed(f"Asterisk did not answer {action.name}: {exc}") from None
        except AmiActionError as exc:
            if any(s in exc.message.lower() for s in _NO_CHANNEL):
                raise NotFound(f"{missing} ({exc.message})") from None
            raise AmiFailed(f"Asterisk refused {action.name}: {exc.message}") from None

    # ------------------------------------------------------------ resync
    async def resync(self, ami: AmiPort | None = None) -> dict[str, Any]:
        """The AMI ``on_connect`` hook: rebuild the state from CoreShowChannels,
        QueueStatus and QueueSummary, re-add logged-in agents Asterisk lost,
        and tell every desk where it stands."""
        ami = ami or self._ami
        channels = await ami.send(act.core_show_channels())
        queues = await ami.send(act.queue_status())
        summary = await ami.send(act.queue_summary())
        await self.reload_directory()
        now = self._clock()
        before_calls = set(self.state.calls)
        changes = self.state.rebuild([*channels.events, *queues.events, *summary.events], now)
        self._dispatch(changes, now)
        readded: list[str] = []
        for rec in self._agents.values():
            if not rec.logged_in:
                continue
            live = self.state.agents.get(rec.id)
            for queue, penalty in rec.skills.items():
                if live is not None and queue in live.queues:
                    if live.paused != rec.paused and not (rec.id in self._wrapup_paused):
                        await self._try(ami, act.queue_pause(rec.interface, rec.paused, queue=queue, reason=rec.pause_reason))
                    continue
                ok = await self._try(
                    ami,
                    act.queue_add(
                        queue,
                        rec.interface,
                        member_name=rec.name,
                        penalty=penalty,
                        paused=rec.paused,
                        reason=rec.pause_reason if rec.paused else None,
                    ),
                )
                if ok:
                    # Asterisk confirmed the QueueAdd; its QueueMemberAdded event is held until
                    # this resync returns, so apply the confirmed membership now: the desks are
                    # told below where they really stand (the held event repeats it harmlessly).
                    self._dispatch(self.state.apply(_confirmed_member(queue, rec, penalty, now), now), now)
                    if rec.id not in readded:
                        readded.append(rec.id)
        for call in self.state.calls.values():
            if call.id not in before_calls and call.queue and call.id not in self._pop_cache:
                self._start_preload(call.id)
        for agent in self.state.agents.values():
            call = self.state.call_for_agent(agent.id)
            self.notifier.agent_resync(
                agent.id, {"agent": agent.to_dict(), "call": self.pop(call, agent.id, now) if call else None}
            )
        lost = sum(1 for c in changes if c.kind == "call.ended")
        self.resyncs += 1
        self.last_resync = now
        report = {"at": now, "calls": len(self.state.calls), "agents_readded": readded, "calls_lost": lost}
        self.notifier.resynced(report)
        log.info("CTI resynced: %d live calls, %d agents re-added, %d calls lost", len(self.state.calls), len(readded), lost)
        return report

    async def _try(self, ami: AmiPort, action: Action) -> bool:
        try:
            await ami.send(action)
            return True
        except AmiActionError as exc:
            if "already there" in exc.message.lower():
                return False
            log.warning("%s failed during resync: %s", action.name, exc.message)
            return False

    # ------------------------------------------------------------ agents
    def _record(self, agent_id: str) -> AgentRecord:
        rec = self._agents.get(agent_id)
        if rec is None:
            raise NotFound(f"no such agent: {agent_id}")
        return rec

    def agent_view(self, agent_id: str) -> dict[str, Any]:
        rec = self._record(agent_id)
        live = self.state.agents.get(agent_id)
        out = rec.to_dict()
        out["state"] = live.to_dict() if live else None
        out["status"] = live.status if live else "logged_out"
        return out

    def list_agents(self) -> list[dict[str, Any]]:
        return [self.agent_view(a) for a in sorted(self._agents)]

    async def create_agent(self, **fields: Any) -> dict[str, Any]:
        if fields.get("role", "agent") not in ("agent", "supervisor", "admin"):
            raise Invalid("role must be agent, supervisor or admin")
        try:
            rec = await self.repository.create_agent(
                fields["id"],
                fields["name"],
                fields["interface"],
                extension=fields.get("extension"),
                role=fields.get("role", "agent"),
                skills=fields.get("skills") or {},
                pin=fields.get("pin"),
            )
        except Duplicate as exc:
            raise Conflict(str(exc)) from None
        self._agents[rec.id] = rec
        self.state.register_agent(rec.id, rec.interface, rec.name, rec.extension)
        return self.agent_view(rec.id)

    async def update_agent(self, agent_id: str, **fields: Any) -> dict[str, Any]:
        self._record(agent_id)
        try:
            rec = await self.repository.update_agent(agent_id, **fields)
        except Duplicate as exc:
            raise Conflict(str(exc)) from None
        if rec is None:
            raise NotFound(f"no such agent: {agent_id}")
        self._agents[rec.id] = rec
        self.state.register_agent(rec.id, rec.interface, rec.name, rec.extension)
        return self.agent_view(rec.id)

    async def delete_agent(self, agent_id: str) -> None:
        rec = self._record(agent_id)
        live = self.state.agents.get(agent_id)
        if rec.logged_in or (live is not None and live.logged_in):
            raise Conflict("log the agent out first")
        await self.repository.delete_agent(agent_id)
        self._agents.pop(agent_id, None)
        self.state.unregister_agent(agent_id)

    async def authenticate_agent(self, agent_id: str, pin: str) -> str:
        rec = await self.repository.verify_pin(agent_id, pin)
        if rec is None:
            raise Forbidden("bad agent id or PIN")
        return self.authenticator.issue(rec.id, rec.role if rec.role in ("agent", "supervisor", "admin") else "agent")

    async def login(self, agent_id: str, queues: list[str] | None = None, *, by: str | None = None) -> dict[str, Any]:
        # check
        rec = self._record(agent_id)
        wanted = list(queues) if queues else list(rec.skills)
        if not wanted:
            raise Invalid(f"agent {agent_id} has no queue skills")
        unknown = [q for q in wanted if q not in rec.skills]
        if unknown:
            raise Invalid(f"agent {agent_id} has no skill for {', '.join(unknown)}")
        live = self.state.agents.get(agent_id)
        missing = [q for q in wanted if live is None or q not in live.queues]
        if not missing and rec.logged_in:
            raise Conflict(f"agent {agent_id} is already logged in")
        # act
        for q in missing:
            try:
                await self._ami.send(act.queue_add(q, rec.interface, member_name=rec.name, penalty=rec.skills[q], paused=False))
            except AmiActionError as exc:
                if "already there" not in exc.message.lower():
                    raise AmiFailed(f"QueueAdd {q}: {exc.message}") from None
            except AmiNotConnected as exc:
                raise AmiUnavailable(f"Asterisk is not connected: {exc}") from None
            except AmiTimeout as exc:
                raise AmiFailed(f"QueueAdd {q}: {exc}") from None
        await self.repository.set_agent_state(agent_id, logged_in=True, paused=False, pause_reason=None)
        rec.logged_in, rec.paused, rec.pause_reason = True, False, None
        for q in missing:
            await self.repository.add_agent_event(agent_id, "login", queue=q, by=by)
        return self.agent_view(agent_id)

    async def logout(self, agent_id: str, *, force: bool = False, by: str | None = None) -> dict[str, Any]:
        rec = self._record(agent_id)
        live = self.state.agents.get(agent_id)
        queues = set(live.queues) if live else set()
        if not queues and not rec.logged_in:
            raise Conflict(f"agent {agent_id} is not logged in")
        if not force and live is not None and (live.current_call or live.ringing_call):
            raise Conflict(f"agent {agent_id} is on a call")
        for q in sorted(queues | (set(rec.skills) if not queues else set())):
            try:
                await self._ami.send(act.queue_remove(q, rec.interface))
            except AmiActionError as exc:
                if "not there" not in exc.message.lower() and "unable to remove" not in exc.message.lower():
                    raise AmiFailed(f"QueueRemove {q}: {exc.message}") from None
            except AmiNotConnected as exc:
                raise AmiUnavailable(f"Asterisk is not connected: {exc}") from None
            except AmiTimeout as exc:
                raise AmiFailed(f"QueueRemove {q}: {exc}") from None
        await self.repository.set_agent_state(agent_id, logged_in=False, paused=False, pause_reason=None)
        rec.logged_in, rec.paused, rec.pause_reason = False, False, None
        self._wrapup_paused.discard(agent_id)
        await self.repository.add_agent_event(agent_id, "logout", by=by, reason="forced" if force else None)
        return self.agent_view(agent_id)

    async def pause(self, agent_id: str, reason: str, *, by: str | None = None) -> dict[str, Any]:
        rec = self._record(agent_id)
        if reason not in self.pause_reasons:
            raise Invalid(f"unknown pause reason {reason!r}; allowed: {', '.join(self.pause_reasons)}")
        live = self.state.agents.get(agent_id)
        if live is None or not live.logged_in:
            raise Conflict(f"agent {agent_id} is not logged in")
        await self._send(act.queue_pause(rec.interface, True, reason=reason), missing="agent is not a queue member")
        await self.repository.set_agent_state(agent_id, paused=True, pause_reason=reason)
        rec.paused, rec.pause_reason = True, reason
        self._wrapup_paused.discard(agent_id)
        await self.repository.add_agent_event(agent_id, "pause", reason=reason, by=by)
        return self.agent_view(agent_id)

    async def unpause(self, agent_id: str, *, by: str | None = None) -> dict[str, Any]:
        rec = self._record(agent_id)
        live = self.state.agents.get(agent_id)
        if live is None or not live.logged_in:
            raise Conflict(f"agent {agent_id} is not logged in")
        if not live.paused and not rec.paused:
            raise Conflict(f"agent {agent_id} is not paused")
        await self._send(act.queue_pause(rec.interface, False), missing="agent is not a queue member")
        await self.repository.set_agent_state(agent_id, paused=False, pause_reason=None)
        rec.paused, rec.pause_reason = False, None
        self._wrapup_paused.discard(agent_id)
        await self.repository.add_agent_event(agent_id, "unpause", by=by)
        self._dispatch(self.state.end_wrapup(agent_id, self._clock()), self._clock())
        return self.agent_view(agent_id)

    async def ready(self, agent_id: str, *, by: str | None = None) -> dict[str, Any]:
        """End the wrap-up now (the agent is done with the after-call work)."""
        self._record(agent_id)
        live = self.state.agents.get(agent_id)
        if live is None or live.wrapup_until is None:
            raise Conflict(f"agent {agent_id} is not in wrap-up")
        self._dispatch(self.state.end_wrapup(agent_id, self._clock()), self._clock())
        task = self._after_wrapup_tasks.get(agent_id)
        if task is not None:
            await asyncio.wait({task}, timeout=10)  # the unpause in Asterisk is done (or logged) before we answer
        return self.agent_view(agent_id)

    async def set_pause_reason(self, code: str, label: str, active: bool = True) -> list[str]:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", code) or code == "wrapup":
            raise Invalid("pause reason codes are 1-64 of A-Z a-z 0-9 _ . - (and not 'wrapup')")
        await self.repository.upsert_pause_reason(code, label, active)
        if active and code not in self.pause_reasons:
            self.pause_reasons.append(code)
        elif not active and code in self.pause_reasons:
            self.pause_reasons.remove(code)
        return list(self.pause_reasons)

    async def _start_wrapup(self, agent_id: str, call_id: str | None, queue: str | None) -> None:
        """Asterisk enforces the wrap-up: the member is paused (reason ``wrapup``) until it ends."""
        rec = self._agents.get(agent_id)
        live = self.state.agents.get(agent_id)
        if rec is not None:
            await self.repository.add_agent_event(agent_id, "wrapup", queue=queue, call_id=call_id)
        if rec is None or live is None or live.wrapup_until is None or rec.paused or not live.logged_in:
            return
        try:
            await self._ami.send(act.queue_pause(rec.interface, True, reason="wrapup"))
            self._wrapup_paused.add(agent_id)
        except Exception as exc:
            log.warning("wrap-up pause of %s failed: %s", agent_id, exc)

    async def _after_wrapup(self, agent_id: str, call_id: str | None) -> None:
        rec = self._agents.get(agent_id)
        if rec is None:
            return
        start = self._wrapup_start_tasks.pop(agent_id, None)
        if start is not None and not start.done():
            await asyncio.wait({start})  # the wrap-up pause must be in place before it is lifted
        await self.repository.add_agent_event(agent_id, "ready", call_id=call_id)
        if agent_id not in self._wrapup_paused or rec.paused:
            return
        self._wrapup_paused.discard(agent_id)
        try:
            await self._ami.send(act.queue_pause(rec.interface, False))
        except Exception as exc:
            log.warning("end-of-wrap-up unpause of %s failed: %s", agent_id, exc)

    def current_call(self, agent_id: str) -> dict[str, Any] | None:
        self._record(agent_id)
        call = self.state.call_for_agent(agent_id)
        return self.pop(call, agent_id) if call else None

    async def queue_settings_update(self, qs: QueueSettings) -> dict[str, Any]:
        await self.repository.save_queue_settings(qs)
        self.state.set_queue_settings(qs)
        return dict(qs.__dict__)

    def queue_views(self) -> list[dict[str, Any]]:
        return self.state.all_queue_stats(self._clock())

    # ------------------------------------------------------ call control
    def _call(self, call_id: str) -> Call:
        call = self.state.calls.get(call_id)
        if call is None:
            if call_id in self.state.ended:
                raise Conflict(f"call {call_id} has ended")
            raise NotFound(f"no such call: {call_id}")
        return call

    @staticmethod
    def _check_party(call: Call, actor: Principal) -> None:
        if actor.is_supervisor:
            return
        if actor.agent_id and (call.agent_id == actor.agent_id or actor.agent_id in call.ringing_agents):
            return
        raise Forbidden("not your call")

    def list_calls(self, actor: Principal) -> list[dict[str, Any]]:
        now = self._clock()
        calls = self.state.calls.values()
        if not actor.is_supervisor:
            calls = [c for c in calls if c.agent_id == actor.agent_id or actor.agent_id in c.ringing_agents]
        return [c.to_dict(now) for c in calls]

    async def get_call(self, call_id: str, actor: Principal) -> dict[str, Any]:
        call = self.state.get_call(call_id)
        if call is not None:
            self._check_party(call, actor)
            out = call.to_dict(self._clock())
            out["pop"] = self.pop(call, call.agent_id)
            return out
        stored = await self.repository.get_call(call_id)
        if stored is None:
            raise NotFound(f"no such call: {call_id}")
        if not actor.is_supervisor and stored.get("agent_id") != actor.agent_id:
            raise Forbidden("not your call")
        return stored

    async def hangup(self, call_id: str, actor: Principal) -> None:
        call = self._call(call_id)
        self._check_party(call, actor)
        channel = call.customer_channel or call.live_agent_channel()
        if channel is None:
            raise Conflict("the call has no live channel to hang up")
        await self._send(act.hangup(channel))

    def _target_exten(self, kind: str, target: str) -> tuple[str, str | None]:
        if kind == "agent":
            rec = self._record(target)
            live = self.state.agents.get(target)
            if live is None or not live.logged_in:
                raise Conflict(f"agent {target} is not logged in")
            if live.current_call:
                raise Conflict(f"agent {target} is on a call")
            return (rec.extension or rec.id), rec.id
        if kind == "queue":
            # queue names start with a lowercase letter: the [transfer] context tells queues
            # (_[a-z].), agent extensions (_1XXX) and outside numbers (_0X.) apart by pattern
            if not _QUEUE_NAME.fullmatch(target):
                raise Invalid("bad queue name (lowercase letter first, then a-z 0-9 _ -)")
            return target, None
        if kind == "number":
            if not _NUMBER.fullmatch(target):
                raise Invalid("bad phone number")
            return target, None
        raise Invalid("target type must be agent, queue or number")

    async def transfer(self, call_id: str, actor: Principal, kind: str, target: str) -> dict[str, Any]:
        """Blind transfer: the customer leg is redirected to ``transfer,<exten>,1``."""
        call = self._call(call_id)
        self._check_party(call, actor)
        if call.status != "talking":
            raise Conflict(f"call is {call.status}, not talking")
        exten, target_agent = self._target_exten(kind, target)
        channel = call.customer_channel
        if channel is None:
            raise Conflict("the customer has already left")
        await self._send(act.redirect(channel, self.transfer_context, exten))
        now = self._clock()
        info = {"type": "blind", "result": "Success", "to": f"{exten}@{self.transfer_context}", "by": actor.subject,
                "target_type": kind, "target": target, "at": now}
        if target_agent:
            info["to_agent"] = target_agent
        self._dispatch(self.state.record_transfer(call.id, info, now), now)
        return info

    async def atxfer(self, call_id: str, actor: Principal, kind: str, target: str) -> dict[str, Any]:
        call = self._call(call_id)
        self._check_party(call, actor)
        if call.status != "talking":
            raise Conflict(f"call is {call.status}, not talking")
        exten, _ = self._target_exten(kind, target)
        channel = call.live_agent_channel()
        if channel is None:
            raise Conflict("no agent leg to start an attended transfer from")
        await self._send(act.atxfer(channel, exten, self.transfer_context))
        return {"type": "attended", "to": f"{exten}@{self.transfer_context}", "status": "started"}

    async def hold(self, call_id: str, actor: Principal) -> None:
        call = self._call(call_id)
        self._check_party(call, actor)
        if call.status != "talking":
            raise Conflict(f"call is {call.status}, not talking")
        if call.on_hold:
            raise Conflict("call is already on hold")
        customer, agent = call.customer_channel, call.live_agent_channel()
        if customer is None or agent is None or customer == agent:
            raise Conflict("hold needs a live customer leg and agent leg")
        await self._send(act.redirect(customer, self.hold_context, "s", extra_channel=agent, extra_exten="agent"))
        self._parked[customer] = (call.id, agent)
        self._parked[agent] = (call.id, customer)
        self._dispatch(self.state.set_hold(call.id, True, self._clock()), self._clock())

    async def unhold(self, call_id: str, actor: Principal) -> None:
        call = self._call(call_id)
        self._check_party(call, actor)
        if not call.on_hold:
            raise Conflict("call is not on hold")
        customer, agent = call.customer_channel, call.live_agent_channel()
        if customer is None or agent is None:
            raise Conflict("a leg of the call has gone")
        await self._send(_bridge(agent, customer))
        self._parked.pop(customer, None)
        self._parked.pop(agent, None)
        self._dispatch(self.state.set_hold(call.id, False, self._clock()), self._clock())

    async def dtmf(self, call_id: str, actor: Principal, digits: str) -> None:
        if not _DTMF.fullmatch(digits or ""):
            raise Invalid("digits must be 1-32 of 0-9 * # A-D")
        call = self._call(call_id)
        self._check_party(call, actor)
        channel = call.customer_channel
        if channel is None:
            raise Conflict("the customer has already left")
        for d in digits:
            await self._send(act.play_dtmf(channel, d))

    async def set_disposition(self, call_id: str, actor: Principal, disposition: str | None, notes: str | None) -> dict[str, Any]:
        if disposition is None and notes is None:
            raise Invalid("give a disposition or notes")
        call = self.state.get_call(call_id)
        if call is not None:
            self._check_party(call, actor)
            if disposition is not None:
                call.disposition = disposition
            if notes is not None:
                call.notes = notes
            call.log(self._clock(), "disposition", disposition=disposition, by=actor.subject)
        else:
            stored = await self.repository.get_call(call_id)
            if stored is None:
                raise NotFound(f"no such call: {call_id}")
            if not actor.is_supervisor and stored.get("agent_id") != actor.agent_id:
                raise Forbidden("not your call")
        if call is None or call.status == "ended":
            task = self._persisting.get(call_id)
            if task is not None:  # the ended call's record must land first
                await asyncio.wait({task}, timeout=10)
            if not await self.repository.set_disposition(call_id, disposition, notes):
                raise NotFound(f"no such call: {call_id}")
        customer_id = ((call.customer if call else None) or {}).get("id")
        if notes and isinstance(customer_id, int):
            await self.repository.add_customer_note(customer_id, notes, author=actor.subject, call_id=call_id)
        return {"call_id": call_id, "disposition": disposition, "notes": notes}

    async def click_to_call(
        self,
        agent_id: str,
        number: str,
        *,
        customer_id: int | None = None,
        callback_id: str | None = None,
        origin: str = "click-to-call",
    ) -> dict[str, Any]:
        """Originate the agent's phone first, then (in ``outbound_context``) the customer."""
        rec = self._record(agent_id)
        if not _NUMBER.fullmatch(number or ""):
            raise Invalid("bad phone number")
        live = self.state.agents.get(agent_id)
        if live is not None and (live.current_call or live.ringing_call):
            raise Conflict(f"agent {agent_id} is on a call")
        if agent_id in self._pending_clicks:
            raise Conflict(f"agent {agent_id} already has a call being placed")
        customer = await self.repository.get_customer(customer_id) if customer_id is not None else None
        if customer_id is not None and customer is None:
            raise NotFound(f"no such customer: {customer_id}")
        if customer is None:
            customer = await self.lookup_customer(number)
        previous = await self.repository.previous_calls(number, limit=5)
        name = (customer or {}).get("name") or number
        variables = {"CALLCORE_ORIGIN": origin, "CALLCORE_AGENT": agent_id}
        if customer and customer.get("id") is not None:
            variables["CALLCORE_CUSTOMER_ID"] = customer["id"]
        if callback_id:
            variables["CALLCORE_CALLBACK_ID"] = callback_id
        action = act.originate(
            _dial_target(rec.interface),
            context=self.outbound_context,
            exten=number,
            caller_id=f'"{_clean(name)}" <{number}>',
            timeout_ms=30000,
            variables=variables,
            async_=True,
        )
        self._pending_clicks[agent_id] = {
            "number": number, "customer": customer, "previous": previous, "callback_id": callback_id, "origin": origin,
        }
        try:
            await self._send(action, missing="agent device not found")
        except CtiError:
            self._pending_clicks.pop(agent_id, None)
            raise
        return {"agent_id": agent_id, "number": number, "customer": customer, "status": "dialing"}

    # -------------------------------------------------------- supervisor
    async def spy(self, actor: Principal, agent_id: str, mode: str, interface: str | None = None) -> dict[str, Any]:
        options = {"listen": "q", "whisper": "qw", "barge": "qB"}
        if mode not in options:
            raise Invalid("mode must be listen, whisper or barge")
        if not actor.is_supervisor:
            raise Forbidden("supervisors only")
        self._record(agent_id)
        if interface is None:
            sup = self._agents.get(actor.subject)
            if sup is None:
                raise Invalid("give the supervisor's phone interface (no agent record for this supervisor)")
            interface = sup.interface
        call = self.state.call_for_agent(agent_id)
        if call is None or call.agent_id != agent_id:
            raise Conflict(f"agent {agent_id} is not on a call")
        channel = call.live_agent_channel()
        if channel is None:
            raise Conflict(f"agent {agent_id} has no live channel")
        await self._send(
            act.originate(
                _dial_target(interface),
                application="ChanSpy",
                data=f"{channel},{options[mode]}",
                caller_id=f'"{mode} {agent_id}" <{agent_id}>',
                variables={"CALLCORE_ORIGIN": f"supervisor-{mode}", "CALLCORE_SPY_AGENT": agent_id},
                async_=True,
            ),
            missing="supervisor device not found",
        )
        return {"agent_id": agent_id, "mode": mode, "call_id": call.id, "channel": channel}

    # --------------------------------------------------------- callbacks
    async def create_callback(self, request: CallbackRequest) -> str:
        """``ivr.ports.CallbackSink``: store the request; agents of the queue are told."""
        if not _NUMBER.fullmatch(request.number or ""):
            raise Invalid("bad callback number")
        cb = await self.repository.create_callback(
            call_id=request.call_uniqueid,
            caller_num=request.caller_num,
            number=request.number,
            queue=request.queue,
            requested_time=request.requested_time,
            context=dict(request.context),
        )
        self.notifier.callback_created(cb, self._queue_agents(request.queue))
        return cb["id"]

    def _queue_agents(self, queue: str) -> list[str]:
        return sorted(a for a, rec in self._agents.items() if queue in rec.skills)

    async def list_callbacks(self, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
        if actor.is_supervisor:
            return await self.repository.list_callbacks(status=status)
        rec = self._record(actor.agent_id or "")
        items = await self.repository.list_callbacks(status=status, queues=list(rec.skills))
        return [c for c in items if c["status"] == "open" or c["agent_id"] == rec.id]

    async def take_callback(self, actor: Principal, callback_id: str) -> dict[str, Any]:
        cb = await self.repository.get_callback(callback_id)
        if cb is None:
            raise NotFound(f"no such callback: {callback_id}")
        agent_id = actor.agent_id
        if agent_id is None:
            raise Forbidden("only agents take callbacks")
        rec = self._record(agent_id)
        if cb["queue"] not in rec.skills and not actor.is_supervisor:
            raise Forbidden(f"agent {agent_id} does not serve queue {cb['queue']}")
        taken = await self.repository.take_callback(callback_id, agent_id)
        if taken is None:
            raise Conflict("callback already taken")
        self.notifier.callback_taken(taken, self._queue_agents(taken["queue"]))
        return taken

    async def dial_callback(self, actor: Principal, callback_id: str) -> dict[str, Any]:
        cb = await self.repository.get_callback(callback_id)
        if cb is None:
            raise NotFound(f"no such callback: {callback_id}")
        if cb["agent_id"] != actor.agent_id or cb["status"] not in ("taken", "dialing"):
            raise Conflict("take the callback first")
        return await self.click_to_call(actor.agent_id or "", cb["number"], callback_id=callback_id, origin="callback")

    # ---------------------------------------------------------- customers
    async def customer_lookup(self, phone: str) -> dict[str, Any]:
        customer = await self.repository.find_customer_by_phone(phone)
        if customer is None:
            raise NotFound(f"no customer with phone {phone}")
        customer["previous_calls"] = await self.repository.previous_calls(phone, limit=10)
        return customer


def _clean(text: str) -> str:
    return str(text).replace('"', "").replace("<", "").replace(">", "").replace("\r", " ").replace("\n", " ")[:80]
