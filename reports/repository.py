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


class SetBasedRollups:
    """The set-based rollup builds (``reports.rollup_sql``) on a :class:`ReportRepository`'s
    database: each rollup table's rows of a period in one ``INSERT … SELECT`` inside the
    database, in one transaction with the delete of the rows they replace."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    @staticmethod
    async def _no_jit(s: AsyncSession) -> None:
        """PostgreSQL's JIT compiles these big statements for ~20 s (optimization + emission, 432
        functions), ten times what running them costs: off for this transaction only."""
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy import text

            await s.execute(text("SET LOCAL jit = off"))

    @staticmethod
    def _stmt(sql: str, **types: Any) -> Any:
        from sqlalchemy import Float, String, bindparam, text

        binds = [bindparam("now", type_=RollupRow.__table__.c.built_at.type)]
        for name in ("lo", "hi", "slot_before", "day_before", "fcr_now"):
            if f":{name}" in sql:
                binds.append(bindparam(name, type_=Float()))
        if ":config" in sql:
            binds.append(bindparam("config", type_=String()))
        for name, t in types.items():
            binds.append(bindparam(name, type_=t))
        return text(sql).bindparams(*[b for b in binds if f":{b.key}" in sql])

    async def queues(self, lo: float, hi: float) -> list[str]:
        from reports import rollup_sql as rs

        async with self._sm() as s:
            return sorted((await s.execute(self._stmt(rs.queues_sql()), {"lo": lo, "hi": hi})).scalars())

    async def build_queue_rollups(self, lo: float, hi: float, days: list[tuple[float, float]], configs: dict[str, Any],
                                  default: Any, *, slot_before: float, day_before: float) -> tuple[int, set[float]]:
        """Replace the 15-minute rollups of [lo, hi) and the day rollups of ``days`` (the days wholly
        inside it); returns (15-minute slots written, days written)."""
        from callcore.db import utcnow
        from reports import rollup_sql as rs

        async with self._sm() as s, s.begin():
            await self._no_jit(s)
            d = rs.Dialect(s.get_bind().dialect.name)
            now = utcnow()
            t = RollupRow.__table__
            await s.execute(delete(RollupRow).where(RollupRow.span == "15min", RollupRow.interval_start >= lo,
                                                    RollupRow.interval_start < hi))
            if days:
                await s.execute(delete(RollupRow).where(RollupRow.span == "day", RollupRow.interval_start >= days[0][0],
                                                        RollupRow.interval_start < days[-1][1]))
            await s.execute(self._stmt(rs.queue_rollups_sql(d, configs, default, days)),
                            {"lo": lo, "hi": hi, "slot_before": slot_before, "day_before": day_before, "now": now})
            for a, b in days:
                if b <= day_before:
                    await s.execute(self._stmt(rs.empty_day_sql(d)), {"lo": a, "hi": b, "now": now})
            from sqlalchemy import func

            slots = (await s.execute(select(func.count(func.distinct(t.c.interval_start))).where(
                t.c.span == "15min", t.c.interval_start >= lo, t.c.interval_start < hi))).scalar_one()
            built: set[float] = set()
            if days:
                built = set((await s.execute(select(t.c.interval_start).distinct().where(
                    t.c.span == "day", t.c.interval_start >= days[0][0], t.c.interval_start < days[-1][1]))).scalars())
            return int(slots), built

    async def build_agent_rollups(self, first: float, last: float, days: list[tuple[float, float]],
                                  survey_questions: dict[str, str], open_spans: list[Any]) -> None:
        """Replace the agent day rollups of [first, last) by those of ``days`` (its settled days)."""
        from sqlalchemy import Float, String

        from callcore.db import utcnow
        from reports import rollup_sql as rs

        async with self._sm() as s, s.begin():
            await self._no_jit(s)
            d = rs.Dialect(s.get_bind().dialect.name)
            now = utcnow()
            await s.execute(delete(AgentRollupRow).where(AgentRollupRow.interval_start >= first,
                                                         AgentRollupRow.interval_start < last))
            for a, b in days:
                spans = [sp for sp in open_spans if sp.start < b]
                params: dict[str, Any] = {"lo": a, "hi": b, "now": now}
                types: dict[str, Any] = {}
                for n, sp in enumerate(spans):
                    params.update({f"os_agent_{n}": sp.agent_id, f"os_state_{n}": sp.state, f"os_start_{n}": float(sp.start),
                                   f"os_end_{n}": None if sp.end is None else float(sp.end), f"os_reason_{n}": sp.reason})
                    types.update({f"os_agent_{n}": String(), f"os_state_{n}": String(), f"os_start_{n}": Float(),
                                  f"os_end_{n}": Float(), f"os_reason_{n}": String()})
                await s.execute(self._stmt(rs.agent_rollups_sql(d, survey_questions, len(spans)), **types), params)
                await s.execute(self._stmt(rs.empty_agent_day_sql(d)), {"lo": a, "now": now})

    async def build_fcr_rollups(self, first: float, last: float, days: list[tuple[float, float]], *, window: float,
                                resolved_codes: Any, survey_questions: dict[str, str], config: dict[str, Any],
                                fcr_now: float) -> None:
        """Replace the ``fcr_day`` rollups of [first, last) by those of ``days``."""
        import json

        from callcore.db import utcnow
        from reports import rollup_sql as rs

        async with self._sm() as s, s.begin():
            await self._no_jit(s)
            d = rs.Dialect(s.get_bind().dialect.name)
            now = utcnow()
            await s.execute(delete(RollupRow).where(RollupRow.span == "fcr_day", RollupRow.interval_start >= first,
                                                    RollupRow.interval_start < last))
            sql = rs.fcr_rollups_sql(d, window=window, resolved_codes=resolved_codes, survey_questions=survey_questions)
            for a, b in days:
                await s.execute(self._stmt(sql), {"lo": a, "hi": b, "now": now, "fcr_now": fcr_now,
                                                  "config": json.dumps(config)})
