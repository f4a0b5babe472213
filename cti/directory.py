"""The agent directory: the agents callcore knows (``cti_agents``: desired state —
logged in, paused, skills) mirrored into the live state's interface map.

Shared by the agent, call-control, supervision, callback and resync services."""

from __future__ import annotations

from typing import Iterable

from cti.errors import NotFound
from cti.repository import AgentRecord, CtiRepository
from cti.state import CtiState


class AgentDirectory:
    def __init__(self, repository: CtiRepository, state: CtiState) -> None:
        self._repo = repository
        self._state = state
        self._agents: dict[str, AgentRecord] = {}

    async def reload(self) -> None:
        agents = await self._repo.list_agents()
        for gone in set(self._agents) - {a.id for a in agents}:
            self._state.unregister_agent(gone)
        self._agents = {a.id: a for a in agents}
        for a in agents:
            self._state.register_agent(a.id, a.interface, a.name, a.extension)

    def put(self, rec: AgentRecord) -> None:
        self._agents[rec.id] = rec
        self._state.register_agent(rec.id, rec.interface, rec.name, rec.extension)

    def remove(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
        self._state.unregister_agent(agent_id)

    def record(self, agent_id: str) -> AgentRecord:
        """The agent's record, or :class:`NotFound` (a precondition every service checks)."""
        rec = self._agents.get(agent_id)
        if rec is None:
            raise NotFound(f"no such agent: {agent_id}")
        return rec

    def get(self, agent_id: str) -> AgentRecord | None:
        return self._agents.get(agent_id)

    def ids(self) -> list[str]:
        return sorted(self._agents)

    def records(self) -> Iterable[AgentRecord]:
        return self._agents.values()

    def queue_agents(self, queue: str) -> list[str]:
        return sorted(a for a, rec in self._agents.items() if queue in rec.skills)
