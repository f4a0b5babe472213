"""Agents: the directory (create/update/delete, PIN login), queue login/logout,
pause/unpause, ready (end of wrap-up) and pause reasons.

Each request is split as in wazo-agentd (handler → manager → action): the route
is the handler; ``_check_*`` are the preconditions (pure reads of the directory
and the live state, raising :mod:`cti.errors`); the public coroutine performs
the actions — the AMI action first, then the bookkeeping in the database
(:class:`cti.bookkeeping.Bookkeeping`: retried, and a database outage never
turns an action Asterisk already performed into an error).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from api.auth import Authenticator
from cti.ami import actions as act
from cti.ami.actions import AmiActionError, AmiNotConnected, AmiTimeout
from cti.bookkeeping import Bookkeeping
from cti.directory import AgentDirectory
from cti.dispatcher import ChangeDispatcher
from cti.errors import AmiFailed, AmiUnavailable, Conflict, Forbidden, Invalid, NotFound
from cti.pops import PopBuilder
from cti.ports import AmiPort, send
from cti.repository import AgentRecord, CtiRepository, Duplicate
from cti.state import CtiState
from cti.subscribers.wrapup import WrapupTimer

_PAUSE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AgentService:
    def __init__(
        self,
        *,
        ami: AmiPort,
        repository: CtiRepository,
        state: CtiState,
        directory: AgentDirectory,
        dispatcher: ChangeDispatcher,
        pops: PopBuilder,
        wrapup: WrapupTimer,
        authenticator: Authenticator,
        clock: Callable[[], float],
        pause_reasons: Iterable[str] = ("break", "lunch", "training", "meeting", "admin"),
        bookkeeping: Bookkeeping | None = None,
    ) -> None:
        self._ami = ami
        self.repository = repository
        self.state = state
        self.directory = directory
        self._dispatcher = dispatcher
        self._pops = pops
        self._wrapup = wrapup
        self.authenticator = authenticator
        self._clock = clock
        self.pause_reasons = list(pause_reasons)
        self._books = bookkeeping or Bookkeeping()

    async def load_pause_reasons(self) -> None:
        for r in await self.repository.pause_reasons():
            if r["active"] and r["code"] not in self.pause_reasons:
                self.pause_reasons.append(r["code"])
            elif not r["active"] and r["code"] in self.pause_reasons:
                self.pause_reasons.remove(r["code"])

    # ----------------------------------------------------------- views
    def agent_view(self, agent_id: str) -> dict[str, Any]:
        rec = self.directory.record(agent_id)
        live = self.state.agents.get(agent_id)
        out = rec.to_dict()
        out["state"] = live.to_dict() if live else None
        out["status"] = live.status if live else "logged_out"
        return out

    def list_agents(self) -> list[dict[str, Any]]:
        return [self.agent_view(a) for a in self.directory.ids()]

    def current_call(self, agent_id: str) -> dict[str, Any] | None:
        self.directory.record(agent_id)
        call = self.state.call_for_agent(agent_id)
        return self._pops.pop(call, agent_id) if call else None

    # ------------------------------------------------------- directory
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
                team=fields.get("team"),
            )
        except Duplicate as exc:
            raise Conflict(str(exc)) from None
        self.directory.put(rec)
        return self.agent_view(rec.id)

    async def update_agent(self, agent_id: str, **fields: Any) -> dict[str, Any]:
        self.directory.record(agent_id)
        try:
            rec = await self.repository.update_agent(agent_id, **fields)
        except Duplicate as exc:
            raise Conflict(str(exc)) from None
        if rec is None:
            raise NotFound(f"no such agent: {agent_id}")
        self.directory.put(rec)
        return self.agent_view(rec.id)

    async def delete_agent(self, agent_id: str) -> None:
        rec = self.directory.record(agent_id)
        live = self.state.agents.get(agent_id)
        if rec.logged_in or (live is not None and live.logged_in):
            raise Conflict("log the agent out first")
        await self.repository.delete_agent(agent_id)
        self.directory.remove(agent_id)

    async def authenticate_agent(self, agent_id: str, pin: str) -> str:
        rec = await self.repository.verify_pin(agent_id, pin)
        if rec is None:
            raise Forbidden("bad agent id or PIN")
        return self.authenticator.issue(rec.id, rec.role if rec.role in ("agent", "supervisor", "admin") else "agent")

    # ----------------------------------------------------------- login
    def _check_login(self, agent_id: str, queues: list[str] | None) -> tuple[AgentRecord, list[str]]:
        rec = self.directory.record(agent_id)
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
        return rec, missing

    async def login(self, agent_id: str, queues: list[str] | None = None, *, by: str | None = None) -> dict[str, Any]:
        rec, missing = self._check_login(agent_id, queues)
        for q in missing:
            await _member_action(act.queue_add(q, rec.interface, member_name=rec.name, penalty=rec.skills[q], paused=False),
                                 self._ami, f"QueueAdd {q}", ok=("already there",))
        rec.logged_in, rec.paused, rec.pause_reason = True, False, None

        await self._record(agent_id, "login", {"logged_in": True, "paused": False, "pause_reason": None},
                           [{"queue": q, "by": by} for q in missing])
        return self.agent_view(agent_id)

    def _check_logout(self, agent_id: str, force: bool) -> tuple[AgentRecord, list[str]]:
        rec = self.directory.record(agent_id)
        live = self.state.agents.get(agent_id)
        queues = set(live.queues) if live else set()
        if not queues and not rec.logged_in:
            raise Conflict(f"agent {agent_id} is not logged in")
        if not force and live is not None and (live.current_call or live.ringing_call):
            raise Conflict(f"agent {agent_id} is on a call")
        return rec, sorted(queues | (set(rec.skills) if not queues else set()))

    async def logout(self, agent_id: str, *, force: bool = False, by: str | None = None) -> dict[str, Any]:
        rec, queues = self._check_logout(agent_id, force)
        for q in queues:
            await _member_action(act.queue_remove(q, rec.interface), self._ami, f"QueueRemove {q}",
                                 ok=("not there", "unable to remove"))
        rec.logged_in, rec.paused, rec.pause_reason = False, False, None
        self._wrapup.forget(agent_id)

        await self._record(agent_id, "logout", {"logged_in": False, "paused": False, "pause_reason": None},
                           [{"by": by, "reason": "forced" if force else None}])
        return self.agent_view(agent_id)

    # ----------------------------------------------------------- pause
    def _check_logged_in(self, agent_id: str) -> AgentRecord:
        rec = self.directory.record(agent_id)
        live = self.state.agents.get(agent_id)
        if live is None or not live.logged_in:
            raise Conflict(f"agent {agent_id} is not logged in")
        return rec

    async def pause(self, agent_id: str, reason: str, *, by: str | None = None) -> dict[str, Any]:
        self.directory.record(agent_id)
        if reason not in self.pause_reasons:
            raise Invalid(f"unknown pause reason {reason!r}; allowed: {', '.join(self.pause_reasons)}")
        rec = self._check_logged_in(agent_id)
        await send(self._ami, act.queue_pause(rec.interface, True, reason=reason), missing="agent is not a queue member")
        rec.paused, rec.pause_reason = True, reason
        self._wrapup.forget(agent_id)

        await self._record(agent_id, "pause", {"paused": True, "pause_reason": reason}, [{"reason": reason, "by": by}])
        return self.agent_view(agent_id)

    def _check_unpause(self, agent_id: str) -> AgentRecord:
        rec = self._check_logged_in(agent_id)
        live = self.state.agents[agent_id]
        if not live.paused and not rec.paused:
            raise Conflict(f"agent {agent_id} is not paused")
        return rec

    async def unpause(self, agent_id: str, *, by: str | None = None) -> dict[str, Any]:
        rec = self._check_unpause(agent_id)
        await send(self._ami, act.queue_pause(rec.interface, False), missing="agent is not a queue member")
        rec.paused, rec.pause_reason = False, None
        self._wrapup.forget(agent_id)
        self._dispatcher.dispatch(self.state.end_wrapup(agent_id, self._clock()), self._clock())

        await self._record(agent_id, "unpause", {"paused": False, "pause_reason": None}, [{"by": by}])
        return self.agent_view(agent_id)

    async def _record(self, agent_id: str, event: str, state: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """The bookkeeping after the AMI action: the desired state, then the agent events
        (each write retried on its own, so a retry never repeats a write that landed)."""
        await self._books.write(f"storing the {event} of {agent_id}", lambda: self.repository.set_agent_state(agent_id, **state))
        for fields in events:
            await self._books.write(
                f"recording the {event} of {agent_id}", lambda f=fields: self.repository.add_agent_event(agent_id, event, **f)
            )

    async def ready(self, agent_id: str, *, by: str | None = None) -> dict[str, Any]:
        """End the wrap-up now (the agent is done with the after-call work)."""
        self.directory.record(agent_id)
        live = self.state.agents.get(agent_id)
        if live is None or live.wrapup_until is None:
            raise Conflict(f"agent {agent_id} is not in wrap-up")
        self._dispatcher.dispatch(self.state.end_wrapup(agent_id, self._clock()), self._clock())
        await self._wrapup.ended(agent_id)  # the unpause in Asterisk is done (or logged) before we answer
        return self.agent_view(agent_id)

    async def set_pause_reason(self, code: str, label: str, active: bool = True) -> list[str]:
        if not _PAUSE_CODE.fullmatch(code) or code == "wrapup":
            raise Invalid("pause reason codes are 1-64 of A-Z a-z 0-9 _ . - (and not 'wrapup')")
        await self.repository.upsert_pause_reason(code, label, active)
        if active and code not in self.pause_reasons:
            self.pause_reasons.append(code)
        elif not active and code in self.pause_reasons:
            self.pause_reasons.remove(code)
        return list(self.pause_reasons)


async def _member_action(action: Any, ami: AmiPort, what: str, *, ok: tuple[str, ...]) -> None:
    """A QueueAdd/QueueRemove; Asterisk's "already there"/"not there" is success."""
    try:
        await ami.send(action)
    except AmiActionError as exc:
        if not any(s in exc.message.lower() for s in ok):
            raise AmiFailed(f"{what}: {exc.message}") from None
    except AmiNotConnected as exc:
        raise AmiUnavailable(f"Asterisk is not connected: {exc}") from None
    except AmiTimeout as exc:
        raise AmiFailed(f"{what}: {exc}") from None
