"""The fact store and the rollups in the database (SQLAlchemy async; SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports.facts import Fact
from reports.models import AgentRollupRow, FactRow, RollupRow


def _insert_ignore(session: AsyncSession, table: Any, index: list[str]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's dialect (SQLite and PostgreSQL both have it)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - callcore supports these two
        raise RuntimeError(f"unsupported database dialect {name!r}")
    return insert(table).on_conflict_do_nothing(index_elements=index)


_t = FactRow.__table__
#: the columns of a :class:`~reports.facts.Fact`, in its field order
_FACT_COLUMNS = (_t.c.key, _t.c.kind, _t.c.at, _t.c.anchor_at, _t.c.call_id, _t.c.queue, _t.c.agent_id, _t.c.data)


class ReportRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def add_facts(self, facts: Sequence[Fact]) -> int:
        """Append facts; a fact whose key is already stored is ignored. Returns how many were new."""
        if not facts:
            return 0
        rows = {f.key: f.to_row() for f in facts}  # duplicates inside one batch too
        async with self._sm() as s, s.begin():
            existing = set()
            keys = list(rows)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                existing |= set((await s.execute(select(FactRow.key).where(FactRow.key.in_(chunk)))).scalars())
            new = [r for k, r in rows.items() if k not in existing]
            if new:
                from callcore.db import utcnow

                now = utcnow()
                for r in new:
                    r["recorded_at"] = now
                await s.execute(_insert_ignore(s, FactRow.__table__, ["key"]), new)
            return len(new)

    async def facts(
        self, lo: float, hi: float, kinds: Iterable[str] | None = None, *, by: str = "anchor_at",
        at_after: float | None = None,
    ) -> list[Fact]:
        """Facts with ``by`` (anchor_at or at) in [lo, hi); ``at_after``: only those that happened
        after it (agent spans, stored when they end: the ones still going at a period's start)."""
        t = FactRow.__table__
        col = t.c.anchor_at if by == "anchor_at" else t.c.at
        q = select(*_FACT_COLUMNS).where(col >= lo, col < hi)
        if at_after is not None:
            q = q.where(t.c.at > at_after)
        if kinds is not None:
            q = q.where(t.c.kind.in_(list(kinds)))
        async with self._sm() as s:  # Core rows, not ORM objects: a report reads 10^5 facts at a time
            rows = (await s.execute(q.order_by(t.c.anchor_at, t.c.id))).all()
        return [_fact(r) for r in rows]

    async def facts_of_calls(self, call_ids: Iterable[str], kinds: Iterable[str] | None = None) -> list[Fact]:
        ids = sorted(set(call_ids))
        out: list[Fact] = []
        async with self._sm() as s:
            t = FactRow.__table__
            for i in range(0, len(ids), 500):
                q = select(*_FACT_COLUMNS).where(t.c.call_id.in_(ids[i:i + 500]))
                if kinds is not None:
                    q = q.where(t.c.kind.in_(list(kinds)))
                out.extend(_fact(r) for r in (await s.execute(q)).all())
        return out

    async def count_facts(self) -> int:
        from sqlalchemy import func

        async with self._sm() as s:
            return int((await s.execute(select(func.count(FactRow.id)))).scalar_one())

    # ------------------------------------------------------------ rollups
    async def rollups(self, lo: float, hi: float, span: str = "15min") -> list[Any]:
        """Rollup rows of one ``span`` in [lo, hi) as plain rows (``interval_start, queue, config,
        counts``), without building ORM objects."""
        t = RollupRow.__table__
        q = select(t.c.interval_start, t.c.queue, t.c.config, t.c.counts).where(
            t.c.span == span, t.c.interval_start >= lo, t.c.interval_start < hi).order_by(t.c.interval_start, t.c.queue)
        async with self._sm() as s:
            return list((await s.execute(q)).all())

    async def replace_rollups(self, lo: float, hi: float, rows: list[dict[str, Any]], spans: Iterable[str] = ("15min",)) -> None:
        """Replace the rollups of ``spans`` in [lo, hi) (one transaction: readers see the old or the new set)."""
        from callcore.db import utcnow

        async with self._sm() as s, s.begin():
            await s.execute(delete(RollupRow).where(RollupRow.span.in_(list(spans)), RollupRow.interval_start >= lo,
                                                    RollupRow.interval_start < hi))
            if rows:
                now = utcnow()
                await s.execute(RollupRow.__table__.insert(), [{**r, "built_at": now} for r in rows])

    async def agent_rollups(self, lo: float, hi: float) -> list[Any]:
        """Agent day rollups in [lo, hi) as plain rows (``interval_start, agent_id, counts``)."""
        t = AgentRollupRow.__table__
        q = select(t.c.interval_start, t.c.agent_id, t.c.counts).where(
            t.c.interval_start >= lo, t.c.interval_start < hi).order_by(t.c.interval_start, t.c.agent_id)
        async with self._sm() as s:
            return list((await s.execute(q)).all())

    async def replace_agent_rollups(self, lo: float, hi: float, rows: list[dict[str, Any]]) -> None:
        from callcore.db import utcnow

        async with self._sm() as s, s.begin():
            await s.execute(delete(AgentRollupRow).where(AgentRollupRow.interval_start >= lo,
                                                         AgentRollupRow.interval_start < hi))
            if rows:
                now = utcnow()
                await s.execute(AgentRollupRow.__table__.insert(), [{**r, "built_at": now} for r in rows])


def _fact(r: Any) -> Fact:
    """A fact from a Core row of :data:`_FACT_COLUMNS`."""
    return Fact(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or {})
