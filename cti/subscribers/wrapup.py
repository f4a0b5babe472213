"""Wrap-up timing, enforced by Asterisk: when an agent's call ends
(``agent.wrapup``) the queue member is paused with reason ``wrapup``; when the
wrap-up is over (``agent.updated`` with ``reason: wrapup_done`` — timer, ``ready``
or ``unpause``) that pause is lifted. Both run in owned tasks; the AMI action is
sent before the agent event is written (telephony never waits on bookkeeping)."""

from __future__ import annotations

import asyncio
import logging

from cti.ami import actions as act
from cti.bookkeeping import Bookkeeping
from cti.directory import AgentDirectory
from cti.ports import AmiPort
from cti.repository import CtiRepository
from cti.state import Change, CtiState
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

KINDS = ("agent.wrapup", "agent.updated")


class WrapupTimer:
    def __init__(
        self,
        state: CtiState,
        directory: AgentDirectory,
        ami: AmiPort,
        repository: CtiRepository,
        tasks: TaskOwner,
        bookkeeping: Bookkeeping | None = None,
    ) -> None:
        self._state = state
        self._directory = directory
        self._ami = ami
        self._repo = repository
        self._tasks = tasks
        self._books = bookkeeping or Bookkeeping()
        #: agents callcore paused in Asterisk for wrap-up (and must unpause)
        self.paused: set[str] = set()

    def __call__(self, ch: Change, now: float) -> None:
        if ch.kind == "agent.wrapup":
            if ch.agent_id:
                self._tasks.spawn(self._start(ch.agent_id, ch.call_id, ch.queue), f"cti-wrapup-{ch.agent_id}",
                                  key=f"wrapup:{ch.agent_id}")
        elif (ch.data or {}).get("reason") == "wrapup_done" and ch.agent_id in self._state.agents:
            agent_id = ch.agent_id
            self._tasks.spawn(self._end(agent_id, (ch.data or {}).get("call_id")), f"cti-ready-{agent_id}",
                              key=f"ready:{agent_id}")

    def forget(self, agent_id: str) -> None:
        """The agent paused, unpaused or logged out by hand: no wrap-up pause to lift."""
        self.paused.discard(agent_id)

    async def ended(self, agent_id: str, timeout: float = 10.0) -> None:
        """Wait (bounded) until the end-of-wrap-up unpause was sent (or logged as failed)."""
        task = self._tasks.get(f"ready:{agent_id}")
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)

    async def _start(self, agent_id: str, call_id: str | None, queue: str | None) -> None:
        rec = self._directory.get(agent_id)
        live = self._state.agents.get(agent_id)
        if rec is not None and live is not None and live.wrapup_until is not None and not rec.paused and live.logged_in:
            try:
                await self._ami.send(act.queue_pause(rec.interface, True, reason="wrapup"))
                self.paused.add(agent_id)
            except Exception as exc:
                log.warning("wrap-up pause of %s failed: %s", agent_id, exc)
        if rec is not None:  # bookkeeping in its own task: the end of wrap-up waits only for the pause
            self._tasks.spawn(
                self._books.write(
                    f"recording the wrap-up of {agent_id}",
                    lambda: self._repo.add_agent_event(agent_id, "wrapup", queue=queue, call_id=call_id),
                ),
                f"cti-wrapup-event-{agent_id}",
                key=f"wrapup-event:{agent_id}",
            )

    async def _end(self, agent_id: str, call_id: str | None) -> None:
        rec = self._directory.get(agent_id)
        if rec is None:
            return
        start = self._tasks.get(f"wrapup:{agent_id}")
        if start is not None and not start.done():
            await asyncio.wait({start})  # the wrap-up pause must be in place before it is lifted
        if agent_id in self.paused and not rec.paused:
            self.paused.discard(agent_id)
            try:
                await self._ami.send(act.queue_pause(rec.interface, False))
            except Exception as exc:
                log.warning("end-of-wrap-up unpause of %s failed: %s", agent_id, exc)
        written = self._tasks.get(f"wrapup-event:{agent_id}")
        if written is not None and not written.done():
            await asyncio.wait({written})  # the agent's events stay in order: wrap-up, then ready
        await self._books.write(
            f"recording the end of wrap-up of {agent_id}", lambda: self._repo.add_agent_event(agent_id, "ready", call_id=call_id)
        )
