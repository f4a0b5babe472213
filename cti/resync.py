"""Resync: the AMI ``on_connect`` hook. After every (re)login, rebuild the state
from CoreShowChannels, QueueStatus and QueueSummary, re-add logged-in agents
Asterisk lost (restart, ``persistentmembers=no``), re-apply pauses, preload the
calls found, and tell every desk where it stands (``agent.resync``; with several servers,
once per start-up after every server's first resync: :meth:`ResyncService._desks_after`). The
directory reload is bounded: a database outage never keeps the queues unstaffed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from cti.ami import actions as act
from cti.ami import events as ev
from cti.ami.actions import Action, AmiActionError
from cti.directory import AgentDirectory
from cti.dispatcher import ChangeDispatcher
from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.ports import AmiPort
from cti.repository import AgentRecord
from cti.state import CtiState
from cti.subscribers.crm_preload import CrmPreload
from cti.subscribers.wrapup import WrapupTimer

log = logging.getLogger("callcore.cti")


def confirmed_member(
    queue: str, rec: AgentRecord, penalty: int, now: float, *, paused: bool | None = None, reason: str | None = None,
    server: str = "",
) -> ev.QueueMemberAdded:
    """The QueueMemberAdded Asterisk emits for a successful ``QueueAdd`` of ``rec``
    (``paused``/``reason``: what the QueueAdd asked for, when not the agent's own pause)."""
    if paused is None:
        paused, reason = rec.paused, rec.pause_reason
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
            paused=paused,
            paused_reason=(reason or "") if paused else "",
            wrapuptime=0,
        ),
        server=server,
    )


