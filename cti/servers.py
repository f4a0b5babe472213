"""Which Asterisk server an AMI action goes to (issue 19; docs/multi-asterisk.md). Pure: no I/O.

app_queue state is local to each Asterisk, so a queue's identity is (server, name). Where
each queue lives comes from the settings: ``ami_servers[].queues`` lists a server's queues
(absent: the server has every queue). Desks, the wallboard and the API see one logical queue
per name (its waiting callers and members summed over the servers that have it).

* ``QueueAdd`` / ``QueueRemove`` / ``QueuePause`` / ``QueuePenalty`` go to **every** server where
  the queue lives (no ``Queue``: every server): an agent is a member on each of them, with the
  same interface (``Local/<ext>@agents``: each server's ``[agents]`` context reaches the phone);
* an action on a channel (``Hangup``, ``Redirect``, ``Atxfer``, ``PlayDTMF``, ``MixMonitor``…) goes to
  the server of the live call that has the channel;
* ``Originate``: ``ChanSpy`` of a channel → the server of that channel; click-to-call and
  callbacks (``CALLCORE_AGENT`` variable) → the agent's server (``agent_servers``, default the
  first server);
* anything else → the first server.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from cti.ami.actions import Action

MEMBER_ACTIONS = frozenset({"QueueAdd", "QueueRemove", "QueuePause", "QueuePenalty"})


class ServerMap:
    """The servers, in order, and the queues each has (None: every queue)."""

    def __init__(self, servers: Sequence[tuple[str, Iterable[str] | None]], agent_servers: dict[str, str] | None = None):
        if not servers:
            raise ValueError("at least one Asterisk server is needed")
        self.names = [name for name, _ in servers]
        self._queues = {name: (None if qs is None else frozenset(qs)) for name, qs in servers}
        self.agent_servers = dict(agent_servers or {})

    @property
    def first(self) -> str:
        return self.names[0]

    def serves(self, server: str, queue: str | None) -> bool:
        qs = self._queues.get(server)
        return qs is None or queue is None or queue in qs

    def servers_of_queue(self, queue: str | None) -> list[str]:
        return [n for n in self.names if self.serves(n, queue)]

    def server_of_agent(self, agent_id: str | None) -> str:
        return self.agent_servers.get(agent_id or "", self.first)


def _header(action: Action, name: str) -> str | None:
    for k, v in action.headers:
        if k == name:
            return v
    return None


def _variable(action: Action, name: str) -> str | None:
    for k, v in action.headers:
        if k == "Variable" and v.startswith(name + "="):
            return v.split("=", 1)[1]
    return None


def targets(action: Action, servers: ServerMap, server_of_channel: Callable[[str], str | None]) -> list[str]:
    """The server(s) ``action`` goes to, first the preferred one."""
    if action.name in MEMBER_ACTIONS:
        return servers.servers_of_queue(_header(action, "Queue")) or [servers.first]
    if action.name == "Originate":
        if (_header(action, "Application") or "").lower() == "chanspy":
            spied = (_header(action, "Data") or "").split(",", 1)[0]
            return [server_of_channel(spied) or servers.first]
        agent = _variable(action, "CALLCORE_AGENT")
        return [servers.server_of_agent(agent)]
    channel = _header(action, "Channel")
    if channel:
        return [server_of_channel(channel) or servers.first]
    return [servers.first]
