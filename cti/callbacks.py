"""Callbacks: a caller asks (in the IVR) to be called back; agents of the queue
see it, one takes it, and dials it through click-to-call. Implements the IVR's
``ivr.ports.CallbackSink``."""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from auth import scope
from cti.calls import NUMBER
from cti.directory import AgentDirectory
from cti.errors import Conflict, Forbidden, Invalid, NotFound
from cti.notifier import CtiNotifier
from cti.outbound import OutboundService
from cti.repository import CtiRepository
from ivr.ports import CallbackRequest


class CallbackService:
    def __init__(
        self, *, repository: CtiRepository, directory: AgentDirectory, notifier: CtiNotifier, outbound: OutboundService
    ) -> None:
        self.repository = repository
        self.directory = directory
        self._notifier = notifier
        self._outbound = outbound

    async def create_callback(self, request: CallbackRequest) -> str:
        """``ivr.ports.CallbackSink``: store the request; agents of the queue are told."""
        if not NUMBER.fullmatch(request.number or ""):
            raise Invalid("bad callback number")
        cb = await self.repository.create_callback(
            call_id=request.call_uniqueid,
            caller_num=request.caller_num,
            number=request.number,
            queue=request.queue,
            requested_time=request.requested_time,
            context=dict(request.context),
        )
        self._notifier.callback_created(cb, self.directory.queue_agents(request.queue))
        return cb["id"]

    async def list_callbacks(self, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
        if actor.is_supervisor:  # a supervisor limited to queues sees theirs (auth/scope.py)
            only = scope.queue_filter(actor)
            return await self.repository.list_callbacks(status=status, queues=sorted(only) if only else None)
        rec = self.directory.record(actor.agent_id or "")
        items = await self.repository.list_callbacks(status=status, queues=list(rec.skills))
        return [c for c in items if c["status"] == "open" or c["agent_id"] == rec.id]

    async def _existing(self, callback_id: str) -> dict[str, Any]:
        cb = await self.repository.get_callback(callback_id)
        if cb is None:
            raise NotFound(f"no such callback: {callback_id}")
        return cb

    async def take_callback(self, actor: Principal, callback_id: str) -> dict[str, Any]:
        cb = await self._existing(callback_id)
        if not scope.sees_queue(actor, cb["queue"]):
            raise Forbidden(f"queue {cb['queue']} is outside your queue scope")
        agent_id = actor.agent_id
        if agent_id is None:
            raise Forbidden("only agents take callbacks")
        rec = self.directory.record(agent_id)
        if cb["queue"] not in rec.skills and not actor.is_supervisor:
            raise Forbidden(f"agent {agent_id} does not serve queue {cb['queue']}")
        taken = await self.repository.take_callback(callback_id, agent_id)
        if taken is None:
            raise Conflict("callback already taken")
        self._notifier.callback_taken(taken, self.directory.queue_agents(taken["queue"]))
        return taken

    async def dial_callback(self, actor: Principal, callback_id: str) -> dict[str, Any]:
        cb = await self._existing(callback_id)
        if cb["agent_id"] != actor.agent_id or cb["status"] not in ("taken", "dialing"):
            raise Conflict("take the callback first")
        return await self._outbound.click_to_call(actor.agent_id or "", cb["number"], callback_id=callback_id, origin="callback")
