"""Click-to-call (and callback dialling): originate the agent's phone first, then
(in ``outbound_context``) the customer. The details of the call being placed
wait in ``_pending`` until Asterisk creates it (``call.created``: this service is
also a subscriber, ``click-to-call``) or refuses it (a failed
``OriginateResponse``: :meth:`on_event`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from cti.ami import actions as act
from cti.ami import events as ev
from cti.customers import CustomerService
from cti.directory import AgentDirectory
from cti.errors import Conflict, CtiError, Invalid, NotFound
from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.ports import AmiPort, send
from cti.repository import CtiRepository
from cti.state import Change, CtiState, channel_key, interface_key
from cti.calls import NUMBER
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

KINDS = ("call.created",)


def dial_target(interface: str) -> str:
    """The Originate channel for a queue-member interface (``Local/1001@agents/n`` → ``Local/1001@agents``)."""
    return interface[:-2] if interface.endswith("/n") else interface


def clean_caller_name(text: str) -> str:
    return str(text).replace('"', "").replace("<", "").replace(">", "").replace("\r", " ").replace("\n", " ")[:80]


class OutboundService:
    def __init__(
        self,
        *,
        ami: AmiPort,
        repository: CtiRepository,
        state: CtiState,
        directory: AgentDirectory,
        customers: CustomerService,
        pops: PopBuilder,
        notifier: CtiNotifier,
        tasks: TaskOwner,
        clock: Callable[[], float],
        outbound_context: str = "outbound",
    ) -> None:
        self._ami = ami
        self.repository = repository
        self.state = state
        self.directory = directory
        self._customers = customers
        self._pops = pops
        self._notifier = notifier
        self._tasks = tasks
        self._clock = clock
        self.outbound_context = outbound_context
        self._pending: dict[str, dict[str, Any]] = {}  # agent id -> click-to-call details
        #: the recording policy (issue 13): ``(origin, number, agent_id) -> {CALLCORE_RECORD: 0|1, ...}``,
        #: set by the wiring to ``RecordingService.originate_variables``; ``[outbound]`` starts MixMonitor
        self.recording_variables: Callable[[str, str, str], dict[str, str]] | None = None

    def _check(self, agent_id: str, number: str) -> Any:
        rec = self.directory.record(agent_id)
        if not NUMBER.fullmatch(number or ""):
            raise Invalid("bad phone number")
        live = self.state.agents.get(agent_id)
        if live is not None and (live.current_call or live.ringing_call):
            raise Conflict(f"agent {agent_id} is on a call")
        if agent_id in self._pending:
            raise Conflict(f"agent {agent_id} already has a call being placed")
        return rec

    async def click_to_call(
        self,
        agent_id: str,
        number: str,
        *,
        customer_id: int | None = None,
        callback_id: str | None = None,
        origin: str = "click-to-call",
    ) -> dict[str, Any]:
        rec = self._check(agent_id, number)
        customer = await self.repository.get_customer(customer_id) if customer_id is not None else None
        if customer_id is not None and customer is None:
            raise NotFound(f"no such customer: {customer_id}")
        if customer is None:
            customer = await self._customers.lookup_customer(number)
        previous = await self._previous_calls(number)
        name = (customer or {}).get("name") or number
        variables = {"CALLCORE_ORIGIN": origin, "CALLCORE_AGENT": agent_id}
        if customer and customer.get("id") is not None:
            variables["CALLCORE_CUSTOMER_ID"] = customer["id"]
        if callback_id:
            variables["CALLCORE_CALLBACK_ID"] = callback_id
        if self.recording_variables is not None:
            try:
                variables.update(self.recording_variables(origin, number, agent_id))
            except Exception:  # noqa: BLE001 - the call is placed all the same (not recorded)
                log.exception("recording policy for click-to-call %s failed; not recorded", number)
        action = act.originate(
            dial_target(rec.interface),
            context=self.outbound_context,
            exten=number,
            caller_id=f'"{clean_caller_name(name)}" <{number}>',
            timeout_ms=30000,
            variables=variables,
            async_=True,
        )
        self._pending[agent_id] = {
            "number": number, "customer": customer, "previous": previous, "callback_id": callback_id, "origin": origin,
        }
        try:
            await send(self._ami, action, missing="agent device not found")
        except CtiError:
            self._pending.pop(agent_id, None)
            raise
        return {"agent_id": agent_id, "number": number, "customer": customer, "status": "dialing"}

    async def _previous_calls(self, number: str) -> list[dict[str, Any]]:
        """For the pop only: bounded, and never a reason not to place the call."""
        try:
            return await asyncio.wait_for(self.repository.previous_calls(number, limit=5), self._customers.timeout)
        except Exception as exc:  # noqa: BLE001
            log.warning("click-to-call %s: previous calls not loaded (%s)", number, exc.__class__.__name__)
            return []

    # ------------------------------------------------ subscriber: call.created
    def __call__(self, change: Change, now: float) -> None:
        call = self.state.calls.get(change.call_id or "")
        if call is None or call.direction != "outbound" or not call.agent_id:
            return
        pending = self._pending.pop(call.agent_id, None)
        if pending is None:
            return
        call.origin = pending.get("origin", "click-to-call")
        call.customer = pending.get("customer")
        call.caller_num = pending.get("number") or call.caller_num
        if pending.get("customer") and pending["customer"].get("name"):
            call.caller_name = pending["customer"]["name"]
        self._pops.store(call.id, {"customer": pending.get("customer"), "ivr": None, "previous": pending.get("previous", [])})
        call.log(self._clock(), "click_to_call", number=pending.get("number"), callback_id=pending.get("callback_id"))
        if pending.get("callback_id"):
            self._tasks.spawn(
                self.repository.mark_callback(pending["callback_id"], "dialing", dial_call_id=call.id), "cti-callback-mark"
            )

    # ------------------------------------------------------- AMI events
    def on_event(self, event: ev.AmiEvent) -> None:
        if isinstance(event, ev.OriginateResponse) and event.response != "Success":
            self._originate_failed(event)

    def _originate_failed(self, e: ev.OriginateResponse) -> None:
        agent_id = self.state.agent_for_channel(e.channel) or next(
            (a.id for a in self.directory.records() if interface_key(a.interface) == channel_key(e.channel)), None
        )
        if agent_id is None:
            return
        pending = self._pending.pop(agent_id, None) or {}
        self._notifier.call_failed(
            agent_id, {"agent_id": agent_id, "number": pending.get("number") or e.exten, "reason": f"originate failed (cause {e.reason})"}
        )
        if pending.get("callback_id"):
            self._tasks.spawn(self.repository.mark_callback(pending["callback_id"], "taken"), "cti-callback-mark")
