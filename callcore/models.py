"""Tables of the shared package: the cluster leases (issue 19, callcore/lease.py)."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcore.db import Base


class ClusterLease(Base):
    """One row per leased duty (``ami:<endpoint>``): who holds it until when (wall-clock
    seconds of the holder's clock), renewed by the holder's heartbeat; ``epoch`` grows by one
    at every change of holder (a fencing number for logs and the readiness report)."""

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    heartbeat_at: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
