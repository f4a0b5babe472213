"""Overflow: the engine decides, Asterisk enforces. On every ``clock.tick``,
callers past their queue's overflow threshold (or in a queue nobody is logged
into) are redirected to ``transfer,<overflow queue>,1``
(asterisk-config/extensions.conf ``[transfer] _[a-z].``) in an owned task."""

from __future__ import annotations

import logging

from cti.ami import actions as act
from cti.ports import AmiPort
from cti.state import Change, CtiState
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

KINDS = ("clock.tick",)


class Overflow:
    def __init__(self, state: CtiState, ami: AmiPort, tasks: TaskOwner, *, transfer_context: str = "transfer") -> None:
        self._state = state
        self._ami = ami
        self._tasks = tasks
        self.transfer_context = transfer_context

    def __call__(self, change: Change, now: float) -> None:
        for call, target, why in self._state.overflow_due(now):
            leg = call.caller_leg
            if leg is None or leg.ended_at is not None:
                continue
            call.overflowed_to = target
            call.log(now, "overflow", from_queue=call.queue, to_queue=target, why=why)
            self._tasks.spawn(self._redirect(call.id, leg.channel, target), f"cti-overflow-{call.id}")

    async def _redirect(self, call_id: str, channel: str, target: str) -> None:
        try:
            await self._ami.send(act.redirect(channel, self.transfer_context, target))
        except Exception as exc:
            log.warning("overflow of %s to %s failed: %s", call_id, target, exc)
