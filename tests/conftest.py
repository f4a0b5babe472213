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


def _admin_dsn(url: str) -> str:
    """The maintenance database of the PostgreSQL server of ``url`` (an asyncpg DSN)."""
    base, _, _ = url.rpartition("/")
    return base.replace("postgresql+asyncpg:", "postgresql:") + "/postgres"


async def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _pg_database(url: str, prefix: str, template: str | None = None):
    """Create a database on the server of ``url`` (a copy of ``template`` if given); returns its
    URL and the statement that drops it."""
    import asyncio

    import asyncpg

    base, _, _ = url.rpartition("/")
    name = prefix + uuid.uuid4().hex[:12]
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(20):
        try:
            await _pg_admin(url, create)
            break
        except asyncpg.ObjectInUseError:  # a connection to the template is still closing
            if attempt == 19:
                raise
            await asyncio.sleep(0.1)
    return f"{base}/{name}", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


class _Dropper:
    """Drops the tests' throwaway PostgreSQL databases on a thread of its own, so no test waits
    for it. ``DROP DATABASE`` makes the server run an immediate checkpoint and wait for its fsync:
    1–4 s a drop on a busy 2-core machine, which used to be the longest step of most e2e tests'
    teardown on PostgreSQL (~100 drops a leg). The test's own connections are closed before the
    drop is queued; the session's end waits for the queue to empty (``pytest_sessionfinish``)."""

    def __init__(self) -> None:
        import queue

        self._queue: "queue.Queue[tuple[str, str] | None]" = queue.Queue()
        self._thread = None

    def drop(self, url: str, statement: str) -> None:
        import threading

        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="test-db-dropper", daemon=True)
            self._thread.start()
        self._queue.put((url, statement))

    def _run(self) -> None:
        import asyncio

        while (item := self._queue.get()) is not None:
            try:
                asyncio.run(_pg_admin(*item))
            except Exception as exc:  # best effort: a leftover test database, said once
                print(f"tests: could not drop a throwaway database ({exc!r})", flush=True)

    def join(self, timeout: float = 120.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None


_DROPPER = _Dropper()


@pytest.fixture
async def empty_database_url(tmp_path: Path):
    """URL of a database with nothing in it, on the backend under test (a new
    PostgreSQL database, dropped afterwards; or a new SQLite file)."""
    url = os.environ.get("CALLCORE_TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    db_url, drop = await _pg_database(url, "cc_empty_")
    try:
        yield db_url
    finally:
        _DROPPER.drop(url, drop)


# --------------------------------------------------------------------------- migrated databases
#: per test process: a database (PostgreSQL) or file (SQLite) migrated to head once, copied for
#: every test that needs a migrated store. Migrating costs ~0.8 s a test on either store; a copy
#: (CREATE DATABASE … TEMPLATE, or a file copy) costs ~0.1 s. The migrations themselves are tested
#: on empty databases in tests/unit/callcore/test_migrations.py, and the SQLite self-upgrade at
#: start-up still runs (a no-op at head) in every server the tests start.
_TEMPLATES: dict[str, str] = {}


async def _pg_template(url: str) -> str:
    import asyncio

    from callcore import migrate

    base, _, _ = url.rpartition("/")
    if base not in _TEMPLATES:
        name = f"cc_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await _pg_admin(url, f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(migrate.upgrade, f"{base}/{name}")
        _TEMPLATES[base] = name
    return _TEMPLATES[base]


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
    db_url, drop = await _pg_database(url, "cc_mig_", template=await _pg_template(url))
    try:
        yield db_url
    finally:
        _DROPPER.drop(url, drop)


def pytest_sessionfinish(session, exitstatus):
    """Drop this process's throwaway PostgreSQL databases and templates, and SQLite template file."""
    import shutil

    _DROPPER.join()
    sqlite = _TEMPLATES.pop("sqlite", None)
    if sqlite:
        shutil.rmtree(Path(sqlite).parent, ignore_errors=True)
    if not _TEMPLATES:
        return
    import asyncio

    async def drop() -> None:
        for base, name in _TEMPLATES.items():
            await _pg_admin(base + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        asyncio.run(drop())
    except Exception:  # best effort: the leg's throwaway databases live on a test server
        pass
    _TEMPLATES.clear()
