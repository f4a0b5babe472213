"""Shared fixtures.

The database backend under test is chosen by ``CALLCORE_TEST_DATABASE_URL``
(set by ``scripts/test`` for the PostgreSQL leg); by default each test gets a
fresh SQLite file. Unit tests get tables from ``Base.metadata.create_all``;
the migration tests (tests/unit/callcore/test_migrations.py) prove that the
Alembic history yields the same schema.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from callcore.db import Base, create_engine, import_all_models, session_factory

CAPTURES = Path(__file__).resolve().parent / "fixtures" / "asterisk-captures"

# security (issue 11): servers the tests start bind loopback and run in dev mode (generated signing
# key, `change-me` secrets allowed); the tests of the refusal itself set dev_mode=False explicitly.
os.environ.setdefault("CALLCORE_DEV_MODE", "1")


def test_database_url(tmp_path: Path) -> str:
    url = os.environ.get("CALLCORE_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def captures_dir() -> Path:
    return CAPTURES


@pytest.fixture
async def db_engine(tmp_path: Path) -> AsyncEngine:
    """An engine on an empty schema (all tables of all packages) on the backend under test."""
    import_all_models()
    url = test_database_url(tmp_path)
    engine = create_engine(url)
    schema = None
    if url.startswith("postgresql"):
        # isolate each test in its own schema on the throwaway database
        schema = "t_" + uuid.uuid4().hex[:12]
        from sqlalchemy import text

        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await engine.dispose()
        engine = create_engine_with_schema(url, schema)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()
        if schema is not None:
            await _drop_schema(url, schema)


async def _drop_schema(url: str, schema: str) -> None:
    """Best-effort cleanup of a test's schema. A background task of the test's app may still
    hold a lock on one of its tables for a moment (PostgreSQL then reports a deadlock or a lock
    timeout); the whole throwaway database is dropped at the end of the leg (scripts/test-pg), so
    a schema left behind costs nothing and must not fail the test."""
    from sqlalchemy import exc, text

    engine = create_engine(url)
    try:
        for _ in range(3):
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                return
            except exc.DBAPIError:
                continue
    finally:
        await engine.dispose()


def create_engine_with_schema(url: str, schema: str) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})


@pytest.fixture
def db_sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker:
    return session_factory(db_engine)


# --------------------------------------------------------------------------- db marker
#: tests using any of these fixtures touch the database and are re-run on PostgreSQL
DB_FIXTURES = {"db_engine", "db_sessionmaker", "empty_database_url", "migrated_database_url", "server", "live_server"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture
async def empty_database_url(tmp_path: Path):
    """URL of a database with nothing in it, on the backend under test (a new
    PostgreSQL database, dropped afterwards; or a new SQLite file)."""
    url = os.environ.get("CALLCORE_TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    import asyncpg

    base, _, _ = url.rpartition("/")
    admin_dsn = base.replace("postgresql+asyncpg:", "postgresql:") + "/postgres"
    name = "cc_empty_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# --------------------------------------------------------------------------- migrated databases
#: per test process: a database (PostgreSQL) or file (SQLite) migrated to head once, copied for
#: every test that needs a migrated store. Migrating costs ~0.8 s a test on either store; a copy
#: (CREATE DATABASE … TEMPLATE, or a file copy) costs ~0.1 s. The migrations themselves are tested
#: on empty databases in tests/unit/callcore/test_migrations.py, and the SQLite self-upgrade at
#: start-up still runs (a no-op at head) in every server the tests start.
_TEMPLATES: dict[str, str] = {}


async def _pg_template(url: str) -> str:
    import asyncio

    import asyncpg

    from callcore import migrate

    base, _, _ = url.rpartition("/")
    if base in _TEMPLATES:
        return _TEMPLATES[base]
    admin_dsn = base.replace("postgresql+asyncpg:", "postgresql:") + "/postgres"
    name = f"cc_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await asyncio.to_thread(migrate.upgrade, f"{base}/{name}")
    _TEMPLATES[base] = name
    return name


def _sqlite_template() -> Path:
    import tempfile

    from callcore import migrate

    if "sqlite" not in _TEMPLATES:
        path = Path(tempfile.mkdtemp(prefix="callcore-tpl-")) / "template.db"
        migrate.upgrade(f"sqlite+aiosqlite:///{path}")
        _TEMPLATES["sqlite"] = str(path)
    return Path(_TEMPLATES["sqlite"])


@pytest.fixture
async def migrated_database_url(tmp_path: Path):
    """URL of a database already migrated to head, on the backend under test (a copy of this
    process's template: a new PostgreSQL database dropped afterwards, or a new SQLite file)."""
    url = os.environ.get("CALLCORE_TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        import asyncio
        import shutil

        target = tmp_path / "migrated.db"
        template = await asyncio.to_thread(_sqlite_template)
        await asyncio.to_thread(shutil.copyfile, template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    import asyncio

    import asyncpg

    template = await _pg_template(url)
    base, _, _ = url.rpartition("/")
    admin_dsn = base.replace("postgresql+asyncpg:", "postgresql:") + "/postgres"
    name = "cc_mig_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(20):
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:  # a connection to the template is still closing
                if attempt == 19:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def pytest_sessionfinish(session, exitstatus):
    """Drop this process's PostgreSQL templates and SQLite template file."""
    import shutil

    sqlite = _TEMPLATES.pop("sqlite", None)
    if sqlite:
        shutil.rmtree(Path(sqlite).parent, ignore_errors=True)
    if not _TEMPLATES:
        return
    import asyncio

    import asyncpg

    async def drop() -> None:
        for base, name in _TEMPLATES.items():
            admin_dsn = base.replace("postgresql+asyncpg:", "postgresql:") + "/postgres"
            conn = await asyncpg.connect(admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

    try:
        asyncio.run(drop())
    except Exception:  # best effort: the leg's throwaway databases live on a test server
        pass
    _TEMPLATES.clear()
