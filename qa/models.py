"""QA tables (one Alembic history: ``callcore/migrations/versions/0007_qa.py``).

Recordings are referenced by id (``recording_id``, the recording API's id) and
the call's id; there is no foreign key so QA does not depend on the recording
package's schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base, utcnow


class QaFormVersionRow(Base):
    __tablename__ = "qa_form_versions"
    __table_args__ = (UniqueConstraint("form_id", "hash", name="form_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    form_id: Mapped[str] = mapped_column(String(100), index=True)
    hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    file: Mapped[str] = mapped_column(String(300), default="")
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QaEvaluationRow(Base):
    __tablename__ = "qa_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(String(100), index=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    #: the recording's queue when it was scored: queue-scoped QA users see only theirs (issue 11)
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    evaluator: Mapped[str] = mapped_column(String(100), index=True)
    form_id: Mapped[str] = mapped_column(String(100))
    form_hash: Mapped[str] = mapped_column(String(64))
    # draft | submitted | acknowledged | disputed | resolved
    state: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    total: Mapped[float | None] = mapped_column(Float, nullable=True)
    band: Mapped[str | None] = mapped_column(String(64), nullable=True)
    critical_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    calibration_id: Mapped[int | None] = mapped_column(ForeignKey("qa_calibrations.id", ondelete="CASCADE"), nullable=True, index=True)
    work_item_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    respond_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disputed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    dispute_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)  # upheld | changed
    resolution_comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class QaRevisionRow(Base):
    """Every version of an evaluation's content; the evaluation row points at the newest."""

    __tablename__ = "qa_evaluation_revisions"
    __table_args__ = (UniqueConstraint("evaluation_id", "revision", name="evaluation_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    score: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QaHistoryRow(Base):
    """The evaluation's audit trail: who did what when (created, saved, submitted, revised, ...)."""

    __tablename__ = "qa_evaluation_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class QaWorkItemRow(Base):
    __tablename__ = "qa_work_items"
    __table_args__ = (UniqueConstraint("recording_id", name="recording"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(String(100))
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    form_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    period: Mapped[str] = mapped_column(String(20), index=True)
    rule: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    also: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evaluator: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    assigned_on: Mapped[str | None] = mapped_column(String(10), nullable=True)  # ISO day (daily caps)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    evaluation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class QaCalibrationRow(Base):
    __tablename__ = "qa_calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    form_id: Mapped[str] = mapped_column(String(100))
    form_hash: Mapped[str] = mapped_column(String(64))
    recording_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evaluators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expert: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QaWorkListRunRow(Base):
    """One row per scheduled work-list build (``run_key`` = ``worklist:<period key>``), written in
    the same transaction as its work items: a second instance or a restart that builds the same
    period conflicts on the key and adds nothing (see qa/scheduler.py)."""

    __tablename__ = "qa_worklist_runs"

    run_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    picked: Mapped[int] = mapped_column(Integer, default=0)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
