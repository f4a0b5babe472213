"""Leases in the shared database (issue 19): exactly one instance does a duty at a time.

The duty that needs it is consuming an Asterisk's AMI (``ami:<endpoint>``): two consumers would
both send the actions (a second Originate is a second phone call) and both write the calls.

A lease is a row of ``cluster_leases`` (``callcore/models.py``): ``holder``, ``expires_at``,
``epoch``. The holder renews it every ``interval`` seconds to ``now + ttl``; anyone may take
it once ``expires_at`` has passed. One conditional ``UPDATE`` decides (the database serialises
writers: PostgreSQL re-checks the ``WHERE`` of a concurrent update after the first one commits,
SQLite has one writer), so two standbys never both win.

* **Holder dies** (kill -9, host gone): nobody renews; a standby takes the lease at most
  ``ttl + interval`` after the last renewal (defaults 3 + 0.5 s) and starts AMI (login → resync).
* **Holder loses its database**: it cannot renew, and gives the duty up by itself at
  ``last renewal + ttl - interval`` on its own clock — before anyone else may take it — so two
  holders never overlap (the clocks of the instances must agree within ``interval``: NTP).
* **Graceful stop**: the holder releases the row at once; a standby takes over on its next beat.

The pure decision (:func:`decide`) is tested without a database; :class:`Lease` is the thin loop.
A single instance (no broker: the default, SQLite or not) needs no lease:
:class:`AlwaysHeld` keeps today's behaviour, including AMI staying up while the database is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from callcore.models import ClusterLease

log = logging.getLogger("callcore.lease")


@dataclass(frozen=True, slots=True)
class Verdict:
    held: bool
    #: until when (this instance's clock) it may act as the holder
    act_until: float


def decide(*, was_held: bool, renewed_at: float | None, act_until: float, now: float, ttl: float, interval: float) -> Verdict:
    """Whether this instance is the holder after a beat.

    ``renewed_at``: the time the beat's write started, when the database said "yours"
    (None: the write failed or someone else holds it). The holder may act until
    ``renewed_at + ttl - interval``: a standby may take the row only after ``renewed_at + ttl``.
    """
    if renewed_at is not None:
        return Verdict(True, renewed_at + ttl - interval)
    if was_held and now < act_until:
        return Verdict(True, act_until)  # a missed beat: still ours until the margin runs out
    return Verdict(False, 0.0)


class AlwaysHeld:
    """The lease of a single instance: always the holder, nothing stored."""

    held = True
    epoch = 0
    holder: str | None = None
    state = "single"

    def __init__(self, name: str) -> None:
        self.name = name

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class Lease:
    def __init__(
        self,
        sessionmaker: Any,
        name: str,
        instance: str,
        *,
        ttl: float = 3.0,
        interval: float = 0.5,
        on_acquired: Callable[[], Awaitable[None]] | None = None,
        on_lost: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < interval * 2 <= ttl:
            raise ValueError("lease: the interval must be at most half the ttl")
        self._sm = sessionmaker
        self.name = name
        self.instance = instance
        self.ttl = ttl
        self.interval = interval
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self._clock = clock
        self.held = False
        self.epoch = 0
        self.holder: str | None = None  # the holder as last read (for readiness)
        self.state = "standby"
        self.acquired = 0
        self.lost = 0
        self.failures = 0
        self._act_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lease {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.held:
            await self._set_held(False)
            try:
                async with asyncio.timeout(2):
                    await self._release()
            except Exception as exc:  # it expires by itself
                log.warning("lease %s not released (%s): a standby takes it when it expires", self.name, exc)
        self.state = "stopped"

    async def wait_held(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.held:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                return self.held
        return True

    # ------------------------------------------------------------------ the beat
    async def beat(self) -> bool:
        """One renewal/acquisition attempt; returns whether this instance holds the lease."""
        started = self._clock()
        renewed: float | None = None
        try:
            # a slow database gets up to a third of the ttl; decide() counts from the beat's start
            async with asyncio.timeout(max(self.interval, self.ttl / 3)):
                if await self._write(started):
                    renewed = started
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # database away or slow: decide() keeps or drops the lease
            self.failures += 1
            if self.held or self.failures % 20 == 1:
                log.warning("lease %s: beat failed (%s: %s)", self.name, type(exc).__name__, exc)
        v = decide(was_held=self.held, renewed_at=renewed, act_until=self._act_until, now=self._clock(),
                   ttl=self.ttl, interval=self.interval)
        self._act_until = v.act_until
        if v.held != self.held:
            await self._set_held(v.held)
        return v.held

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await self.beat()
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - t0)))

    async def _set_held(self, held: bool) -> None:
        self.held = held
        self.changed.set()
        if held:
            self.acquired += 1
            self.state = "holder"
            self.holder = self.instance
            log.info("lease %s acquired by %s (epoch %d)", self.name, self.instance, self.epoch)
            if self.on_acquired is not None:
                await self.on_acquired()
        else:
            self.lost += 1
            self.state = "standby"
            if self.holder == self.instance:  # given up, not taken: who holds it now is read at the next beat
                self.holder = None
            log.warning("lease %s given up by %s", self.name, self.instance)
            if self.on_lost is not None:
                await self.on_lost()

    async def _write(self, now: float) -> bool:
        t = ClusterLease.__table__
        async with self._sm() as session:
            res = await session.execute(
                update(t)
                .where(t.c.name == self.name, (t.c.holder == self.instance) | (t.c.expires_at < now) | t.c.holder.is_(None))
                .values(holder=self.instance, expires_at=now + self.ttl, heartbeat_at=now,
                        epoch=_next_epoch(t, self.instance))
                .returning(t.c.epoch)
            )
            row = res.first()
            if row is None:
                current = (await session.execute(t.select().where(t.c.name == self.name))).first()
                if current is None:
                    try:
                        await session.execute(insert(t).values(name=self.name, holder=self.instance, epoch=1,
                                                               expires_at=now + self.ttl, heartbeat_at=now))
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        return False
                    self.epoch, self.holder = 1, self.instance
                    return True
                await session.commit()
                self.holder, self.epoch = current.holder, current.epoch
                return False
            await session.commit()
            self.epoch, self.holder = row.epoch, self.instance
            return True

    async def _release(self) -> None:
        t = ClusterLease.__table__
        async with self._sm() as session:
            await session.execute(update(t).where(t.c.name == self.name, t.c.holder == self.instance)
                                  .values(holder=None, expires_at=0.0))
            await session.commit()


def _next_epoch(t: Any, instance: str) -> Any:
    from sqlalchemy import case

    return case((t.c.holder == instance, t.c.epoch), else_=t.c.epoch + 1)
