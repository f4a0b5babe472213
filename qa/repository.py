"""QA persistence (SQLAlchemy async; SQLite and PostgreSQL) and the call/recording sources.

* :class:`QaRepository`: form versions, evaluations with their revisions and
  history, work items, calibration sessions.
* :class:`RecordingTable`: the ``RecordingSource`` port over the recording
  package's recordings (id, agent, queue, duration, disposition, policy flags).
* :class:`CallRecordings`: the same port over ``cti_calls`` for a server run with
  ``recording_enabled: false`` (a recording is then referenced by its call id).
  CSAT comes from the IVR's post-call survey answer (``ivr_survey_answers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any, Iterable, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcore.db import utcnow
from ivr.repository import _aware as aware  # the one SQLite naive-datetime fix
from qa.models import QaCalibrationRow, QaEvaluationRow, QaFormVersionRow, QaHistoryRow, QaRevisionRow, QaWorkItemRow, QaWorkListRunRow
from qa.sampling import Candidate, Pick


def where_equal(q: Any, model: Any, **values: Any) -> Any:
    """``q`` filtered by ``model.<name> == value`` for every value that is not None."""
    for name, value in values.items():
        if value is not None:
            q = q.where(getattr(model, name) == value)
    return q


@dataclass(frozen=True)
class RecordingRef:
    recording_id: str
    agent_id: str | None
    call_id: str | None
    duration: float | None
    queue: str | None = None
    started_at: datetime | None = None  # the call's start (reports count QA coverage by it)


class RecordingSource(Protocol):
    async def recording(self, recording_id: str) -> RecordingRef | None: ...
    async def candidates(self, start: datetime, end: datetime) -> list[Candidate]: ...


def _duration(row: Any) -> float:
    if row.talk_time is not None:
        return float(row.talk_time)
    if row.answered_at is not None and row.ended_at is not None:
        return max(0.0, (aware(row.ended_at) - aware(row.answered_at)).total_seconds())
    return 0.0


class CallRecordings:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, csat_question: str = "csat") -> None:
        self._sm = sessionmaker
        self.csat_question = csat_question

    async def recording(self, recording_id: str) -> RecordingRef | None:
        from cti.models import CallRow

        async with self._sm() as s:
            row = await s.get(CallRow, recording_id)
            if row is None:
                return None
            return RecordingRef(row.id, row.agent_id, row.id, _duration(row), row.queue, aware(row.started_at))

    async def candidates(self, start: datetime, end: datetime) -> list[Candidate]:
        from cti.models import CallRow

        async with self._sm() as s:
            rows = (await s.execute(
                select(CallRow).where(
                    CallRow.started_at >= start, CallRow.started_at < end, CallRow.recording.is_(True),
                    CallRow.agent_id.is_not(None), CallRow.answered_at.is_not(None), CallRow.ended_at.is_not(None),
                )
            )).scalars().all()
            csat = await _csat(s, [r.id for r in rows], self.csat_question)
        return [
            Candidate(r.id, r.agent_id, aware(r.started_at), _duration(r), r.queue, r.id, csat.get(r.id), r.disposition, ())
            for r in rows
        ]


class RecordingTable:
    """The ``RecordingSource`` over the recording package's table (``recording_recordings``):
    a recording is referenced by its id; flags are the recording policy's QA sample
    (``qa_sample``), ``pci`` for a recording with muted spans, and its tags; CSAT as above."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, csat_question: str = "csat") -> None:
        self._sm = sessionmaker
        self.csat_question = csat_question

    async def recording(self, recording_id: str) -> RecordingRef | None:
        from recording.models import RecordingRow

        if not recording_id.isdigit():
            return None
        async with self._sm() as s:
            row = await s.get(RecordingRow, int(recording_id))
            if row is None or row.removed_at is not None:
                return None
            return RecordingRef(str(row.id), row.agent_id, row.call_id, row.duration, row.queue, aware(row.started_at))

    async def candidates(self, start: datetime, end: datetime) -> list[Candidate]:
        from recording.models import RecordingRow

        async with self._sm() as s:
            rows = (await s.execute(select(RecordingRow).where(
                RecordingRow.started_at >= start, RecordingRow.started_at < end, RecordingRow.agent_id.is_not(None),
                RecordingRow.ended_at.is_not(None), RecordingRow.removed_at.is_(None),
            ))).scalars().all()
            csat = await _csat(s, [r.call_id for r in rows], self.csat_question)
        out = []
        for r in rows:
            flags = (["qa_sample"] if r.qa_sample else []) + (["pci"] if r.muted else []) + [str(t) for t in r.tags or []]
            duration = r.duration if r.duration is not None else (r.talk_seconds or 0.0)
            out.append(Candidate(str(r.id), r.agent_id, aware(r.started_at), float(duration), r.queue, r.call_id,
                                 csat.get(r.call_id), r.disposition, tuple(flags)))
        return out


