"""Supervision: listen, whisper and barge on an agent's call (``Originate
Application=ChanSpy`` on the supervisor's phone)."""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from auth import scope
from cti.ami import actions as act
from cti.directory import AgentDirectory
from cti.errors import Conflict, Forbidden, Invalid
from cti.outbound import dial_target
from cti.ports import AmiPort, send
from cti.state import CtiState

#: ChanSpy options: q quiet (no beep/name), E exit when the spied-on channel hangs up (without it
#: ChanSpy keeps scanning and the supervisor's channel stays up after the call: ami-chanspy-listen),
#: S exit at once when there is nothing to spy on; w whisper, B barge. Same as [spy-*] in
#: asterisk-config/extensions.conf.
SPY_OPTIONS = {"listen": "qES", "whisper": "qESw", "barge": "qESB"}


class SupervisionService:
    def __init__(self, *, ami: AmiPort, state: CtiState, directory: AgentDirectory) -> None:
        self._ami = ami
        self.state = state
        self.directory = directory

    def _check_spy(self, actor: Principal, agent_id: str, mode: str, interface: str | None) -> tuple[str, str, Any]:
        if mode not in SPY_OPTIONS:
            raise Invalid("mode must be listen, whisper or barge")
        if not actor.is_supervisor:
            raise Forbidden("supervisors only")
        self.directory.record(agent_id)
        if interface is None:
            sup = self.directory.get(actor.subject)
            if sup is None:
                raise Invalid("give the supervisor's phone interface (no agent record for this supervisor)")
            interface = sup.interface
        call = self.state.call_for_agent(agent_id)
        if call is None or call.agent_id != agent_id:
            raise Conflict(f"agent {agent_id} is not on a call")
        if call.queue is not None and not scope.sees_queue(actor, call.queue):
            raise Forbidden(f"the call is in queue {call.queue}, outside your queue scope")
        channel = call.live_agent_channel()
        if channel is None:
            raise Conflict(f"agent {agent_id} has no live channel")
        return interface, channel, call

    async def spy(self, actor: Principal, agent_id: str, mode: str, interface: str | None = None) -> dict[str, Any]:
        interface, channel, call = self._check_spy(actor, agent_id, mode, interface)
        await send(
            self._ami,
            act.originate(
                dial_target(interface),
                application="ChanSpy",
                data=f"{channel},{SPY_OPTIONS[mode]}",
                caller_id=f'"{mode} {agent_id}" <{agent_id}>',
                variables={"CALLCORE_ORIGIN": f"supervisor-{mode}", "CALLCORE_SPY_AGENT": agent_id},
                async_=True,
            ),
            missing="supervisor device not found",
        )
        return {"agent_id": agent_id, "mode": mode, "call_id": call.id, "channel": channel}
