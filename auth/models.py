"""Auth tables: user accounts (besides agents, who log in with their PIN), API keys
(hashes only) and revoked token ids. Every table name starts with ``auth_``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base, utcnow


class UserRow(Base):
    __tablename__ = "auth_users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the login name
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)  # scope; empty: every queue
    teams: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the agent this user acts as
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "auth_api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    scopes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)  # None: every permission of the role
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginThrottleRow(Base):
    """The login throttle's state, shared by every callcore instance on the database (issue 11):
    one row per (kind, key) — an account or a client address — with its recent failure times
    and the end of its lockout (wall-clock epoch seconds)."""

    __tablename__ = "auth_login_throttle"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # account | address
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0, index=True)


class RevokedTokenRow(Base):
    __tablename__ = "auth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
