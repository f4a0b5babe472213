"""Report tables (portable types only). Every table name starts with ``report_``.

* ``report_facts`` — the append-only fact store: one row per fact, unique ``key``
  (a second write of the same fact is ignored), ``anchor_at`` = the time it is reported
  at (a queue visit: when the caller entered the queue), epoch seconds.
* ``report_rollups`` — aggregates per queue and 15-minute slot (``span`` = ``15min``) and per
  day of the center (``span`` = ``day``: a year is 365 rows per queue, not 35,040), built
  from the facts (rebuildable at any time: ``callcore report rebuild``); ``config`` records
  the queue settings they were built with, so a changed threshold never mixes with old rollups.
* ``report_agent_rollups`` — per agent and day of the center: the sums behind the agent report
  (calls, talk, hold, wrap-up, login and pause seconds, survey answers, recording and QA
  counts), so a month per agent reads 30 rows an agent, not every fact of the month. A row
  with ``agent_id`` "" marks a day rolled up with no agent activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base, utcnow


class FactRow(Base):
    __tablename__ = "report_facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[float] = mapped_column(Float)
    anchor_at: Mapped[float] = mapped_column(Float, index=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RollupRow(Base):
    __tablename__ = "report_rollups"
    __table_args__ = (UniqueConstraint("span", "interval_start", "queue", name="span_interval_queue"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    span: Mapped[str] = mapped_column(String(8), default="15min")  # 15min | day
    interval_start: Mapped[float] = mapped_column(Float, index=True)  # epoch seconds: a slot's / a local day's start
    queue: Mapped[str] = mapped_column(String(80))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # QueueMetrics fields
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentRollupRow(Base):
    __tablename__ = "report_agent_rollups"
    __table_args__ = (UniqueConstraint("interval_start", "agent_id", name="agent_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interval_start: Mapped[float] = mapped_column(Float, index=True)  # a local day's start (epoch seconds)
    agent_id: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