async def _csat(s: AsyncSession, call_ids: list[str], question: str) -> dict[str, float]:
    """The IVR survey's answer to ``question`` per call (linkedid)."""
    from ivr.models import SurveyAnswerRow

    if not call_ids:
        return {}
    rows = await s.execute(select(SurveyAnswerRow.linkedid, SurveyAnswerRow.answer).where(
        SurveyAnswerRow.linkedid.in_(call_ids), SurveyAnswerRow.question == question, SurveyAnswerRow.answer.is_not(None),
    ))
    return {linkedid: float(answer) for linkedid, answer in rows.all()}


def day_bounds(first: date, after_last: date) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time(), tzinfo=timezone.utc), datetime.combine(after_last, time(), tzinfo=timezone.utc))


class QaRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    # ------------------------------------------------------------ form versions
    async def save_form_version(self, form_id: str, hash: str, source: str, file: str) -> None:
        async with self._sm() as s, s.begin():
            exists = await s.scalar(select(QaFormVersionRow.id).where(QaFormVersionRow.form_id == form_id, QaFormVersionRow.hash == hash))
            if exists is None:
                s.add(QaFormVersionRow(form_id=form_id, hash=hash, source=source, file=file))

    async def form_version_source(self, form_id: str, hash: str) -> tuple[str, str] | None:
        async with self._sm() as s:
            row = (await s.execute(select(QaFormVersionRow).where(QaFormVersionRow.form_id == form_id, QaFormVersionRow.hash == hash))).scalar_one_or_none()
            return (row.source, row.file) if row else None

    async def form_versions(self, form_id: str | None = None) -> list[dict[str, Any]]:
        async with self._sm() as s:
            q = where_equal(select(QaFormVersionRow).order_by(QaFormVersionRow.form_id, QaFormVersionRow.id), QaFormVersionRow, form_id=form_id)
            return [
                {"form_id": r.form_id, "hash": r.hash, "file": r.file, "loaded_at": aware(r.loaded_at).isoformat()}
                for r in (await s.execute(q)).scalars()
            ]

    # ------------------------------------------------------------ evaluations
    async def create_evaluation(self, fields: dict[str, Any], content: dict[str, Any], actor: str, action: str, detail: dict[str, Any]) -> int:
        async with self._sm() as s, s.begin():
            row = QaEvaluationRow(**fields)
            s.add(row)
            await s.flush()
            s.add(QaRevisionRow(evaluation_id=row.id, revision=row.revision, author=actor, **content))
            s.add(QaHistoryRow(evaluation_id=row.id, actor=actor, action=action, detail=detail, at=fields.get("updated_at") or utcnow()))
            if fields.get("work_item_id"):
                item = await s.get(QaWorkItemRow, fields["work_item_id"])
                if item is not None:
                    item.evaluation_id = row.id
            return row.id

    async def update_evaluation(
        self, evaluation_id: int, fields: dict[str, Any], *, actor: str, action: str, detail: dict[str, Any],
        new_revision: dict[str, Any] | None = None, replace_revision: dict[str, Any] | None = None,
        expect_state: Iterable[str] | None = None,
    ) -> bool:
        """Apply ``fields`` and a history entry in one transaction; with ``expect_state`` only if the
        row is still in one of those states (False otherwise: someone else got there first)."""
        async with self._sm() as s, s.begin():
            row = await s.get(QaEvaluationRow, evaluation_id, with_for_update=True)
            if row is None or (expect_state is not None and row.state not in set(expect_state)):
                return False
            if new_revision is not None:
                row.revision += 1
                s.add(QaRevisionRow(evaluation_id=row.id, revision=row.revision, author=actor, **new_revision))
            if replace_revision is not None:
                rev = (await s.execute(select(QaRevisionRow).where(
                    QaRevisionRow.evaluation_id == row.id, QaRevisionRow.revision == row.revision))).scalar_one()
                for k, v in replace_revision.items():
                    setattr(rev, k, v)
                rev.created_at = fields.get("updated_at") or utcnow()
            for k, v in fields.items():
                setattr(row, k, v)
            s.add(QaHistoryRow(evaluation_id=row.id, actor=actor, action=action, detail={**detail, "revision": row.revision},
                               at=fields.get("updated_at") or utcnow()))
            return True

    async def evaluation(self, evaluation_id: int) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = await s.get(QaEvaluationRow, evaluation_id)
            if row is None:
                return None
            revs = (await s.execute(select(QaRevisionRow).where(QaRevisionRow.evaluation_id == evaluation_id).order_by(QaRevisionRow.revision))).scalars().all()
            hist = (await s.execute(select(QaHistoryRow).where(QaHistoryRow.evaluation_id == evaluation_id).order_by(QaHistoryRow.id))).scalars().all()
            out = _eval_dict(row)
            out["revisions"] = [
                {"revision": r.revision, "answers": r.answers, "comments": r.comments, "score": r.score, "author": r.author,
                 "reason": r.reason, "created_at": aware(r.created_at).isoformat()}
                for r in revs
            ]
            out["history"] = [{"at": aware(h.at).isoformat(), "actor": h.actor, "action": h.action, "detail": h.detail} for h in hist]
            return out

    async def evaluations(self, *, agent_id: str | None = None, evaluator: str | None = None, recording_id: str | None = None,
                          state: str | None = None, calibration_id: int | None = None, include_calibration: bool = False) -> list[dict[str, Any]]:
        async with self._sm() as s:
            q = where_equal(
                select(QaEvaluationRow).order_by(QaEvaluationRow.id), QaEvaluationRow,
                agent_id=agent_id, evaluator=evaluator, recording_id=recording_id, state=state, calibration_id=calibration_id,
            )
            if calibration_id is None and not include_calibration:
                q = q.where(QaEvaluationRow.calibration_id.is_(None))
            rows = (await s.execute(q)).scalars().all()
            ids = [r.id for r in rows]
            latest = {r.id: r.revision for r in rows}
            current: dict[int, QaRevisionRow] = {}
            if ids:
                for rev in (await s.execute(select(QaRevisionRow).where(QaRevisionRow.evaluation_id.in_(ids)))).scalars():
                    if rev.revision == latest[rev.evaluation_id]:
                        current[rev.evaluation_id] = rev
            out = []
            for r in rows:
                d = _eval_dict(r)
                rev = current.get(r.id)
                d["answers"] = rev.answers if rev else {}
                d["comments"] = rev.comments if rev else []
                d["score"] = rev.score if rev else {}
                out.append(d)
            return out

    # ------------------------------------------------------------ work list
    async def work_item_recordings(self) -> set[str]:
        async with self._sm() as s:
            return set((await s.execute(select(QaWorkItemRow.recording_id))).scalars())

    async def assigned_on(self, day: str) -> dict[str, int]:
        async with self._sm() as s:
            rows = await s.execute(
                select(QaWorkItemRow.evaluator, func.count()).where(QaWorkItemRow.assigned_on == day, QaWorkItemRow.evaluator.is_not(None))
                .group_by(QaWorkItemRow.evaluator)
            )
            return {e: int(n) for e, n in rows.all()}

    async def add_work_items(self, picks: list[Pick], period: str, day: str, *, run_key: str | None = None) -> list[int] | None:
        """Store the picks; with ``run_key``, also claim that run in the same transaction and return
        ``None`` (nothing stored) when the run is already recorded (another instance, a restart)."""
        try:
            return await self._add_work_items(picks, period, day, run_key)
        except IntegrityError:
            if run_key is None:
                raise
            return None  # the same run committed concurrently by another instance

    async def _add_work_items(self, picks: list[Pick], period: str, day: str, run_key: str | None) -> list[int] | None:
        async with self._sm() as s, s.begin():
            if run_key is not None:
                if await s.get(QaWorkListRunRow, run_key) is not None:
                    return None
                s.add(QaWorkListRunRow(run_key=run_key, picked=len(picks)))
            rows = [
                QaWorkItemRow(
                    recording_id=p.candidate.recording_id, call_id=p.candidate.call_id, agent_id=p.candidate.agent_id,
                    queue=p.candidate.queue, form_id=p.form, period=period, rule=p.rule, reason=p.reason, also=list(p.also),
                    evaluator=p.evaluator, assigned_on=day if p.evaluator else None,
                )
                for p in picks
            ]
            s.add_all(rows)
            await s.flush()
            return [r.id for r in rows]

    async def worklist_run(self, run_key: str) -> dict[str, Any] | None:
        async with self._sm() as s:
            r = await s.get(QaWorkListRunRow, run_key)
            return {"run_key": r.run_key, "picked": r.picked, "built_at": _iso(r.built_at)} if r else None

    async def work_items(self, *, evaluator: str | None = None, period: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        async with self._sm() as s:
            q = where_equal(select(QaWorkItemRow).order_by(QaWorkItemRow.id), QaWorkItemRow, evaluator=evaluator, period=period)
            if open_only:
                q = q.where(QaWorkItemRow.evaluation_id.is_(None))
            return [_item_dict(r) for r in (await s.execute(q)).scalars()]

    async def work_item(self, item_id: int) -> dict[str, Any] | None:
        async with self._sm() as s:
            r = await s.get(QaWorkItemRow, item_id)
            return _item_dict(r) if r else None

    # ------------------------------------------------------------ calibration
    async def create_calibration(self, fields: dict[str, Any]) -> int:
        async with self._sm() as s, s.begin():
            row = QaCalibrationRow(**fields)
            s.add(row)
            await s.flush()
            return row.id

    async def calibration(self, calibration_id: int) -> dict[str, Any] | None:
        async with self._sm() as s:
            r = await s.get(QaCalibrationRow, calibration_id)
            return _cal_dict(r) if r else None

    async def calibrations(self) -> list[dict[str, Any]]:
        async with self._sm() as s:
            return [_cal_dict(r) for r in (await s.execute(select(QaCalibrationRow).order_by(QaCalibrationRow.created_at, QaCalibrationRow.id))).scalars()]


def _iso(dt: datetime | None) -> str | None:
    dt = aware(dt)
    return dt.isoformat() if dt else None


def _eval_dict(r: QaEvaluationRow) -> dict[str, Any]:
    return {
        "id": r.id, "recording_id": r.recording_id, "call_id": r.call_id, "agent_id": r.agent_id, "queue": r.queue,
        "evaluator": r.evaluator,
        "form_id": r.form_id, "form_hash": r.form_hash, "state": r.state, "revision": r.revision, "total": r.total,
        "band": r.band, "critical_failed": r.critical_failed, "calibration_id": r.calibration_id, "work_item_id": r.work_item_id,
        "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at), "submitted_at": _iso(r.submitted_at),
        "respond_by": _iso(r.respond_by), "acknowledged_at": _iso(r.acknowledged_at), "disputed_at": _iso(r.disputed_at),
        "dispute_comment": r.dispute_comment, "resolved_at": _iso(r.resolved_at), "resolved_by": r.resolved_by,
        "resolution": r.resolution, "resolution_comment": r.resolution_comment,
    }


def _item_dict(r: QaWorkItemRow) -> dict[str, Any]:
    return {
        "id": r.id, "recording_id": r.recording_id, "call_id": r.call_id, "agent_id": r.agent_id, "queue": r.queue,
        "form_id": r.form_id, "period": r.period, "rule": r.rule, "reason": r.reason, "also": r.also,
        "evaluator": r.evaluator, "assigned_on": r.assigned_on, "evaluation_id": r.evaluation_id,
    }


def _cal_dict(r: QaCalibrationRow) -> dict[str, Any]:
    return {
        "id": r.id, "name": r.name, "form_id": r.form_id, "form_hash": r.form_hash, "recording_ids": r.recording_ids,
        "evaluators": r.evaluators, "expert": r.expert, "created_by": r.created_by, "created_at": _iso(r.created_at),
    }
