"""Recording tables (portable types; every table name starts with ``recording_``).

* ``recording_recordings`` — one row per recorded call: the metadata QA and search
  need, processing results, storage location, retention and legal hold. The row
  outlives its audio (purge and data-subject deletes keep it, marked).
* ``recording_jobs`` — the durable post-processing queue (one job per recording
  and kind; retried with backoff; survives a restart).
* ``recording_keys`` — the wrapped per-file data key; deleting the row is the
  crypto-erase.
* ``recording_facets`` — agents, queues, IVR nodes and tags of each recording (indexed search keys).
* ``recording_waveforms`` — the peaks for the player (kept apart: search never loads them).
* ``recording_events`` — pause/resume and other recording events (who, when, why).
* ``recording_access_log`` — every play, download and waveform read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base, utcnow

# statuses of a recording
RECORDING = "recording"  # the PBX is writing it
PENDING = "pending"  # ended, waiting for post-processing
READY = "ready"
FAILED = "failed"  # missing / empty / corrupt / truncated audio: see status_reason
DISCARDED = "discarded"  # nothing to keep (unanswered call, policy said no)
PURGED = "purged"  # audio deleted past retention; metadata kept
DELETED = "deleted"  # audio deleted on request (data-subject request); metadata kept
STATUSES = (RECORDING, PENDING, READY, FAILED, DISCARDED, PURGED, DELETED)


class RecordingRow(Base):
    __tablename__ = "recording_recordings"
    __table_args__ = (
        Index("ix_recording_recordings_started_id", "started_at", "id"),
        Index("ix_recording_recordings_agent_started", "agent_id", "started_at"),
        Index("ix_recording_recordings_queue_started", "queue", "started_at"),
        Index("ix_recording_recordings_status_retention", "status", "retention_until"),
        # search (migration 0017, benchmarks/recording_search.py): an equality filter + newest first walks
        # (column, started_at, id) in order and stops at the page size, at a million rows too
        Index("ix_recording_recordings_caller_started", "caller_num", "started_at", "id"),
        Index("ix_recording_recordings_called_started", "called", "started_at", "id"),
        Index("ix_recording_recordings_direction_started", "direction", "started_at", "id"),
        Index("ix_recording_recordings_disposition_started", "disposition", "started_at", "id"),
        Index("ix_recording_recordings_muted_started", "muted", "started_at", "id"),
        Index("ix_recording_recordings_qa_started", "qa_sample", "started_at", "id"),
        # migration 0024 (issue 18): a duration filter + newest first, and longest first in a time range,
        # check the other column in the index entry instead of fetching every skipped row
        Index("ix_recording_recordings_started_duration", "started_at", "id", "duration"),
        Index("ix_recording_recordings_duration_started", "duration", "id", "started_at"),
        # migration 0025 (issue 19): the Asterisk server of the call, an equality filter + newest first
        Index("ix_recording_recordings_server_started", "server", "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)  # the Linkedid
    #: the Asterisk server the call lived on (issue 19, ``Call.server``; ``cti_calls.server``); NULL when
    #: not known (one unnamed server in a test, or a call whose row never reached cti_calls before 0025)
    server: Mapped[str | None] = mapped_column(String(40), nullable=True)
    uniqueids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    caller_num: Mapped[str | None] = mapped_column(String(80), nullable=True)
    caller_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    called: Mapped[str | None] = mapped_column(String(80), nullable=True)
    direction: Mapped[str] = mapped_column(String(20), default="inbound")
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the first agent who answered
    agents: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{agent_id, from, to}] offsets from start
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recording_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    late_start: Mapped[bool] = mapped_column(Boolean, default=False)
    late_start_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    wait_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    hold_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(80), nullable=True)
    ivr_context: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ivr_path: Mapped[list[Any]] = mapped_column(JSON, default=list)  # ["main:welcome", "main:menu", ...]
    flow_version: Mapped[str | None] = mapped_column(String(80), nullable=True)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    muted_spans: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{start, end, by, reason}] seconds
    #: holds from CTI (call.held / call.unheld): [{start, end, seconds, at}]; start/end in file seconds
    #: (with option b the file does not grow on hold, so start == end), seconds = how long the caller
    #: waited on hold; NULL for rows written before migration 0021 (not known)
    hold_spans: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    channel: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the channel MixMonitor runs on
    source_file: Mapped[str | None] = mapped_column(String(500), nullable=True)  # what the PBX wrote
    format: Mapped[str | None] = mapped_column(String(10), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    storage_backend: Mapped[str | None] = mapped_column(String(20), nullable=True)
    storage_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    audio: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # peak/RMS/talk ratio per channel
    status: Mapped[str] = mapped_column(String(20), default=RECORDING, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the decision and its rules
    retention_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    qa_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    removed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordingFacetRow(Base):
    """The many-valued search keys of a recording — every agent, queue, IVR node and tag —
    one row each, with the recording's start, so ``agent=1002`` (or ``queue``, ``ivr_node``,
    ``tag``) sorted by time is an index range scan at any table size, not a LIKE over a
    million rows (:meth:`recording.repository.RecordingRepository.search`)."""

    __tablename__ = "recording_facets"
    __table_args__ = (
        UniqueConstraint("recording_id", "kind", "value"),
        Index("ix_recording_facets_lookup", "kind", "value", "started_at", "recording_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording_recordings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # agent | queue | node | tag
    value: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordingJobRow(Base):
    __tablename__ = "recording_jobs"
    __table_args__ = (UniqueConstraint("recording_id", "kind"), Index("ix_recording_jobs_due", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording_recordings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="process")
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordingKeyRow(Base):
    __tablename__ = "recording_keys"

    recording_id: Mapped[int] = mapped_column(ForeignKey("recording_recordings.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))  # which master key wrapped it
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordingWaveformRow(Base):
    __tablename__ = "recording_waveforms"

    recording_id: Mapped[int] = mapped_column(ForeignKey("recording_recordings.id", ondelete="CASCADE"), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
    peaks: Mapped[list[Any]] = mapped_column(JSON)  # per channel: [[0..1] * points]


class RecordingEventRow(Base):
    __tablename__ = "recording_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))  # paused | resumed | auto_resumed | hold | unhold | deleted | purged ...
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RecordingAccessRow(Base):
    __tablename__ = "recording_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: the log outlives nothing, keeps everything
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))  # play | download | waveform
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)
    range: Mapped[str | None] = mapped_column(String(100), nullable=True)
