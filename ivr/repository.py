"""Persistence port for the IVR, with an in-memory double and the SQL implementation.

The registry stores flow versions through it; the service stores sessions,
steps, context and survey answers. ``MemoryIvrRepository`` keeps the IVR
runnable without a database (console, tests, classic AGI without a DB).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcore.db import utcnow
from ivr.engine import IvrOutcome
from ivr.models import DialplanVersionRow, IvrSessionRow, IvrStepRow, SurveyAnswerRow

#: outcomes that mean "resolved without an agent"
CONTAINED = ("hangup",)


@dataclass
class FlowVersion:
    flow: str
    hash: str
    source: str
    file: str = ""
    includes: dict[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=utcnow)
    active: bool = False

    def summary(self) -> dict[str, Any]:
        return {"flow": self.flow, "hash": self.hash, "file": self.file, "loaded_at": self.loaded_at.isoformat(), "active": self.active}


@dataclass(frozen=True)
class SessionStart:
    uniqueid: str
    linkedid: str | None
    channel: str | None
    caller: str | None
    dialed: str | None
    flow: str
    version_hash: str | None
    language: str | None
    started_at: datetime


class VersionStore(Protocol):
    async def save_version(self, version: FlowVersion) -> None: ...
    async def set_active(self, flow: str, hash: str) -> None: ...
    async def versions(self, flow: str | None = None) -> list[FlowVersion]: ...
    async def get_version(self, flow: str, hash: str) -> FlowVersion | None: ...


class IvrRepository(VersionStore, Protocol):
    async def start_session(self, start: SessionStart) -> int: ...
    async def finish_session(self, session_id: int, outcome: IvrOutcome, ended_at: datetime) -> None: ...
    async def context_for(self, uniqueid: str) -> dict[str, Any] | None: ...
    async def session(self, uniqueid: str) -> dict[str, Any] | None: ...
    async def stats(self, since: datetime | None = None) -> dict[str, Any]: ...
    async def survey_answers(self, uniqueid: str) -> list[dict[str, Any]]: ...


def _aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _stats(rows: list[tuple[str | None, str | None]]) -> dict[str, Any]:
    """rows: (outcome, end_node) per finished session."""
    total = len(rows)
    by_outcome = Counter(o for o, _ in rows)
    drop = Counter(n for o, n in rows if o == "caller_hangup")
    contained = sum(by_outcome[o] for o in CONTAINED)
    return {
        "sessions": total,
        "by_outcome": dict(sorted(by_outcome.items())),
        "contained": contained,
        "containment_rate": round(contained / total, 4) if total else None,
        "drop_off": [{"node": n, "calls": c} for n, c in drop.most_common()],
    }


def _session_dict(s: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {**s, "steps": steps}


class MemoryIvrRepository:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], FlowVersion] = {}
        self._sessions: dict[int, dict[str, Any]] = {}
        self._steps: dict[int, list[dict[str, Any]]] = {}
        self._answers: list[dict[str, Any]] = []

    async def save_version(self, version: FlowVersion) -> None:
        self._versions.setdefault((version.flow, version.hash), version)

    async def set_active(self, flow: str, hash: str) -> None:
        for (f, h), v in self._versions.items():
            if f == flow:
                v.active = h == hash

    async def versions(self, flow: str | None = None) -> list[FlowVersion]:
        return sorted((v for v in self._versions.values() if flow is None or v.flow == flow), key=lambda v: (v.flow, v.loaded_at))

    async def get_version(self, flow: str, hash: str) -> FlowVersion | None:
        return self._versions.get((flow, hash))

    async def start_session(self, start: SessionStart) -> int:
        sid = len(self._sessions) + 1
        self._sessions[sid] = {
            "id": sid, "uniqueid": start.uniqueid, "linkedid": start.linkedid, "caller": start.caller,
            "dialed": start.dialed, "flow": start.flow, "version_hash": start.version_hash,
            "language": start.language, "started_at": start.started_at.isoformat(), "ended_at": None,
            "outcome": None, "end_node": None, "queue": None, "priority": None, "context": {},
        }
        return sid

    async def finish_session(self, session_id: int, outcome: IvrOutcome, ended_at: datetime) -> None:
        s = self._sessions[session_id]
        s.update(
            ended_at=ended_at.isoformat(), outcome=outcome.kind, end_node=outcome.end_node, queue=outcome.queue,
            priority=outcome.priority, context=outcome.context, language=outcome.language,
        )
        self._steps[session_id] = [st.as_dict() for st in outcome.steps]
        for q, a in outcome.survey_answers.items():
            self._answers.append({"session_id": session_id, "uniqueid": s["uniqueid"], "flow": outcome.flow, "question": q, "answer": a})

    async def context_for(self, uniqueid: str) -> dict[str, Any] | None:
        # the run that handed the call to a queue wins over a later one (the post-call survey)
        for s in sorted(self._sessions.values(), key=lambda s: (s["outcome"] != "queue", -s["id"])):
            if s["uniqueid"] == uniqueid and s["context"]:
                return s["context"]
        return None

    async def session(self, uniqueid: str) -> dict[str, Any] | None:
        found = [s for s in self._sessions.values() if s["uniqueid"] == uniqueid]
        if not found:
            return None
        s = max(found, key=lambda s: s["id"])
        return _session_dict(dict(s), self._steps.get(s["id"], []))

    async def survey_answers(self, uniqueid: str) -> list[dict[str, Any]]:
        return [{"question": a["question"], "answer": a["answer"], "flow": a["flow"]} for a in self._answers if a["uniqueid"] == uniqueid]

    async def stats(self, since: datetime | None = None) -> dict[str, Any]:
        rows = [
            (s["outcome"], s["end_node"]) for s in self._sessions.values()
            if s["outcome"] and (since is None or datetime.fromisoformat(s["started_at"]) >= _aware(since))
        ]
        return _stats(rows)


class SqlIvrRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    @staticmethod
    def _version(row: DialplanVersionRow) -> FlowVersion:
        return FlowVersion(row.flow, row.content_hash, row.source, row.file, dict(row.includes or {}), _aware(row.loaded_at), row.active)

    async def save_version(self, version: FlowVersion) -> None:
        async with self._sm() as db, db.begin():
            exists = await db.scalar(
                select(DialplanVersionRow.id).where(DialplanVersionRow.flow == version.flow, DialplanVersionRow.content_hash == version.hash)
            )
            if exists is None:
                db.add(
                    DialplanVersionRow(
                        flow=version.flow, content_hash=version.hash, file=version.file, source=version.source,
                        includes=version.includes, loaded_at=version.loaded_at, active=False,
                    )
                )

    async def set_active(self, flow: str, hash: str) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(DialplanVersionRow).where(DialplanVersionRow.flow == flow).values(active=False))
            await db.execute(
                update(DialplanVersionRow).where(DialplanVersionRow.flow == flow, DialplanVersionRow.content_hash == hash).values(active=True)
            )

    async def versions(self, flow: str | None = None) -> list[FlowVersion]:
        async with self._sm() as db:
            q = select(DialplanVersionRow).order_by(DialplanVersionRow.flow, DialplanVersionRow.loaded_at, DialplanVersionRow.id)
            if flow is not None:
                q = q.where(DialplanVersionRow.flow == flow)
            return [self._version(r) for r in (await db.scalars(q)).all()]

    async def get_version(self, flow: str, hash: str) -> FlowVersion | None:
        async with self._sm() as db:
            row = await db.scalar(
                select(DialplanVersionRow).where(DialplanVersionRow.flow == flow, DialplanVersionRow.content_hash == hash)
            )
            return self._version(row) if row is not None else None

    async def start_session(self, start: SessionStart) -> int:
        async with self._sm() as db, db.begin():
            row = IvrSessionRow(
                uniqueid=start.uniqueid, linkedid=start.linkedid, channel=start.channel, caller=start.caller,
                dialed=start.dialed, flow=start.flow, version_hash=start.version_hash, language=start.language,
                started_at=start.started_at, context={},
            )
            db.add(row)
            await db.flush()
            return row.id

    async def finish_session(self, session_id: int, outcome: IvrOutcome, ended_at: datetime) -> None:
        async with self._sm() as db, db.begin():
            row = await db.get(IvrSessionRow, session_id)
            if row is None:
                return
            row.ended_at = ended_at
            row.outcome = outcome.kind
            row.end_node = outcome.end_node
            row.queue = outcome.queue
            row.priority = outcome.priority
            row.language = outcome.language
            row.context = outcome.context
            for st in outcome.steps:
                db.add(
                    IvrStepRow(
                        session_id=session_id, seq=st.seq, flow=st.flow, node=st.node, node_type=st.type,
                        started_ms=st.started_ms, duration_ms=st.duration_ms,
                        input=(st.input or None) and st.input[:200], result=st.result[:200], detail=st.detail,
                    )
                )
            for q, a in outcome.survey_answers.items():
                db.add(SurveyAnswerRow(session_id=session_id, uniqueid=row.uniqueid, linkedid=row.linkedid, flow=outcome.flow, question=q, answer=a))

    async def context_for(self, uniqueid: str) -> dict[str, Any] | None:
        async with self._sm() as db:
            ctx = await db.scalar(
                select(IvrSessionRow.context)
                .where(IvrSessionRow.uniqueid == uniqueid, IvrSessionRow.outcome.is_not(None))
                # the run that handed the call to a queue wins over a later one (the post-call survey)
                .order_by(case((IvrSessionRow.outcome == "queue", 0), else_=1), IvrSessionRow.id.desc())
                .limit(1)
            )
            return ctx or None

    async def session(self, uniqueid: str) -> dict[str, Any] | None:
        async with self._sm() as db:
            row = await db.scalar(select(IvrSessionRow).where(IvrSessionRow.uniqueid == uniqueid).order_by(IvrSessionRow.id.desc()).limit(1))
            if row is None:
                return None
            steps = (await db.scalars(select(IvrStepRow).where(IvrStepRow.session_id == row.id).order_by(IvrStepRow.seq))).all()
            s = {
                "id": row.id, "uniqueid": row.uniqueid, "linkedid": row.linkedid, "caller": row.caller, "dialed": row.dialed,
                "flow": row.flow, "version_hash": row.version_hash, "language": row.language,
                "started_at": _aware(row.started_at).isoformat() if row.started_at else None,
                "ended_at": _aware(row.ended_at).isoformat() if row.ended_at else None,
                "outcome": row.outcome, "end_node": row.end_node, "queue": row.queue, "priority": row.priority,
                "context": row.context or {},
            }
            return _session_dict(s, [
                {"seq": st.seq, "flow": st.flow, "node": st.node, "type": st.node_type, "started_ms": st.started_ms,
                 "duration_ms": st.duration_ms, "input": st.input, "result": st.result, "detail": st.detail}
                for st in steps
            ])

    async def stats(self, since: datetime | None = None) -> dict[str, Any]:
        async with self._sm() as db:
            q = select(IvrSessionRow.outcome, IvrSessionRow.end_node).where(IvrSessionRow.outcome.is_not(None))
            if since is not None:
                q = q.where(IvrSessionRow.started_at >= since)
            rows = [(o, n) for o, n in (await db.execute(q)).all()]
        return _stats(rows)

    async def survey_answers(self, uniqueid: str) -> list[dict[str, Any]]:
        async with self._sm() as db:
            rows = (await db.scalars(select(SurveyAnswerRow).where(SurveyAnswerRow.uniqueid == uniqueid).order_by(SurveyAnswerRow.id))).all()
            return [{"question": r.question, "answer": r.answer, "flow": r.flow} for r in rows]
