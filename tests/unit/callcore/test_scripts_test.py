"""scripts/test's PostgreSQL leg (scripts/test-pg, run by scripts/test): skipped on a workstation
without PostgreSQL, a failure in CI (issue 9 item 15). Runs the real script with a DSN that
nothing answers (a closed loopback port)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends: nothing listens there


def _run_pg_leg(ci: str | None) -> subprocess.CompletedProcess[str]:
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists():  # pragma: no cover - the script needs the project's venv
        pytest.skip("scripts/test-pg runs .venv/bin/python (scripts/bootstrap)")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CALLCORE_TEST_PG_DSN"] = f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [str(ROOT / "scripts" / "test-pg"), "-k", "nothing_should_run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_ci_without_postgresql_fails_the_run(ci):
    proc = _run_pg_leg(ci)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PostgreSQL leg FAILED" in proc.stderr
    assert "SKIPPED" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_workstation_without_postgresql_skips_the_leg_loudly(ci):
    proc = _run_pg_leg(ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PostgreSQL leg SKIPPED" in proc.stdout


def test_scripts_test_runs_the_pg_leg_script():
    text = (ROOT / "scripts" / "test").read_text()
    assert text.rstrip().endswith('exec scripts/test-pg "$@"')
    assert os.access(ROOT / "scripts" / "test-pg", os.X_OK)
