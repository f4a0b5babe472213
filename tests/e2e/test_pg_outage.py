"""Fault test (issue 12 item a): a **real** PostgreSQL stopped for 10 s while calls flow.

A private PostgreSQL cluster (initdb + pg_ctl on a free loopback port, in the test's temp dir;
never the shared server on 5432) is callcore's database; the whole stack runs in process with
the PBX emulator. Thirty callers come in waves of three to three auto-answering agents; after
the third wave the cluster is stopped (``pg_ctl stop -m fast``) for 10 s and started again.
Every call must be answered (no agent left paused by a failed write before its unpause), and
every call record must be in the database exactly once after the outage (the ended-call
journal drains it). Loopback only, bounded (about 30 s).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import eventually

pytestmark = pytest.mark.slow

WAVES, PER_WAVE, OUTAGE_AFTER, OUTAGE_SECONDS = 10, 3, 3, 10.0
AGENTS = ("1001", "1002", "1003")


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (found / "initdb").exists():
            return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    return None


class Cluster:
    """A throwaway PostgreSQL cluster (run as the ``postgres`` user when the tests run as root)."""

    def __init__(self, root: Path) -> None:
        bindir = _bindir()
        if bindir is None:
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        self.bin, self.dir = bindir, root / "pgdata"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{tool}: {proc.stdout}{proc.stderr}"

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir), "-o", opts, "-w", "-t", "30", "-l", str(self.dir / "log"), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def cluster():
    if os.environ.get("CALLCORE_TEST_DATABASE_URL"):
        pytest.skip("runs its own PostgreSQL cluster: once, in the SQLite leg, is enough")
    # not under pytest's tmp dir: that is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="callcore-pg-"))
    c = Cluster(root)
    c.start()
    try:
        from callcore import migrate

        migrate.upgrade(c.url)
        yield c
    finally:
        try:
            c.stop()
        except AssertionError:
            pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_overrides(cluster):
    from pydantic import SecretStr

    return {"database_url": SecretStr(cluster.url)}


async def test_postgresql_stopped_10_s_during_30_calls_loses_nothing_and_strands_nobody(cluster, server):
    s = server
    pbx = s.pbx
    for agent in AGENTS:
        tok = await s.create_agent(agent, f"상담 {agent}", ["sales"])
        await s.api("POST", f"/api/agents/{agent}/login", token=tok, expect=200)
        pbx.agent(agent, answer_after=0.0, hangup_after=15.0)  # 0.3 s of talk at the test's time scale
    await eventually(lambda: len(pbx.queues["sales"].members) == len(AGENTS), 5, "agents in sales")
    state = s.cti.state
    seen: set[str] = set()
    down_at = up_at = None
    peak = 0
    for wave in range(WAVES):
        if wave == OUTAGE_AFTER:
            await asyncio.to_thread(cluster.stop)
            down_at = time.monotonic()
        if down_at is not None and up_at is None and time.monotonic() - down_at >= OUTAGE_SECONDS:
            await asyncio.to_thread(cluster.start)
            up_at = time.monotonic()
        calls = [await pbx.dial(f"010300{wave:02d}{n:03d}", exten="sales", context="queue-direct") for n in range(PER_WAVE)]
        await eventually(lambda: all(c.one.gone for c in calls), 20, f"wave {wave} answered and over")
        seen |= {c.linkedid for c in calls}
        if down_at is not None and up_at is None:
            peak = max(peak, s.container.journal.journal.depth)  # records waiting for the database
        if down_at is not None and up_at is None:
            await asyncio.sleep(max(0.0, min(OUTAGE_SECONDS / (WAVES - OUTAGE_AFTER), OUTAGE_SECONDS - (time.monotonic() - down_at))))
    if up_at is None:
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
    outage = up_at - down_at
    assert peak >= PER_WAVE  # the database really was away: ended calls waited in the journal

    # nobody stranded: every agent ready again after its last wrap-up
    await eventually(lambda: all(state.agents[a].status == "ready" for a in AGENTS), 10, "agents ready")
    assert not any(m.paused for q in pbx.queues.values() for m in q.members.values())
    # every record in the database once, answered
    await eventually(lambda: s.container.journal.journal.depth == 0, 30, "journal drained")
    from sqlalchemy import text

    async with s.container.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, outcome FROM cti_calls"))).all()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == WAVES * PER_WAVE and set(ids) == seen
    assert {r[1] for r in rows} == {"answered"}
    print(f"\nPostgreSQL down {outage:.1f} s during {WAVES * PER_WAVE} calls: "
          f"{len(ids)} stored once (up to {peak} waited in the journal), 0 lost, 0 abandoned, 0 agents left paused")
