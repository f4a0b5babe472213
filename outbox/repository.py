"""Outbox persistence: every state change of a delivery is one short transaction."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import func, select, update

from outbox.models import DEAD, DELIVERED, PENDING, WebhookDeliveryRow


class OutboxRepository:
    def __init__(self, sessionmaker: Any) -> None:
        self._sm = sessionmaker

    async def add(self, rows: Iterable[WebhookDeliveryRow]) -> None:
        async with self._sm() as session, session.begin():
            session.add_all(list(rows))

    async def due(self, now: float, limit: int) -> list[WebhookDeliveryRow]:
        async with self._sm() as session:
            q = (
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.status == PENDING, WebhookDeliveryRow.next_attempt_at <= now)
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.created_at)
                .limit(limit)
            )
            return list((await session.scalars(q)).all())

    async def claim_due(self, now: float, limit: int, lease: float = 60.0) -> list[WebhookDeliveryRow]:
        """Due deliveries, each claimed by this worker (scale-out, issue 19): a compare-and-set of
        ``next_attempt_at`` to ``now + lease``, so instances sharing the database never send one
        delivery twice at once; a worker that dies mid-send leaves it due again after ``lease``."""
        claimed = []
        for row in await self.due(now, limit):
            async with self._sm() as session, session.begin():
                res = await session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id == row.id, WebhookDeliveryRow.status == PENDING,
                           WebhookDeliveryRow.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=now + lease)
                )
            if res.rowcount:
                claimed.append(row)
        return claimed

    async def next_due_at(self) -> float | None:
        async with self._sm() as session:
            q = select(func.min(WebhookDeliveryRow.next_attempt_at)).where(WebhookDeliveryRow.status == PENDING)
            return await session.scalar(q)

    async def delivered(self, delivery_id: str, attempts: int, now: float) -> None:
        await self._set(delivery_id, status=DELIVERED, attempts=attempts, delivered_at=now, last_error=None)

    async def retry_later(self, delivery_id: str, attempts: int, at: float, error: str) -> None:
        await self._set(delivery_id, attempts=attempts, next_attempt_at=at, last_error=error)

    async def dead(self, delivery_id: str, attempts: int, error: str) -> None:
        await self._set(delivery_id, status=DEAD, attempts=attempts, last_error=error)

    async def requeue(self, delivery_id: str, now: float) -> bool:
        """A dead delivery back to pending (an operator fixed the receiver)."""
        async with self._sm() as session, session.begin():
            res = await session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.status == DEAD)
                .values(status=PENDING, attempts=0, next_attempt_at=now)
            )
            return bool(res.rowcount)

    async def list(self, status: str | None, limit: int) -> list[WebhookDeliveryRow]:
        async with self._sm() as session:
            q = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.created_at.desc()).limit(limit)
            if status is not None:
                q = q.where(WebhookDeliveryRow.status == status)
            return list((await session.scalars(q)).all())

    async def counts(self) -> dict[str, int]:
        async with self._sm() as session:
            rows = await session.execute(
                select(WebhookDeliveryRow.status, func.count()).group_by(WebhookDeliveryRow.status)
            )
            return {status: int(n) for status, n in rows.all()}

    async def _set(self, delivery_id: str, **values: Any) -> None:
        async with self._sm() as session, session.begin():
            await session.execute(update(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).values(**values))
