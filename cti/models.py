"""CTI tables (portable types only: they run on SQLite and PostgreSQL).

Agents and their skills, pause reasons, per-queue behaviour, ended calls with
their legs and timeline, agent events, the built-in CRM (customers, notes) and
callbacks. Every table name starts with ``cti_``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcore.db import Base, utcnow


class AgentRow(Base):
    __tablename__ = "cti_agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    extension: Mapped[str | None] = mapped_column(String(64), nullable=True)
    interface: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="agent")  # agent | supervisor | admin
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # the desired state callcore enforces on Asterisk (re-applied on resync)
    logged_in: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the team a supervisor with a team scope may supervise (auth/scope.py, issue 11)
    team: Mapped[str | None] = mapped_column(String(64), nullable=True)

    skills: Mapped[list["AgentSkillRow"]] = relationship(
        back_populates="agent", cascade="all, delete-orphan", lazy="selectin", order_by="AgentSkillRow.queue"
    )


class AgentSkillRow(Base):
    __tablename__ = "cti_agent_skills"
    __table_args__ = (UniqueConstraint("agent_id", "queue", name="agent_queue"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("cti_agents.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str] = mapped_column(String(80))
    penalty: Mapped[int] = mapped_column(Integer, default=0)

    agent: Mapped[AgentRow] = relationship(back_populates="skills")


class AgentEventRow(Base):
    __tablename__ = "cti_agent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(40))  # login | logout | pause | unpause | wrapup | ready | ...
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(80), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who did it (supervisor force ops)


class PauseReasonRow(Base):
    __tablename__ = "cti_pause_reasons"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class QueueSettingsRow(Base):
    __tablename__ = "cti_queue_settings"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    wrapup_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)
    overflow_queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    overflow_after_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    overflow_when_no_agent: Mapped[bool] = mapped_column(Boolean, default=True)
    callback_after_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True, default=300)
    vip_priority: Mapped[int] = mapped_column(Integer, default=10)
    repeat_priority: Mapped[int] = mapped_column(Integer, default=5)
    default_handle_seconds: Mapped[int] = mapped_column(Integer, default=180)


class CallRow(Base):
    __tablename__ = "cti_calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Linkedid
    #: the Asterisk server the call lived on (issue 19; settings ami_servers / ami_name); None: stored before 0022
    server: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(String(40), nullable=True)
    caller_num: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    caller_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dialed: Mapped[str | None] = mapped_column(String(80), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hold_time: Mapped[int | None] = mapped_column(Integer, nullable=True)  # seconds waiting in the queue (app_queue HoldTime)
    talk_time: Mapped[int | None] = mapped_column(Integer, nullable=True)
    on_hold_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # time the agent held the caller
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    end_cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    end_cause_txt: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    disposition: Mapped[str | None] = mapped_column(String(80), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    agents_rung: Mapped[list[Any]] = mapped_column(JSON, default=list)
    transfers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    ivr_context: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    legs: Mapped[list["CallLegRow"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CallLegRow.id"
    )
    events: Mapped[list["CallEventRow"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CallEventRow.id"
    )


class CallLegRow(Base):
    __tablename__ = "cti_call_legs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("cti_calls.id", ondelete="CASCADE"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cause_txt: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CallEventRow(Base):
    __tablename__ = "cti_call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("cti_calls.id", ondelete="CASCADE"), index=True)
    at: Mapped[float] = mapped_column(Float)
    event: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CustomerRow(Base):
    __tablename__ = "cti_customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(64), index=True)
    phones: Mapped[list[Any]] = mapped_column(JSON, default=list)  # other numbers
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    company: Mapped[str | None] = mapped_column(String(200), nullable=True)
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    notes: Mapped[list["CustomerNoteRow"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin", order_by="CustomerNoteRow.id"
    )


class CustomerNoteRow(Base):
    __tablename__ = "cti_customer_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("cti_customers.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text)

    customer: Mapped[CustomerRow] = relationship(back_populates="notes")


class CallbackRow(Base):
    __tablename__ = "cti_callbacks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller_num: Mapped[str | None] = mapped_column(String(64), nullable=True)
    number: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(80), index=True)
    requested_time: Mapped[str | None] = mapped_column(String(80), nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | taken | dialing | done | cancelled
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    dialed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    dial_call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