class ResyncService:
    def __init__(
        self,
        *,
        ami: AmiPort,
        state: CtiState,
        directory: AgentDirectory,
        dispatcher: ChangeDispatcher,
        pops: PopBuilder,
        preload: CrmPreload,
        wrapup: WrapupTimer,
        notifier: CtiNotifier,
        clock: Callable[[], float],
    ) -> None:
        self._ami = ami
        self.state = state
        self.directory = directory
        self._dispatcher = dispatcher
        self._pops = pops
        self._preload = preload
        self._wrapup = wrapup
        self._notifier = notifier
        self._clock = clock
        self.resyncs = 0
        self.last_resync: float | None = None
        self.directory_timeout = 2.0
        #: called once, right before the first rebuild (journal/live.py puts back the calls a
        #: previous process was following, so the rebuild reconciles them with Asterisk)
        self.before_first_rebuild: Callable[[], None] | None = None
        #: issue 19, several servers: at start-up each server resyncs on its own, but the desks are
        #: told where they stand (``agent.resync``) once, after every server's first resync — or
        #: ``startup_window`` seconds after the first one, when a server is down (0: one per server)
        ports = getattr(ami, "ports", None)
        self.servers: tuple[str, ...] = tuple(ports) if isinstance(ports, dict) else ()
        self.startup_window = 2.0
        self.desk_resyncs = 0  # how many times every desk was sent its agent.resync
        self._armed = True  # the next resyncs are a start-up's (coalesce_next: a cluster take-over too)
        self._waiting: set[str] | None = None  # servers the start-up's agent.resync still waits for
        self._window_task: asyncio.Task[None] | None = None

    async def resync(self, ami: AmiPort | None = None) -> dict[str, Any]:
        """Resync of ONE Asterisk server (issue 19): ``ami`` is that server's port (its
        ``server`` name; ``serves_queue``: the queues that live there). The calls, memberships
        and waiting callers of the other servers are left alone."""
        ami = ami or self._ami
        server = getattr(ami, "server", "") or ""
        channels = await ami.send(act.core_show_channels())
        queues = await ami.send(act.queue_status())
        summary = await ami.send(act.queue_summary())
        await self._reload_directory()
        now = self._clock()
        hook, self.before_first_rebuild = self.before_first_rebuild, None
        if hook is not None:
            hook()
        before_calls = set(self.state.calls)
        changes = self.state.rebuild([*channels.events, *queues.events, *summary.events], now, server)
        self._dispatcher.dispatch(changes, now)
        readded = await self._restore_members(ami, now, server)
        for call in self.state.calls.values():
            if call.id not in before_calls and call.queue and not self._pops.has(call.id):
                self._preload.start(call.id)
        self._desks_after(server, now)
        lost = sum(1 for c in changes if c.kind == "call.ended")
        self.resyncs += 1
        self.last_resync = now
        report = {"at": now, "calls": len(self.state.calls), "agents_readded": readded, "calls_lost": lost}
        if server:
            report["server"] = server
            report["server_calls"] = sum(1 for c in self.state.calls.values() if c.server == server)
        self._notifier.resynced(report)
        log.info("CTI resynced%s: %d live calls, %d agents re-added, %d calls lost", f" (server {server})" if server else "",
                 len(self.state.calls), len(readded), lost)
        return report

    # ------------------------------------------------------------ agent.resync, once per start-up
    def coalesce_next(self) -> None:
        """The next resync of every server is one start-up (a cluster instance taking the AMI lease)."""
        self._cancel_window()
        self._armed, self._waiting = True, None

    async def stop(self) -> None:
        self._cancel_window()

    def _cancel_window(self) -> None:
        if self._window_task is not None:
            self._window_task.cancel()
            self._window_task = None

    def _desks_after(self, server: str, now: float) -> None:
        """Server ``server`` has resynced: tell the desks now, or — at start-up with several
        servers — once the last server's first resync is done (at most ``startup_window`` after
        the first one: a server that is down does not keep the desks waiting). Later per-server
        reconnects tell them at once, as with one server."""
        if self._armed:
            self._armed = False
            if len(self.servers) > 1 and self.startup_window > 0:
                self._waiting = set(self.servers)
        waiting = self._waiting
        if waiting is None:
            self._tell_desks(now)
            return
        waiting.discard(server)
        if not waiting:
            self._waiting = None
            self._cancel_window()
            self._tell_desks(now)
        elif self._window_task is None:
            self._window_task = asyncio.get_running_loop().create_task(self._window(), name="cti-startup-resync-window")

    async def _window(self) -> None:
        await asyncio.sleep(self.startup_window)
        self._window_task = None
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            log.info("start-up: server(s) %s not resynced within %.1f s; desks told now (again at their resync)",
                     ", ".join(sorted(waiting)), self.startup_window)
            self._tell_desks(self._clock())

    def _tell_desks(self, now: float) -> None:
        for agent in self.state.agents.values():
            call = self.state.call_for_agent(agent.id)
            self._notifier.agent_resync(
                agent.id, {"agent": agent.to_dict(), "call": self._pops.pop(call, agent.id, now) if call else None}
            )
        self.desk_resyncs += 1

    async def _reload_directory(self) -> None:
        """Telephony never waits on the database: with the database down (or slow) the
        agents re-added to Asterisk are the ones callcore already knows."""
        try:
            await asyncio.wait_for(self.directory.reload(), self.directory_timeout)
        except Exception as exc:  # noqa: BLE001 - the queues must be staffed again regardless
            log.warning("resync: agent directory not reloaded (%s); using the %d agents in memory",
                        exc.__class__.__name__, len(list(self.directory.records())))

    async def _restore_members(self, ami: AmiPort, now: float, server: str = "") -> list[str]:
        readded: list[str] = []
        several = getattr(ami, "serves_queue", None)  # one of several Asterisk servers (issue 19)
        serves: Callable[[str], bool] = several or (lambda queue: True)
        for rec in self.directory.records():
            live = self.state.agents.get(rec.id)
            if not rec.logged_in:
                if several is not None and live is not None:
                    # logged out while this server was away: it still has the agent in its queues
                    for queue in [q for q in live.memberships.get(server, {}) if q in rec.skills]:
                        await _try(ami, act.queue_remove(queue, rec.interface))
                continue
            # an agent still in wrap-up (e.g. across an Asterisk restart, which forgets every
            # dynamic member and its pause) is re-added paused with reason "wrapup", so Asterisk
            # does not ring it; the end of the wrap-up lifts that pause as usual (WrapupTimer)
            in_wrapup = (
                live is not None and live.wrapup_until is not None and live.wrapup_until > now and not rec.paused
            )
            paused = rec.paused or in_wrapup
            reason = rec.pause_reason if rec.paused else ("wrapup" if in_wrapup else None)
            on_server = live.memberships.get(server, {}) if live is not None else {}
            for queue, penalty in rec.skills.items():
                if not serves(queue):  # this queue does not live on this server
                    continue
                if live is not None and queue in on_server:
                    if in_wrapup and not live.paused:
                        if await _try(ami, act.queue_pause(rec.interface, True, queue=queue, reason="wrapup")):
                            self._wrapup.paused.add(rec.id)
                    elif live.paused != rec.paused and rec.id not in self._wrapup.paused:
                        await _try(ami, act.queue_pause(rec.interface, rec.paused, queue=queue, reason=rec.pause_reason))
                    continue
                ok = await _try(
                    ami,
                    act.queue_add(
                        queue,
                        rec.interface,
                        member_name=rec.name,
                        penalty=penalty,
                        paused=paused,
                        reason=reason,
                    ),
                )
                if ok:
                    if in_wrapup:
                        self._wrapup.paused.add(rec.id)
                    # Asterisk confirmed the QueueAdd; its QueueMemberAdded event is held until
                    # this resync returns, so apply the confirmed membership now: the desks are
                    # told below where they really stand (the held event repeats it harmlessly).
                    member = confirmed_member(queue, rec, penalty, now, paused=paused, reason=reason, server=server)
                    self._dispatcher.dispatch(self.state.apply(member, now), now)
                    if rec.id not in readded:
                        readded.append(rec.id)
        return readded


async def _try(ami: AmiPort, action: Action) -> bool:
    try:
        await ami.send(action)
        return True
    except AmiActionError as exc:
        if "already there" in exc.message.lower():
            return False
        log.warning("%s failed during resync: %s", action.name, exc.message)
        return False
