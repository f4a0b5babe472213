"""Issue 19: the Asterisk server of a recording (``recording_recordings.server``, migration 0025)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import insert, select

from callcore import migrate
from callcore.db import create_engine
from cti.models import CallRow
from recording.models import RecordingRow
from recording.repository import SearchFilters
from tests.unit.recording.audio import wav
from tests.unit.recording.helpers import T0, Clock, answered, end, make_call, make_service, start


async def test_the_row_gets_the_server_at_its_start_and_keeps_it_when_the_end_does_not_know(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call("ast2-1795395000.7")
    call.server = "ast2"
    start(svc, call, T0)
    await svc.idle()
    assert (await svc.repo.by_call(call.id))["server"] == "ast2"  # written with the start row
    clock.now = T0 + 5
    answered(svc, call, "1001", clock.now)
    call.server = ""  # not known at the end (a call restored from an older journal): the start's server stays
    clock.now = T0 + 9
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(4.0, False)]))
    end(svc, call, clock.now)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "pending" and rec["server"] == "ast2"
    other = make_call("ast1-1795395000.8")
    other.server = "ast1"
    start(svc, other, T0)
    clock.now = T0 + 5
    answered(svc, other, "1002", clock.now)
    (svc.monitor_dir / f"{other.id}.wav").write_bytes(wav([(4.0, False)]))
    end(svc, other, T0 + 9)
    await svc.idle()
    assert [r["call_id"] for r in (await svc.search(SearchFilters(server="ast1")))[0]] == [other.id]


async def test_migration_0025_gives_older_recordings_the_server_of_their_stored_call(empty_database_url):
    await asyncio.to_thread(migrate.upgrade, empty_database_url, "0024")
    engine = create_engine(empty_database_url)
    at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    recordings = RecordingRow.__table__
    try:
        async with engine.begin() as conn:  # Core inserts of the columns 0024 has (no ``server`` on recordings yet)
            await conn.execute(insert(CallRow.__table__).values(id="ast2-1.1", server="ast2", direction="inbound",
                                                                started_at=at))
            for call_id in ("ast2-1.1", "9.9"):
                await conn.execute(insert(recordings).values(call_id=call_id, started_at=at))
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        async with engine.connect() as conn:
            rows = dict((await conn.execute(select(recordings.c.call_id, recordings.c.server))).all())
        assert rows == {"ast2-1.1": "ast2", "9.9": None}  # a recording without a stored call stays unknown
    finally:
        await engine.dispose()
