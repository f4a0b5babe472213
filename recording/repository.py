"""Persistence of the recording domain (SQLAlchemy async; SQLite and PostgreSQL).

Returns plain dicts (``to_dict``), never ORM objects outside a session.
Search is keyset-paginated on ``(started_at, id)`` (or ``(duration, id)``) so a
page costs the same at row 10 and row 1,000,000; the filters use the indexes
declared in :mod:`recording.models`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from cti.models import CallRow  # read-only: the call's disposition, set in wrap-up after the recording row
from recording.models import (
    PENDING, RecordingAccessRow, RecordingFacetRow, RecordingEventRow, RecordingJobRow, RecordingKeyRow, RecordingRow, RecordingWaveformRow,
)

SORTS = {"started_at": RecordingRow.started_at, "duration": RecordingRow.duration}
#: SearchFilters fields that are plain equality filters, and their column
EQUALS = {
    "caller": RecordingRow.caller_num, "called": RecordingRow.called, "direction": RecordingRow.direction,
    "flow_version": RecordingRow.flow_version, "status": RecordingRow.status, "server": RecordingRow.server,
}


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def to_dict(r: RecordingRow) -> dict[str, Any]:
    return {
        "id": r.id, "call_id": r.call_id, "server": r.server, "uniqueids": r.uniqueids, "caller_num": r.caller_num,
        "caller_name": r.caller_name, "called": r.called, "direction": r.direction, "queue": r.queue,
        "queues": r.queues, "agent_id": r.agent_id, "agents": r.agents, "started_at": _ts(r.started_at),
        "ended_at": _ts(r.ended_at), "recording_started_at": _ts(r.recording_started_at), "late_start": r.late_start,
        "late_start_seconds": r.late_start_seconds, "wait_seconds": r.wait_seconds, "talk_seconds": r.talk_seconds,
        "hold_seconds": r.hold_seconds, "outcome": r.outcome, "disposition": r.disposition, "ivr_context": r.ivr_context,
        "ivr_path": r.ivr_path, "flow_version": r.flow_version, "tags": r.tags, "muted": r.muted, "muted_spans": r.muted_spans,
        "hold_spans": r.hold_spans,
        "format": r.format, "size": r.size, "sha256": r.sha256, "storage_backend": r.storage_backend,
        "encrypted": r.encrypted, "source_file": r.source_file, "duration": r.duration, "audio": r.audio, "status": r.status,
        "status_reason": r.status_reason, "policy": r.policy, "retention_until": _ts(r.retention_until),
        "legal_hold": r.legal_hold, "hold_by": r.hold_by, "hold_reason": r.hold_reason, "qa_sample": r.qa_sample,
        "removed_at": _ts(r.removed_at), "removed_by": r.removed_by, "removed_reason": r.removed_reason,
    }


@dataclass
class SearchFilters:
    start: datetime | None = None
    end: datetime | None = None
    agent: str | None = None
    queue: str | None = None
    caller: str | None = None
    called: str | None = None
    direction: str | None = None
    disposition: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    muted: bool | None = None
    tags: list[str] = field(default_factory=list)
    ivr_node: str | None = None
    flow_version: str | None = None
    status: str | None = None
    qa_sample: bool | None = None
    only_agent: str | None = None  # access control: an agent sees their own calls only
    #: access control (issue 11): a user scoped to queues sees the recordings of calls that
    #: passed through one of them (any of the recording's queues; auth/scope.py)
    only_queues: frozenset[str] | None = None
    #: issue 19: the Asterisk server of the call (``ami_servers[].name``)
    server: str | None = None


def encode_cursor(sort_value: Any, row_id: int) -> str:
    value = _ts(sort_value) if isinstance(sort_value, datetime) else sort_value
    return base64.urlsafe_b64encode(json.dumps([value, row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort == "started_at":
            value = datetime.fromisoformat(value)
        elif value is not None:
            value = float(value)
        return value, int(row_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


async def _with_dispositions(s: Any, rows: list[RecordingRow]) -> list[dict[str, Any]]:
    """``to_dict`` of each row, with the disposition the call has now (set in wrap-up, which
    may come after the recording row was written)."""
    out = [to_dict(r) for r in rows]
    ids = [r.call_id for r in rows]
    if ids:
        calls = dict((await s.execute(
            select(CallRow.id, CallRow.disposition).where(CallRow.id.in_(ids), CallRow.disposition.is_not(None)))).all())
        for item in out:
            item["disposition"] = calls.get(item["call_id"], item["disposition"])
    return out


def search_query(f: SearchFilters, *, sort: str = "started_at", order: str = "desc", limit: int = 50,
                 cursor: str | None = None) -> Any:
    """The SELECT behind :meth:`RecordingRepository.search`: one page plus one row."""
    facets = [("agent", a) for a in (f.agent, f.only_agent) if a]
    facets += [("queue", f.queue)] if f.queue else []
    facets += [("node", f.ivr_node)] if f.ivr_node else []
    facets += [("tag", t) for t in f.tags]
    conds: list[Any] = []
    # Sorted by time with a facet filter: walk that facet's index (kind, value, started_at,
    # recording_id) in order and stop at the page size; other facets are membership checks.
    driver = None
    # ... unless the facets are queues (a dozen, each a large share of the calls) and a rare flag
    # (a PCI mute, the QA sample: a few % of the calls) is asked for: then the flag's
    # (flag, started_at, id) index drives and the queue is a membership check (issue 18: a big
    # queue's facet walk kept 1.4 % of what it read)
    rare_flag = f.muted is True or f.qa_sample is True
    if facets and sort == "started_at" and not (rare_flag and all(k == "queue" for k, _ in facets)):
        driver = RecordingFacetRow
        kind, value = facets.pop(0)
        conds += [driver.kind == kind, driver.value == value]
        col, tie = driver.started_at, driver.recording_id
        q = select(RecordingRow).join(driver, driver.recording_id == RecordingRow.id)
    else:
        col, tie = SORTS[sort], RecordingRow.id
        q = select(RecordingRow)
    for kind, value in facets:
        if driver is None and rare_flag:
            # a probe of the (recording_id, kind, value) index per row the flag's walk meets — not the
            # whole queue's list (SQLite's LIST SUBQUERY, PostgreSQL's hash of it): OFFSET 0 keeps
            # PostgreSQL from turning the EXISTS into a join (it does not pull up a sublink with an OFFSET)
            conds.append(select(RecordingFacetRow.id).where(
                RecordingFacetRow.recording_id == RecordingRow.id, RecordingFacetRow.kind == kind,
                RecordingFacetRow.value == value).limit(1).offset(0).exists())
            continue
        conds.append(RecordingRow.id.in_(select(RecordingFacetRow.recording_id).where(
            RecordingFacetRow.kind == kind, RecordingFacetRow.value == value)))
    if f.only_queues:
        conds.append(RecordingRow.id.in_(select(RecordingFacetRow.recording_id).where(
            RecordingFacetRow.kind == "queue", RecordingFacetRow.value.in_(sorted(f.only_queues)))))
    if f.start is not None:
        conds.append(col >= f.start if driver is not None else RecordingRow.started_at >= f.start)
    if f.end is not None:
        conds.append(col < f.end if driver is not None else RecordingRow.started_at < f.end)
    for name, column in EQUALS.items():
        value = getattr(f, name)
        if value:
            conds.append(column == value)
    if f.disposition:  # agents set it in wrap-up, often after the recording row was written: cti_calls has it
        conds.append(or_(RecordingRow.disposition == f.disposition, RecordingRow.call_id.in_(
            select(CallRow.id).where(CallRow.disposition == f.disposition))))
    if f.min_duration is not None:
        conds.append(RecordingRow.duration >= f.min_duration)
    if f.max_duration is not None:
        conds.append(RecordingRow.duration <= f.max_duration)
    if f.muted is not None:
        conds.append(RecordingRow.muted.is_(f.muted))
    if f.qa_sample is not None:
        conds.append(RecordingRow.qa_sample.is_(f.qa_sample))
    if cursor:
        value, row_id = decode_cursor(cursor, sort)
        if order == "desc":
            conds.append(or_(col < value, and_(col == value, tie < row_id)))
        else:
            conds.append(or_(col > value, and_(col == value, tie > row_id)))
    if sort == "duration":
        conds.append(RecordingRow.duration.is_not(None))
    if conds:
        q = q.where(*conds)
    q = q.order_by(col.desc(), tie.desc()) if order == "desc" else q.order_by(col.asc(), tie.asc())
    return q.limit(limit + 1)


class RecordingRepository:
    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker

    # ------------------------------------------------------------ rows
    async def upsert(self, call_id: str, *, facets: dict[str, list[str]] | None = None, **fields: Any) -> int:
        """Insert or update the row of ``call_id``; ``facets`` (kind → values) replaces those kinds."""
        async with self.sessionmaker() as s, s.begin():
            row = (await s.execute(select(RecordingRow).where(RecordingRow.call_id == call_id))).scalar_one_or_none()
            if row is None:
                row = RecordingRow(call_id=call_id, **fields)
                s.add(row)
            else:
                for k, v in fields.items():
                    setattr(row, k, v)
            await s.flush()
            if facets:
                await self._set_facets(s, row.id, row.started_at, facets)
            return row.id

    async def set_facets(self, recording_id: int, facets: dict[str, list[str]], **fields: Any) -> None:
        async with self.sessionmaker() as s, s.begin():
            row = await s.get(RecordingRow, recording_id)
            if row is None:
                return
            for k, v in fields.items():
                setattr(row, k, v)
            await self._set_facets(s, recording_id, row.started_at, facets)

    @staticmethod
    async def _set_facets(s: Any, recording_id: int, started_at: datetime, facets: dict[str, list[str]]) -> None:
        await s.execute(delete(RecordingFacetRow).where(
            RecordingFacetRow.recording_id == recording_id, RecordingFacetRow.kind.in_(list(facets))))
        for kind, values in facets.items():
            for value in dict.fromkeys(v for v in values if v):
                s.add(RecordingFacetRow(recording_id=recording_id, kind=kind, value=str(value)[:200], started_at=started_at))

    async def get(self, recording_id: int) -> dict[str, Any] | None:
        async with self.sessionmaker() as s:
            row = await s.get(RecordingRow, recording_id)
            return (await _with_dispositions(s, [row]))[0] if row is not None else None

    async def get_row_fields(self, recording_id: int, *names: str) -> dict[str, Any] | None:
        async with self.sessionmaker() as s:
            row = await s.get(RecordingRow, recording_id)
            return {n: getattr(row, n) for n in names} if row is not None else None

    async def by_call(self, call_id: str) -> dict[str, Any] | None:
        async with self.sessionmaker() as s:
            row = (await s.execute(select(RecordingRow).where(RecordingRow.call_id == call_id))).scalar_one_or_none()
            return to_dict(row) if row is not None else None

    async def update(self, recording_id: int, **fields: Any) -> None:
        async with self.sessionmaker() as s, s.begin():
            await s.execute(update(RecordingRow).where(RecordingRow.id == recording_id).values(**fields))

    async def search(self, f: SearchFilters, *, sort: str = "started_at", order: str = "desc", limit: int = 50,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        q = search_query(f, sort=sort, order=order, limit=limit, cursor=cursor)
        async with self.sessionmaker() as s:
            rows = list((await s.execute(q)).scalars())
            more = len(rows) > limit
            rows = rows[:limit]
            out = await _with_dispositions(s, rows)
        next_cursor = encode_cursor(getattr(rows[-1], sort), rows[-1].id) if more and rows else None
        return out, next_cursor

    # ------------------------------------------------------------ keys / waveform
    async def put_key(self, recording_id: int, key_id: str, wrapped: bytes) -> None:
        async with self.sessionmaker() as s, s.begin():
            row = await s.get(RecordingKeyRow, recording_id)
            if row is None:
                s.add(RecordingKeyRow(recording_id=recording_id, key_id=key_id, wrapped_key=wrapped))
            else:
                row.key_id, row.wrapped_key = key_id, wrapped

    async def get_key(self, recording_id: int) -> tuple[str, bytes] | None:
        async with self.sessionmaker() as s:
            row = await s.get(RecordingKeyRow, recording_id)
            return (row.key_id, bytes(row.wrapped_key)) if row is not None else None

    async def delete_key(self, recording_id: int) -> bool:
        async with self.sessionmaker() as s, s.begin():
            res = await s.execute(delete(RecordingKeyRow).where(RecordingKeyRow.recording_id == recording_id))
            return bool(res.rowcount)

    async def all_keys(self) -> list[tuple[int, str, bytes]]:
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(RecordingKeyRow))).scalars()
            return [(r.recording_id, r.key_id, bytes(r.wrapped_key)) for r in rows]

    async def put_waveform(self, recording_id: int, peaks: list[list[float]]) -> None:
        async with self.sessionmaker() as s, s.begin():
            row = await s.get(RecordingWaveformRow, recording_id)
            points = len(peaks[0]) if peaks else 0
            if row is None:
                s.add(RecordingWaveformRow(recording_id=recording_id, points=points, peaks=peaks))
            else:
                row.points, row.peaks = points, peaks

    async def get_waveform(self, recording_id: int) -> list[list[float]] | None:
        async with self.sessionmaker() as s:
            row = await s.get(RecordingWaveformRow, recording_id)
            return row.peaks if row is not None else None

    # ------------------------------------------------------------ events / access log
    async def add_event(self, call_id: str, kind: str, at: datetime, actor: str | None, reason: str | None,
                        data: dict[str, Any] | None = None) -> None:
        async with self.sessionmaker() as s, s.begin():
            s.add(RecordingEventRow(call_id=call_id, kind=kind, at=at, actor=actor, reason=reason, data=data))

    async def events(self, call_id: str) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(RecordingEventRow).where(RecordingEventRow.call_id == call_id)
                                    .order_by(RecordingEventRow.at, RecordingEventRow.id))).scalars()
            return [{"kind": r.kind, "at": _ts(r.at), "actor": r.actor, "reason": r.reason, "data": r.data} for r in rows]

    async def log_access(self, recording_id: int, actor: str, role: str, action: str, client: str | None,
                         rng: str | None, at: datetime) -> None:
        async with self.sessionmaker() as s, s.begin():
            s.add(RecordingAccessRow(recording_id=recording_id, actor=actor, role=role, action=action, client=client,
                                     range=rng, at=at))

    async def access_log(self, recording_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        q = select(RecordingAccessRow).order_by(RecordingAccessRow.id.desc()).limit(limit)
        if recording_id is not None:
            q = q.where(RecordingAccessRow.recording_id == recording_id)
        async with self.sessionmaker() as s:
            rows = (await s.execute(q)).scalars()
            return [{"recording_id": r.recording_id, "at": _ts(r.at), "actor": r.actor, "role": r.role,
                     "action": r.action, "client": r.client, "range": r.range} for r in rows]

    # ------------------------------------------------------------ jobs
    async def enqueue(self, recording_id: int, kind: str, now: datetime) -> None:
        """Idempotent: one job per (recording, kind); an existing one is re-armed unless done."""
        async with self.sessionmaker() as s, s.begin():
            row = (await s.execute(select(RecordingJobRow).where(
                RecordingJobRow.recording_id == recording_id, RecordingJobRow.kind == kind))).scalar_one_or_none()
            if row is None:
                s.add(RecordingJobRow(recording_id=recording_id, kind=kind, status=PENDING, next_attempt_at=now,
                                      created_at=now, updated_at=now))

    async def claim_due(self, now: datetime, lease: float, limit: int = 5) -> list[tuple[int, int, str, int]]:
        """Jobs due now (pending, or running with an expired lease: a callcore that died
        mid-job); each is leased to this worker. Returns ``(job_id, recording_id, kind, attempts)``."""
        out = []
        async with self.sessionmaker() as s, s.begin():
            rows = list((await s.execute(
                select(RecordingJobRow).where(or_(
                    and_(RecordingJobRow.status == "pending", RecordingJobRow.next_attempt_at <= now),
                    and_(RecordingJobRow.status == "running", RecordingJobRow.locked_until <= now),
                )).order_by(RecordingJobRow.next_attempt_at, RecordingJobRow.id).limit(limit)
            )).scalars())
            for job_id, recording_id, kind, attempts in [(r.id, r.recording_id, r.kind, r.attempts) for r in rows]:
                # compare-and-set on attempts: two workers never both take a job
                res = await s.execute(update(RecordingJobRow).where(
                    RecordingJobRow.id == job_id, RecordingJobRow.attempts == attempts
                ).values(status="running", attempts=attempts + 1, locked_until=now + timedelta(seconds=lease),
                         updated_at=now).execution_options(synchronize_session=False))
                if res.rowcount:
                    out.append((job_id, recording_id, kind, attempts + 1))
        return out

    async def count_backlog(self) -> int:
        """Post-processing jobs not finished yet (pending or running): the operator's backlog."""
        async with self.sessionmaker() as s:
            return int((await s.execute(select(func.count()).select_from(RecordingJobRow).where(
                RecordingJobRow.status.in_(("pending", "running"))))).scalar_one())

    async def finish_job(self, job_id: int, status: str, now: datetime, error: str | None = None,
                         retry_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": error, "locked_until": None}
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        async with self.sessionmaker() as s, s.begin():
            await s.execute(update(RecordingJobRow).where(RecordingJobRow.id == job_id).values(**values))

    async def jobs(self, recording_id: int) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(RecordingJobRow).where(RecordingJobRow.recording_id == recording_id))).scalars()
            return [{"id": r.id, "kind": r.kind, "status": r.status, "attempts": r.attempts, "last_error": r.last_error,
                     "next_attempt_at": _ts(r.next_attempt_at)} for r in rows]

    # ------------------------------------------------------------ retention
    async def due_for_purge(self, now: datetime, limit: int = 100) -> list[int]:
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(RecordingRow.id).where(
                RecordingRow.status.in_(("ready", "failed")), RecordingRow.legal_hold.is_(False),
                RecordingRow.retention_until.is_not(None), RecordingRow.retention_until <= now,
            ).limit(limit))).scalars()
            return list(rows)

    async def stale_recording(self, before: datetime, limit: int = 200) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(RecordingRow).where(
                RecordingRow.status == "recording", RecordingRow.started_at < before).limit(limit))).scalars()
            return [to_dict(r) for r in rows]
