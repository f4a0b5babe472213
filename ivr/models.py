"""IVR tables (on the shared :class:`callcore.db.Base`; portable types only).

* ``dialplan_versions`` — every flow version ever loaded: content hash,
  source text and the holiday files it included; ``active`` marks the one
  serving new calls.
* ``ivr_sessions`` — one row per IVR run (per call leg entering the IVR):
  the flow and version hash it ran, outcome, queue, the IVR context (JSON).
* ``ivr_steps`` — the per-call step log (node, offset and duration in ms,
  input, result) used for drop-off statistics.
* ``ivr_survey_answers`` — post-call survey answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcore.db import Base, utcnow


class DialplanVersionRow(Base):
    __tablename__ = "dialplan_versions"
    __table_args__ = (UniqueConstraint("flow", "content_hash", name="uq_dialplan_versions_flow_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow: Mapped[str] = mapped_column(String(100), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(Text)
    includes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class IvrSessionRow(Base):
    __tablename__ = "ivr_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    channel: Mapped[str | None] = mapped_column(String(128), nullable=True)
    caller: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dialed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    flow: Mapped[str] = mapped_column(String(100))
    version_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: queue | hangup | callback | voicemail | caller_hangup | error; NULL while running
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    end_node: Mapped[str | None] = mapped_column(String(200), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(100), nullable=True)
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    steps: Mapped[list["IvrStepRow"]] = relationship(back_populates="session", order_by="IvrStepRow.seq", cascade="all, delete-orphan")


class IvrStepRow(Base):
    __tablename__ = "ivr_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("ivr_sessions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    flow: Mapped[str] = mapped_column(String(100))
    node: Mapped[str] = mapped_column(String(100))
    node_type: Mapped[str] = mapped_column(String(20))
    started_ms: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    input: Mapped[str | None] = mapped_column(String(200), nullable=True)
    result: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")

    session: Mapped[IvrSessionRow] = relationship(back_populates="steps")


class SurveyAnswerRow(Base):
    __tablename__ = "ivr_survey_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("ivr_sessions.id", ondelete="CASCADE"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    flow: Mapped[str] = mapped_column(String(100))
    question: Mapped[str] = mapped_column(String(100))
    answer: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
