"""``AuditLog``: the one service every package records security-relevant actions with.

    await audit.record(principal, "calls.spy", target=call_id, details={"mode": "barge"})

``actor`` is a :class:`~auth.tokens.Principal` (recorded as ``role:subject``) or a
string (``"system"``, ``"ip:203.0.113.9"``). Rows are chained:
``hash = sha256(prev_hash || canonical JSON of the row)``; :meth:`verify` recomputes
the chain and names the first row that does not match (edited, inserted or deleted
in the middle). Records are serialised per process by a lock; the chain head is read
inside the same transaction.

Call-path code records *after* the AMI action (telephony never waits on bookkeeping);
:meth:`record` never raises into the caller: a failed write is logged and counted
(``failures``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import select

from audit.models import AuditRow

log = logging.getLogger("callcore.audit")

GENESIS = "0" * 64


def actor_name(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:120]
    subject, role = getattr(actor, "subject", None), getattr(actor, "role", None)
    if subject is not None:
        return f"{role}:{subject}"[:120]
    return str(actor)[:120]


def row_hash(prev_hash: str, *, id: int, at: datetime, actor: str, action: str, target: str | None, details: Any) -> str:
    body = json.dumps(
        {"id": id, "at": _iso(at), "actor": actor, "action": action, "target": target, "details": details},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _iso(at: datetime) -> str:
    if at.tzinfo is None:  # SQLite hands naive datetimes back
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_id": self.first_bad_id, "reason": self.reason}


class AuditLog:
    def __init__(self, sessionmaker: Any, *, clock: Callable[[], datetime] | None = None) -> None:
        self._sm = sessionmaker
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = asyncio.Lock()
        self.recorded = 0
        self.failures = 0

    async def record(self, actor: Any, action: str, target: Any = None, details: dict[str, Any] | None = None) -> int | None:
        """Append one entry; returns its id (None if the write failed — logged, counted)."""
        try:
            return await self._append(actor_name(actor), action[:80], None if target is None else str(target)[:200], details or {})
        except Exception:
            self.failures += 1
            log.exception("audit: could not record %s", action)
            return None

    async def _append(self, actor: str, action: str, target: str | None, details: dict[str, Any]) -> int:
        details = json.loads(json.dumps(details, default=str))  # what the JSON column will hand back
        at = self._clock().astimezone(timezone.utc)
        async with self._lock:
            async with self._sm() as s, s.begin():
                last = (await s.execute(select(AuditRow.id, AuditRow.hash).order_by(AuditRow.id.desc()).limit(1))).first()
                prev = last.hash if last else GENESIS
                next_id = (last.id + 1) if last else 1
                digest = row_hash(prev, id=next_id, at=at, actor=actor, action=action, target=target, details=details)
                s.add(AuditRow(id=next_id, at=at, actor=actor, action=action, target=target, details=details, prev_hash=prev, hash=digest))
        self.recorded += 1
        return next_id

    async def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if actor:
            stmt = stmt.where(AuditRow.actor == actor)
        if action:
            # "calls." matches every calls.* action
            stmt = stmt.where(AuditRow.action.startswith(action, autoescape=True) if action.endswith(".") else AuditRow.action == action)
        if target:
            stmt = stmt.where(AuditRow.target == target)
        if since:
            stmt = stmt.where(AuditRow.at >= since)
        if until:
            stmt = stmt.where(AuditRow.at < until)
        if before_id:
            stmt = stmt.where(AuditRow.id < before_id)
        async with self._sm() as s:
            rows = (await s.scalars(stmt)).all()
        return [
            {"id": r.id, "at": _iso(r.at), "actor": r.actor, "action": r.action, "target": r.target, "details": r.details, "hash": r.hash}
            for r in rows
        ]

    async def verify(self, batch: int = 1000) -> VerifyResult:
        prev, checked, after = GENESIS, 0, 0
        async with self._sm() as s:
            while True:
                rows = (await s.scalars(select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id).limit(batch))).all()
                if not rows:
                    return VerifyResult(True, checked)
                for r in rows:
                    if r.prev_hash != prev:
                        return VerifyResult(False, checked, r.id, "previous-hash link broken (a row before it was removed or changed)")
                    expect = row_hash(prev, id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target, details=r.details)
                    if expect != r.hash:
                        return VerifyResult(False, checked, r.id, "row content does not match its hash (edited)")
                    prev, checked, after = r.hash, checked + 1, r.id


async def record_from(request: Any, actor: Any, action: str, target: Any = None, details: dict[str, Any] | None = None) -> None:
    """Record through the app's audit log (``app.state.audit``); apps assembled without one
    (unit tests of a single router) record nothing."""
    audit = getattr(request.app.state, "audit", None)
    if audit is not None:
        await audit.record(actor, action, target, details)
