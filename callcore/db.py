"""Database plumbing shared by every domain package.

Every domain's ``models.py`` declares its tables on :class:`Base`, so one
metadata (and one Alembic history in ``callcore/migrations``) covers them all.
SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) the
production store. Use only portable column types (``JSON`` not ``JSONB``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """The engine of ``url``; ``pool_size``/``max_overflow`` size a PostgreSQL pool (e.g. one
    connection of its own for the cluster lease's heartbeat)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def import_all_models() -> None:
    """Import every ``models`` module so ``Base.metadata`` knows all tables."""
    import importlib

    for mod in ("ivr.models", "cti.models", "recording.models", "auth.models", "audit.models", "reports.models", "kb.models",
                "qa.models", "outbox.models", "callcore.models"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a package without tables yet
            if exc.name != mod:
                raise
