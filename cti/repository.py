"""Persistence of the CTI domain. Returns plain records, never ORM objects.

Every method opens its own short session from the injected sessionmaker, so
the repository is safe to share between concurrent tasks.

Over 500 lines on purpose: one repository per domain package (the same file
name everywhere), covering every ``cti_*`` table; each method is a short query.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.models import (
    AgentEventRow,
    AgentRow,
    AgentSkillRow,
    CallbackRow,
    CallEventRow,
    CallLegRow,
    CallRow,
    CustomerNoteRow,
    CustomerRow,
    PauseReasonRow,
    QueueSettingsRow,
)
from cti.state import Call, QueueSettings
from auth.passwords import Passwords

#: PINs are Argon2id (auth.passwords); PBKDF2 PINs from before are rehashed on the next login
PASSWORDS = Passwords()


class Duplicate(Exception):
    """A record with that key already exists."""


# ------------------------------------------------------------------ records
@dataclass
class AgentRecord:
    id: str
    name: str
    interface: str
    extension: str | None = None
    role: str = "agent"
    skills: dict[str, int] = field(default_factory=dict)  # queue -> penalty
    logged_in: bool = False
    paused: bool = False
    pause_reason: str | None = None
    has_pin: bool = False
    team: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "interface": self.interface,
            "extension": self.extension,
            "role": self.role,
            "skills": [{"queue": q, "penalty": p} for q, p in sorted(self.skills.items())],
            "logged_in": self.logged_in,
            "paused": self.paused,
            "pause_reason": self.pause_reason,
            "team": self.team,
        }


def _agent(row: AgentRow) -> AgentRecord:
    return AgentRecord(
        id=row.id,
        name=row.name,
        interface=row.interface,
        extension=row.extension,
        role=row.role,
        skills={s.queue: s.penalty for s in row.skills},
        logged_in=row.logged_in,
        paused=row.paused,
        pause_reason=row.pause_reason,
        has_pin=row.pin_hash is not None,
        team=row.team,
    )


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _customer(row: CustomerRow, *, with_notes: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "phone": row.phone,
        "phones": list(row.phones or []),
        "email": row.email,
        "company": row.company,
        "vip": row.vip,
        "language": row.language,
        "attributes": dict(row.attributes or {}),
    }
    if with_notes:
        out["notes"] = [
            {"id": n.id, "at": _iso(n.at), "author": n.author, "call_id": n.call_id, "text": n.text} for n in row.notes
        ]
    return out


def _call_summary(row: CallRow) -> dict[str, Any]:
    return {
        "call_id": row.id,
        "server": row.server,
        "direction": row.direction,
        "caller_num": row.caller_num,
        "queue": row.queue,
        "agent_id": row.agent_id,
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
        "outcome": row.outcome,
        "disposition": row.disposition,
        "notes": row.notes,
        "talk_time": row.talk_time,
        "duration": _seconds_between(row.started_at, row.ended_at),
    }


def _seconds_between(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _callback(row: CallbackRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_id": row.call_id,
        "caller_num": row.caller_num,
        "number": row.number,
        "queue": row.queue,
        "requested_time": row.requested_time,
        "context": dict(row.context or {}),
        "status": row.status,
        "agent_id": row.agent_id,
        "created_at": _iso(row.created_at),
        "taken_at": _iso(row.taken_at),
        "dialed_at": _iso(row.dialed_at),
        "dial_call_id": row.dial_call_id,
    }


#: ended calls per ORM flush in :meth:`CtiRepository.save_calls` (one await, one hold of the loop, each)
FLUSH_CALLS = 10


def _call_row(call: Call) -> CallRow:
    """The ``cti_calls`` row (with its legs and timeline) of an ended call."""
    customer_id = (call.customer or {}).get("id") if isinstance((call.customer or {}).get("id"), int) else None
    row = CallRow(
        id=call.id,
        server=call.server or None,
        direction=call.direction,
        origin=call.origin,
        caller_num=call.caller_num,
        caller_name=call.caller_name,
        dialed=call.dialed,
        queue=call.queue,
        priority=call.priority,
        agent_id=call.agent_id,
        customer_id=customer_id,
        started_at=_ts(call.started_at),
        queued_at=_ts(call.queued_at),
        answered_at=_ts(call.answered_at),
        ended_at=_ts(call.ended_at),
        hold_time=call.hold_time,
        talk_time=call.talk_time,
        on_hold_seconds=round(call.on_hold_seconds, 3),
        outcome=call.outcome,
        end_cause=call.end_cause,
        end_cause_txt=call.end_cause_txt or None,
        recording=call.recording,
        disposition=call.disposition,
        notes=call.notes,
        agents_rung=list(call.agents_rung),
        transfers=[dict(t) for t in call.transfers],
        ivr_context=call.ivr_context,
    )
    row.legs = [
        CallLegRow(
            uniqueid=l.uniqueid,
            channel=l.channel,
            role=l.role,
            agent_id=l.agent_id,
            created_at=_ts(l.created_at),
            answered_at=_ts(l.answered_at),
            ended_at=_ts(l.ended_at),
            cause=l.cause,
            cause_txt=l.cause_txt or None,
        )
        for l in call.legs.values()
    ]
    row.events = [
        CallEventRow(at=e["at"], event=e["event"], data={k: v for k, v in e.items() if k not in ("at", "event")})
        for e in call.events
    ]
    return row


class CtiRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, cipher: Any = None) -> None:
        self._sm = sessionmaker
        #: security (issue 11): an ``auth.crypto.FieldCipher`` sealing the sensitive customer attributes
        self.cipher = cipher

    def _seal(self, attributes: Any, existing: Any = None) -> dict[str, Any]:
        attrs = dict(attributes or {})
        if self.cipher is None:
            return attrs
        for k in self.cipher.fields & attrs.keys():
            # a masked value sent back unchanged ("**********67") keeps the stored one: never overwrite data with a mask
            if isinstance(attrs[k], str) and attrs[k].startswith("*") and existing and k in existing:
                attrs[k] = existing[k]
        return self.cipher.seal_attributes(attrs)

    def _open(self, customer: dict[str, Any] | None, reveal: bool) -> dict[str, Any] | None:
        if customer is not None and self.cipher is not None:
            customer["attributes"] = self.cipher.open_attributes(customer.get("attributes"), reveal=reveal)
        return customer

    # ------------------------------------------------------------- agents
    async def list_agents(self) -> list[AgentRecord]:
        async with self._sm() as s:
            rows = (await s.scalars(select(AgentRow).order_by(AgentRow.id))).all()
            return [_agent(r) for r in rows]

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        async with self._sm() as s:
            row = await s.get(AgentRow, agent_id)
            return _agent(row) if row else None

    async def create_agent(
        self,
        agent_id: str,
        name: str,
        interface: str,
        *,
        extension: str | None = None,
        role: str = "agent",
        skills: dict[str, int] | None = None,
        pin: str | None = None,
        team: str | None = None,
    ) -> AgentRecord:
        async with self._sm() as s:
            row = AgentRow(
                id=agent_id,
                name=name,
                interface=interface,
                extension=extension,
                role=role,
                team=team,
                pin_hash=await PASSWORDS.hash_async(pin) if pin else None,
                logged_in=False,
                paused=False,
            )
            row.skills = [AgentSkillRow(queue=q, penalty=p) for q, p in (skills or {}).items()]
            s.add(row)
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Duplicate(f"agent {agent_id} or interface {interface} already exists") from exc
            return _agent(row)

    async def update_agent(self, agent_id: str, **fields: Any) -> AgentRecord | None:
        async with self._sm() as s:
            row = await s.get(AgentRow, agent_id)
            if row is None:
                return None
            for key in ("name", "interface", "extension", "role", "team"):
                if fields.get(key) is not None:
                    setattr(row, key, fields[key])
            if fields.get("pin"):
                row.pin_hash = await PASSWORDS.hash_async(fields["pin"])
            if fields.get("skills") is not None:
                row.skills = [AgentSkillRow(queue=q, penalty=p) for q, p in fields["skills"].items()]
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Duplicate("interface already used by another agent") from exc
            await s.refresh(row)
            return _agent(row)

    async def _delete(self, model: type, key: Any) -> bool:
        async with self._sm() as s:
            row = await s.get(model, key)
            if row is None:
                return False
            await s.delete(row)
            await s.commit()
            return True

    async def delete_agent(self, agent_id: str) -> bool:
        return await self._delete(AgentRow, agent_id)

    async def verify_pin(self, agent_id: str, pin: str) -> AgentRecord | None:
        async with self._sm() as s:
            row = await s.get(AgentRow, agent_id)
            if row is None or not row.pin_hash:
                return None
            ok, rehashed = await PASSWORDS.verify_async(pin, row.pin_hash)
            if not ok:
                return None
            if rehashed is not None:  # a PBKDF2 PIN from before Argon2, or changed parameters
                row.pin_hash = rehashed
                await s.commit()
            return _agent(row)

    async def set_agent_state(
        self, agent_id: str, *, logged_in: bool | None = None, paused: bool | None = None, pause_reason: Any = ...
    ) -> None:
        async with self._sm() as s:
            row = await s.get(AgentRow, agent_id)
            if row is None:
                return
            if logged_in is not None:
                row.logged_in = logged_in
            if paused is not None:
                row.paused = paused
            if pause_reason is not ...:
                row.pause_reason = pause_reason
            await s.commit()

    async def add_agent_event(
        self,
        agent_id: str,
        event: str,
        *,
        queue: str | None = None,
        reason: str | None = None,
        call_id: str | None = None,
        by: str | None = None,
    ) -> None:
        async with self._sm() as s:
            s.add(AgentEventRow(agent_id=agent_id, event=event, queue=queue, reason=reason, call_id=call_id, by=by))
            await s.commit()

    async def agent_events(self, agent_id: str, limit: int = 100) -> list[dict[str, Any]]:
        async with self._sm() as s:
            rows = (
                await s.scalars(
                    select(AgentEventRow)
                    .where(AgentEventRow.agent_id == agent_id)
                    .order_by(AgentEventRow.id.desc())
                    .limit(limit)
                )
            ).all()
            return [
                {"at": _iso(r.at), "event": r.event, "queue": r.queue, "reason": r.reason, "call_id": r.call_id, "by": r.by}
                for r in rows
            ]

    # ------------------------------------------------- pause reasons
    async def pause_reasons(self) -> list[dict[str, Any]]:
        async with self._sm() as s:
            rows = (await s.scalars(select(PauseReasonRow).order_by(PauseReasonRow.code))).all()
            return [{"code": r.code, "label": r.label, "active": r.active} for r in rows]

    async def upsert_pause_reason(self, code: str, label: str, active: bool = True) -> None:
        async with self._sm() as s:
            row = await s.get(PauseReasonRow, code)
            if row is None:
                s.add(PauseReasonRow(code=code, label=label, active=active))
            else:
                row.label, row.active = label, active
            await s.commit()

    # ------------------------------------------------- queue settings
    async def queue_settings(self) -> list[QueueSettings]:
        async with self._sm() as s:
            rows = (await s.scalars(select(QueueSettingsRow))).all()
            return [
                QueueSettings(
                    name=r.name,
                    wrapup_seconds=r.wrapup_seconds,
                    service_level_seconds=r.service_level_seconds,
                    overflow_queue=r.overflow_queue,
                    overflow_after_seconds=r.overflow_after_seconds,
                    overflow_when_no_agent=r.overflow_when_no_agent,
                    callback_after_seconds=r.callback_after_seconds,
                    vip_priority=r.vip_priority,
                    repeat_priority=r.repeat_priority,
                    default_handle_seconds=r.default_handle_seconds,
                )
                for r in rows
            ]

    async def save_queue_settings(self, qs: QueueSettings) -> None:
        async with self._sm() as s:
            row = await s.get(QueueSettingsRow, qs.name)
            if row is None:
                row = QueueSettingsRow(name=qs.name)
                s.add(row)
            for key in (
                "wrapup_seconds",
                "service_level_seconds",
                "overflow_queue",
                "overflow_after_seconds",
                "overflow_when_no_agent",
                "callback_after_seconds",
                "vip_priority",
                "repeat_priority",
                "default_handle_seconds",
            ):
                setattr(row, key, getattr(qs, key))
            await s.commit()

    # ------------------------------------------------------------ calls
    async def save_call(self, call: Call) -> None:
        """Persist an ended call (idempotent: a second save replaces the first)."""
        async with self._sm() as s:
            existing = await s.get(CallRow, call.id)
            if existing is not None:
                await s.delete(existing)
                await s.flush()
            s.add(_call_row(call))
            await s.commit()

    async def save_calls(self, calls: "Sequence[Call]") -> None:
        """Persist a batch of ended calls in one transaction (issue 18: a burst of N ended calls
        costs one commit, not N). Idempotent like :meth:`save_call`; a call given twice is stored
        once, its last picture. All or nothing: on an error nothing of the batch is stored, and
        the caller falls back to :meth:`save_call` per call (one bad row never loses the others)."""
        by_id = {c.id: c for c in calls}
        if not by_id:
            return
        async with self._sm() as s:
            existing = (await s.scalars(select(CallRow).where(CallRow.id.in_(list(by_id))))).all()
            for row in existing:
                await s.delete(row)
            if existing:
                await s.flush()
            # flushed a few calls at a time, in the same transaction: the ORM's unit of work runs on
            # the event loop, ~0.35 ms per call (3 legs, 15 events), so a batch of 100 held the loop
            # ~35 ms in one step; chunks of FLUSH_CALLS hold it ~4 ms, still one commit (issue 18)
            calls = list(by_id.values())
            for i in range(0, len(calls), FLUSH_CALLS):
                s.add_all([_call_row(c) for c in calls[i : i + FLUSH_CALLS]])
                await s.flush()
            await s.commit()

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = await s.get(CallRow, call_id)
            if row is None:
                return None
            out = _call_summary(row)
            out.update(
                {
                    "caller_name": row.caller_name,
                    "dialed": row.dialed,
                    "origin": row.origin,
                    "priority": row.priority,
                    "customer_id": row.customer_id,
                    "queued_at": _iso(row.queued_at),
                    "answered_at": _iso(row.answered_at),
                    "hold_time": row.hold_time,
                    "on_hold_seconds": row.on_hold_seconds,
                    "end_cause": row.end_cause,
                    "end_cause_txt": row.end_cause_txt,
                    "recording": row.recording,
                    "agents_rung": list(row.agents_rung or []),
                    "transfers": list(row.transfers or []),
                    "ivr_context": row.ivr_context,
                    "status": "ended",
                    "legs": [
                        {
                            "uniqueid": l.uniqueid,
                            "channel": l.channel,
                            "role": l.role,
                            "agent_id": l.agent_id,
                            "cause": l.cause,
                            "cause_txt": l.cause_txt,
                            "created_at": _iso(l.created_at),
                            "answered_at": _iso(l.answered_at),
                            "ended_at": _iso(l.ended_at),
                        }
                        for l in row.legs
                    ],
                    "events": [{"at": e.at, "event": e.event, **(e.data or {})} for e in row.events],
                }
            )
            return out

    async def list_calls(self, *, limit: int = 50, agent_id: str | None = None, queue: str | None = None) -> list[dict[str, Any]]:
        async with self._sm() as s:
            q = select(CallRow).order_by(CallRow.started_at.desc()).limit(limit)
            if agent_id:
                q = q.where(CallRow.agent_id == agent_id)
            if queue:
                q = q.where(CallRow.queue == queue)
            return [_call_summary(r) for r in (await s.scalars(q)).all()]

    async def previous_calls(self, phone: str, *, limit: int = 10, exclude: str | None = None) -> list[dict[str, Any]]:
        async with self._sm() as s:
            q = select(CallRow).where(CallRow.caller_num == phone).order_by(CallRow.started_at.desc()).limit(limit)
            if exclude:
                q = q.where(CallRow.id != exclude)
            return [_call_summary(r) for r in (await s.scalars(q)).all()]

    async def count_calls_since(self, phone: str, since: datetime) -> int:
        async with self._sm() as s:
            n = await s.scalar(
                select(func.count()).select_from(CallRow).where(CallRow.caller_num == phone, CallRow.started_at >= since)
            )
            return int(n or 0)

    async def queue_outcomes_since(self, since: datetime) -> list[tuple[str, str | None, int | None, float | None]]:
        """(queue, outcome, hold_time, talk_time) of the queue calls started since ``since``."""
        async with self._sm() as s:
            rows = await s.execute(
                select(CallRow.queue, CallRow.outcome, CallRow.hold_time, CallRow.talk_time).where(
                    CallRow.started_at >= since, CallRow.queue.is_not(None)
                )
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows.all()]

    async def set_disposition(self, call_id: str, disposition: str | None, notes: str | None) -> bool:
        async with self._sm() as s:
            row = await s.get(CallRow, call_id)
            if row is None:
                return False
            if disposition is not None:
                row.disposition = disposition
            if notes is not None:
                row.notes = notes
            await s.commit()
            return True

    # -------------------------------------------------------- customers
    async def create_customer(self, *, reveal: bool = False, **fields: Any) -> dict[str, Any]:
        async with self._sm() as s:
            row = CustomerRow(
                name=fields["name"],
                phone=fields["phone"],
                phones=list(fields.get("phones") or []),
                email=fields.get("email"),
                company=fields.get("company"),
                vip=bool(fields.get("vip", False)),
                language=fields.get("language"),
                attributes=self._seal(fields.get("attributes")),
            )
            s.add(row)
            await s.commit()
            await s.refresh(row, ["notes"])
            return self._open(_customer(row), reveal)  # type: ignore[return-value]

    async def get_customer(self, customer_id: int, *, reveal: bool = False) -> dict[str, Any] | None:
        """``reveal``: sensitive attributes in clear (callers pass ``p.can("customers.sensitive")``)."""
        async with self._sm() as s:
            row = await s.get(CustomerRow, customer_id)
            return self._open(_customer(row), reveal) if row else None

    async def list_customers(
        self, *, q: str | None = None, limit: int = 100, only_ids: set[int] | None = None, reveal: bool = False
    ) -> list[dict[str, Any]]:
        """``only_ids``: restrict to these customers (an agent's own, see ``customer_ids_of_agent``)."""
        async with self._sm() as s:
            stmt = select(CustomerRow).order_by(CustomerRow.id).limit(limit)
            if only_ids is not None:
                stmt = stmt.where(CustomerRow.id.in_(sorted(only_ids)))
            if q:
                # the user's text is matched literally: % and _ are not wildcards
                stmt = stmt.where(or_(CustomerRow.name.icontains(q, autoescape=True), CustomerRow.phone.icontains(q, autoescape=True)))
            return [self._open(_customer(r, with_notes=False), reveal) for r in (await s.scalars(stmt)).all()]  # type: ignore[misc]

    async def customer_ids_of_agent(self, agent_id: str) -> set[int]:
        """The customers of the calls an agent took (security: agents see only these)."""
        async with self._sm() as s:
            rows = await s.scalars(
                select(CallRow.customer_id).where(CallRow.agent_id == agent_id, CallRow.customer_id.is_not(None)).distinct()
            )
            return {int(r) for r in rows.all()}

    async def update_customer(self, customer_id: int, *, reveal: bool = False, **fields: Any) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = await s.get(CustomerRow, customer_id)
            if row is None:
                return None
            if fields.get("attributes") is not None:
                fields["attributes"] = self._seal(fields["attributes"], row.attributes)
            for key in ("name", "phone", "phones", "email", "company", "vip", "language", "attributes"):
                if key in fields and fields[key] is not None:
                    setattr(row, key, fields[key])
            await s.commit()
            await s.refresh(row, ["notes"])
            return self._open(_customer(row), reveal)

    async def delete_customer(self, customer_id: int) -> bool:
        return await self._delete(CustomerRow, customer_id)

    async def find_customer_by_phone(self, phone: str) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = (
                await s.scalars(select(CustomerRow).where(CustomerRow.phone == phone).order_by(CustomerRow.id).limit(1))
            ).first()
            if row is None:
                # secondary numbers live in a JSON list: portable scan of the candidates
                rows = (await s.scalars(select(CustomerRow).where(CustomerRow.phones.is_not(None)))).all()
                row = next((r for r in rows if phone in (r.phones or [])), None)
            return self._open(_customer(row), False) if row else None  # pops: sensitive fields masked

    async def add_customer_note(self, customer_id: int, text: str, *, author: str | None, call_id: str | None) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = await s.get(CustomerRow, customer_id)
            if row is None:
                return None
            note = CustomerNoteRow(customer_id=customer_id, text=text, author=author, call_id=call_id)
            s.add(note)
            await s.commit()
            return {"id": note.id, "at": _iso(note.at), "author": author, "call_id": call_id, "text": text}

    # -------------------------------------------------------- callbacks
    async def create_callback(
        self,
        *,
        call_id: str | None,
        caller_num: str | None,
        number: str,
        queue: str,
        requested_time: str | None,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        async with self._sm() as s:
            row = CallbackRow(
                id=uuid.uuid4().hex[:16],
                call_id=call_id,
                caller_num=caller_num,
                number=number,
                queue=queue,
                requested_time=requested_time,
                context=_jsonable(context),
                status="open",
            )
            s.add(row)
            await s.commit()
            return _callback(row)

    async def get_callback(self, callback_id: str) -> dict[str, Any] | None:
        async with self._sm() as s:
            row = await s.get(CallbackRow, callback_id)
            return _callback(row) if row else None

    async def list_callbacks(self, *, status: str | None = None, queues: list[str] | None = None) -> list[dict[str, Any]]:
        async with self._sm() as s:
            stmt = select(CallbackRow).order_by(CallbackRow.created_at)
            if status:
                stmt = stmt.where(CallbackRow.status == status)
            if queues is not None:
                stmt = stmt.where(CallbackRow.queue.in_(queues))
            return [_callback(r) for r in (await s.scalars(stmt)).all()]

    async def take_callback(self, callback_id: str, agent_id: str) -> dict[str, Any] | None:
        """Atomically assign an open callback; None if it is not open any more."""
        async with self._sm() as s:
            res = await s.execute(
                update(CallbackRow)
                .where(CallbackRow.id == callback_id, CallbackRow.status == "open")
                .values(status="taken", agent_id=agent_id, taken_at=datetime.now(timezone.utc))
            )
            await s.commit()
            if res.rowcount != 1:
                return None
            row = await s.get(CallbackRow, callback_id)
            return _callback(row) if row else None

    async def mark_callback(self, callback_id: str, status: str, *, dial_call_id: str | None = None) -> None:
        async with self._sm() as s:
            row = await s.get(CallbackRow, callback_id)
            if row is None:
                return
            row.status = status
            if status == "dialing":
                row.dialed_at = datetime.now(timezone.utc)
            if dial_call_id:
                row.dial_call_id = dial_call_id
            await s.commit()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def since_hours(hours: int, now: float) -> datetime:
    return datetime.fromtimestamp(now, timezone.utc) - timedelta(hours=hours)
