"""Call control: the calls an agent sees, hang-up, blind and attended transfer,
hold/unhold, DTMF and dispositions.

Preconditions (``_call``, ``_check_party``, ``_check_talking``, ``_target``) are
separate from the actions (one AMI action factory each, ``cti/ami/actions.py``);
after a successful action the state records what callcore did (transfer, hold)
and the change goes through the dispatcher like any AMI-driven one.

Hold parks the two legs apart in ``[hold]``; nothing links them in Asterisk any
more, so when one parked leg hangs up this service hangs up the other
(:meth:`on_event`, fed every AMI event by the CTI assembly).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from api.auth import Principal
from cti.ami import actions as act
from cti.ami import events as ev
from cti.ami.actions import Action
from cti.directory import AgentDirectory
from cti.dispatcher import ChangeDispatcher
from cti.errors import Conflict, Forbidden, Invalid, NotFound
from cti.pops import PopBuilder
from cti.ports import AmiPort, send
from cti.repository import CtiRepository
from cti.state import Call, CtiState
from cti.subscribers.persistence import CallPersistence
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")
_QUEUE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,79}")


def _bridge(channel1: str, channel2: str) -> Action:
    """``Bridge`` two channels (unhold). Not among cti.ami.actions' factories yet."""
    return Action.make("Bridge", Channel1=channel1, Channel2=channel2, Tone="no")


