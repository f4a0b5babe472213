"""Several Asterisk servers behind one :class:`~cti.ports.AmiPort` (issue 19).

:class:`MultiAmi` owns one :class:`~cti.ami.AmiClient` per server (each tags its events with
the server's name) and sends every action to the server(s) :func:`cti.servers.targets` picks:
call control to the call's server, ``QueueAdd``/``QueuePause``/``QueueRemove`` to every server
where the queue lives, click-to-call to the agent's server. One server down never stops the
others: a member action skips the servers that are not connected (their resync re-adds the
agents there) and fails only when none of its servers is connected.

:class:`ServerPort` is one server as the resync sees it: ``send`` goes to that server only,
``server`` names it and ``serves_queue`` says which queues live there.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any, Callable, Iterable

from cti.ami.actions import Action, AmiNotConnected, AmiResponse
from cti.ami.protocol import FrameStats
from cti.servers import ServerMap, targets


class ServerPort:
    def __init__(self, name: str, client: Any, servers: ServerMap) -> None:
        self.server = name
        self.client = client
        self._servers = servers

    @property
    def state(self) -> str:
        return self.client.state

    def serves_queue(self, queue: str) -> bool:
        return self._servers.serves(self.server, queue)

    async def send(self, action: Action, timeout: float | None = None) -> AmiResponse:
        return await self.client.send(action, timeout)

    async def send_originate(self, action: Action, timeout: float | None = None) -> Any:
        return await self.client.send_originate(action, timeout)


class MultiAmi:
    def __init__(self, ports: Iterable[ServerPort], servers: ServerMap,
                 server_of_channel: Callable[[str], str | None] = lambda channel: None) -> None:
        self.ports = {p.server: p for p in ports}
        self.servers = servers
        #: resolves a channel to the server of its call (``CtiState.server_of_channel``), late-bound
        self.server_of_channel = server_of_channel
        self.sent: dict[str, int] = {name: 0 for name in self.ports}  # actions per server (tests, metrics)

    def __repr__(self) -> str:
        return f"<MultiAmi {', '.join(f'{n}={p.state}' for n, p in self.ports.items())}>"

    # ------------------------------------------------------------ state
    @property
    def states(self) -> dict[str, str]:
        return {name: p.state for name, p in self.ports.items()}

    @property
    def state(self) -> str:
        """``connected`` while at least one server is (the others are named by ``states``)."""
        states = list(self.states.values())
        if "connected" in states:
            return "connected"
        return "connecting" if "connecting" in states else states[0]

    @property
    def events_delivered(self) -> int:
        return sum(getattr(p.client, "events_delivered", 0) for p in self.ports.values())

    @property
    def unknown_events(self) -> int:
        return sum(getattr(p.client, "unknown_events", 0) for p in self.ports.values())

    @property
    def stats(self) -> FrameStats:
        total = FrameStats()
        for p in self.ports.values():
            st = getattr(p.client, "stats", None)
            for f in fields(FrameStats) if st is not None else ():
                value = getattr(st, f.name)
                if isinstance(value, int):
                    setattr(total, f.name, getattr(total, f.name) + value)
        return total

    async def start(self) -> None:
        for p in self.ports.values():
            await p.client.start()

    async def close(self) -> None:
        await asyncio.gather(*(p.client.close() for p in self.ports.values()), return_exceptions=True)

    # ------------------------------------------------------------ actions
    def targets(self, action: Action) -> list[str]:
        return targets(action, self.servers, self.server_of_channel)

    async def send(self, action: Action, timeout: float | None = None) -> AmiResponse:
        names = self.targets(action)
        if len(names) == 1:
            self.sent[names[0]] += 1
            return await self.ports[names[0]].send(action, timeout)
        up = [n for n in names if self.ports[n].state == "connected"]
        if not up:
            raise AmiNotConnected(f"{action.name}: none of its servers is connected ({', '.join(names)})")
        for n in up:
            self.sent[n] += 1
        results = await asyncio.gather(*(self.ports[n].send(action, timeout) for n in up), return_exceptions=True)
        for r in results:
            if not isinstance(r, BaseException):
                return r
        raise results[0]  # every server refused: the first one's reason

    async def send_originate(self, action: Action, timeout: float | None = None) -> Any:
        name = self.targets(action)[0]
        self.sent[name] += 1
        return await self.ports[name].send_originate(action, timeout)
