"""The Alembic history builds, on an empty database, exactly the schema the models declare."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from callcore import migrate
from callcore.db import Base, create_engine, import_all_models


async def test_migrations_apply_to_an_empty_database_and_match_the_models(empty_database_url):
    import_all_models()
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        assert diff == [], f"models and migrations disagree: {diff}"
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
    # idempotent: a second upgrade is a no-op
    await asyncio.to_thread(migrate.upgrade, empty_database_url)


async def test_each_revision_downgrades_and_upgrades_again(empty_database_url):
    """An operator can step back one release and forward again (SQLite batch mode, PostgreSQL)."""
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    await asyncio.to_thread(migrate.downgrade, empty_database_url, "0001")
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("cti_calls")})
        assert "on_hold_seconds" not in cols and "hold_time" in cols
        assert await migrate.current_revision(engine) == "0001"
    finally:
        await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