class CallControlService:
    def __init__(
        self,
        *,
        ami: AmiPort,
        repository: CtiRepository,
        state: CtiState,
        directory: AgentDirectory,
        dispatcher: ChangeDispatcher,
        pops: PopBuilder,
        persistence: CallPersistence,
        tasks: TaskOwner,
        clock: Callable[[], float],
        transfer_context: str = "transfer",
        hold_context: str = "hold",
    ) -> None:
        self._ami = ami
        self.repository = repository
        self.state = state
        self.directory = directory
        self._dispatcher = dispatcher
        self._pops = pops
        self._persistence = persistence
        self._tasks = tasks
        self._clock = clock
        self.transfer_context = transfer_context
        self.hold_context = hold_context
        self._parked: dict[str, tuple[str, str]] = {}  # leg of an on-hold call -> (call id, the other leg)

    # ---------------------------------------------------- preconditions
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

    def _party_call(self, call_id: str, actor: Principal, *, talking: bool = False) -> Call:
        call = self._call(call_id)
        self._check_party(call, actor)
        if talking and call.status != "talking":
            raise Conflict(f"call is {call.status}, not talking")
        return call

    def _target(self, kind: str, target: str) -> tuple[str, str | None]:
        if kind == "agent":
            rec = self.directory.record(target)
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
            if not NUMBER.fullmatch(target):
                raise Invalid("bad phone number")
            return target, None
        raise Invalid("target type must be agent, queue or number")

    # ------------------------------------------------------------ views
    def list_calls(self, actor: Principal) -> list[dict[str, Any]]:
        now = self._clock()
        calls = self.state.calls.values()
        if not actor.can("calls.read_all"):  # security (issue 11): the permission table decides
            calls = [c for c in calls if c.agent_id == actor.agent_id or actor.agent_id in c.ringing_agents]
        return [c.to_dict(now) for c in calls if actor.in_scope(c.queue) or c.agent_id == actor.agent_id]

    async def get_call(self, call_id: str, actor: Principal) -> dict[str, Any]:
        call = self.state.get_call(call_id)
        if call is not None:
            if not (actor.can("calls.read_all") and actor.in_scope(call.queue)):
                self._check_party(call, actor)
            out = call.to_dict(self._clock())
            out["pop"] = self._pops.pop(call, call.agent_id)
            return out
        stored = await self.repository.get_call(call_id)
        if stored is None:
            raise NotFound(f"no such call: {call_id}")
        mine = stored.get("agent_id") == actor.agent_id and actor.agent_id is not None
        if not mine and not (actor.can("calls.read_all") and actor.in_scope(stored.get("queue"))):
            raise Forbidden("not your call")
        return stored

    # ---------------------------------------------------------- actions
    async def hangup(self, call_id: str, actor: Principal) -> None:
        call = self._party_call(call_id, actor)
        channel = call.customer_channel or call.live_agent_channel()
        if channel is None:
            raise Conflict("the call has no live channel to hang up")
        await send(self._ami, act.hangup(channel))

    async def transfer(self, call_id: str, actor: Principal, kind: str, target: str) -> dict[str, Any]:
        """Blind transfer: the customer leg is redirected to ``transfer,<exten>,1``."""
        call = self._party_call(call_id, actor, talking=True)
        exten, target_agent = self._target(kind, target)
        channel = call.customer_channel
        if channel is None:
            raise Conflict("the customer has already left")
        await send(self._ami, act.redirect(channel, self.transfer_context, exten))
        now = self._clock()
        info = {"type": "blind", "result": "Success", "to": f"{exten}@{self.transfer_context}", "by": actor.subject,
                "target_type": kind, "target": target, "at": now}
        if target_agent:
            info["to_agent"] = target_agent
        self._dispatcher.dispatch(self.state.record_transfer(call.id, info, now), now)
        return info

    async def atxfer(self, call_id: str, actor: Principal, kind: str, target: str) -> dict[str, Any]:
        call = self._party_call(call_id, actor, talking=True)
        exten, _ = self._target(kind, target)
        channel = call.live_agent_channel()
        if channel is None:
            raise Conflict("no agent leg to start an attended transfer from")
        await send(self._ami, act.atxfer(channel, exten, self.transfer_context))
        return {"type": "attended", "to": f"{exten}@{self.transfer_context}", "status": "started"}

    async def hold(self, call_id: str, actor: Principal) -> None:
        call = self._party_call(call_id, actor, talking=True)
        if call.on_hold:
            raise Conflict("call is already on hold")
        customer, agent = call.customer_channel, call.live_agent_channel()
        if customer is None or agent is None or customer == agent:
            raise Conflict("hold needs a live customer leg and agent leg")
        await send(self._ami, act.redirect(customer, self.hold_context, "s", extra_channel=agent, extra_exten="agent"))
        self._parked[customer] = (call.id, agent)
        self._parked[agent] = (call.id, customer)
        self._dispatcher.dispatch(self.state.set_hold(call.id, True, self._clock()), self._clock())

    async def unhold(self, call_id: str, actor: Principal) -> None:
        call = self._party_call(call_id, actor)
        if not call.on_hold:
            raise Conflict("call is not on hold")
        customer, agent = call.customer_channel, call.live_agent_channel()
        if customer is None or agent is None:
            raise Conflict("a leg of the call has gone")
        await send(self._ami, _bridge(agent, customer))
        self._parked.pop(customer, None)
        self._parked.pop(agent, None)
        self._dispatcher.dispatch(self.state.set_hold(call.id, False, self._clock()), self._clock())

    async def dtmf(self, call_id: str, actor: Principal, digits: str) -> None:
        if not _DTMF.fullmatch(digits or ""):
            raise Invalid("digits must be 1-32 of 0-9 * # A-D")
        call = self._party_call(call_id, actor)
        channel = call.customer_channel
        if channel is None:
            raise Conflict("the customer has already left")
        for d in digits:
            await send(self._ami, act.play_dtmf(channel, d))

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
            await self._persistence.landed(call_id)  # the ended call's record must land first
            if not await self.repository.set_disposition(call_id, disposition, notes):
                raise NotFound(f"no such call: {call_id}")
        customer_id = ((call.customer if call else None) or {}).get("id")
        if notes and isinstance(customer_id, int):
            await self.repository.add_customer_note(customer_id, notes, author=actor.subject, call_id=call_id)
        return {"call_id": call_id, "disposition": disposition, "notes": notes}

    # ------------------------------------------------------ AMI events
    def on_event(self, event: ev.AmiEvent) -> None:
        if isinstance(event, ev.Hangup) and event.chan.channel in self._parked:
            self._release_parked_peer(event.chan.channel)

    def _release_parked_peer(self, gone: str) -> None:
        """One leg of an on-hold call hung up. On hold, the legs sit apart in ``[hold]``
        (customer: music on hold; agent: ``Wait(3600)``) and nothing links them any more,
        so Asterisk would keep the other side on a dead line. Hang it up."""
        call_id, other = self._parked.pop(gone)
        self._parked.pop(other, None)
        self._tasks.spawn(self._hangup_quietly(other, call_id), f"cti-release-{call_id}")

    async def _hangup_quietly(self, channel: str, call_id: str) -> None:
        try:
            await self._ami.send(act.hangup(channel))
        except Exception as exc:  # already gone is fine; anything else is logged
            log.info("release of parked agent leg %s (call %s): %s", channel, call_id, exc)
