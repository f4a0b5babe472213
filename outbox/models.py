"""Outbox tables (portable types: SQLite and PostgreSQL). Table names start with ``outbox_``."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)


class WebhookDeliveryRow(Base):
    """One webhook POST to one hook. ``id`` is sent as ``X-Callcore-Delivery`` on every
    attempt, so a receiver can drop the duplicates of an at-least-once delivery."""

    __tablename__ = "outbox_webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hook_url: Mapped[str] = mapped_column(String(500))
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON bytes signed and sent (UTF-8)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[float] = mapped_column(Float)  # epoch seconds
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_outbox_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "hook_url": self.hook_url,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
        }
