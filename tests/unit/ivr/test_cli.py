"""`callcore dialplan try` and `graph` through the argparse entry point."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from ivr.cli import main as cli_main
from ivr.flow import parse_flow
from ivr.graph import to_dot

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def crm_fixture(tmp_path):
    p = tmp_path / "crm.yaml"
    p.write_text(
        '"/customers/by-phone/01011112222": {customer: {id: C-1, name: "김VIP", tier: vip, status: active}}\n'
        '"/customers/by-phone/01099990000": timeout\n',
        encoding="utf-8",
    )
    return p


def test_try_prints_what_the_caller_hears_why_and_where_it_ends(capsys, crm_fixture):
    rc = cli_main(["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "--caller", "01011112222",
                   "--digits", "t", "--at", "2026-12-22T10:00+09:00", "--lookup-fixture", str(crm_fixture)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "▶ play ko/welcome" in out
    assert "schedule 'customer_center': open" in out
    assert "condition 1 `tier == 'vip' or crm_vip == true` is true (crm_vip=None, tier='vip')" in out
    assert "■ call ends in queue 'vip' priority 10, timeout 600 s" in out
    assert '"customer": "김VIP"' in out


def test_try_holiday_and_lookup_timeout(capsys, crm_fixture):
    cli_main(["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "--caller", "01099990000",
              "--digits", ",2,2", "--at", "2026-02-17T10:00+09:00", "--lookup-fixture", str(crm_fixture)])
    out = capsys.readouterr().out
    assert "holiday 설날 Korean New Year (public holiday, KR)" in out  # holiday data: the holidays package
    assert "▶ play ko/holiday_closed" in out
    cli_main(["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "--caller", "01099990000",
              "--digits", ",0", "--at", "2026-02-19T10:00+09:00", "--lookup-fixture", str(crm_fixture)])
    out = capsys.readouterr().out
    assert "timeout: no answer within 2 s → fallback unknown_customer" in out
    assert "■ call ends in queue 'support'" in out


def test_try_interactive_reads_keys_from_terminal(capsys, monkeypatch, crm_fixture):
    monkeypatch.setattr("sys.stdin", io.StringIO("9\n3\n"))
    rc = cli_main(["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "-i", "--caller", "01000000000",
                   "--at", "2026-12-22T10:00+09:00", "--lookup-fixture", str(crm_fixture), "--queue-wait", "30"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "▶ play en/main_menu" in out
    assert "■ call ends in queue 'sales'" in out


def test_try_refuses_broken_dialplans(tmp_path, capsys):
    shutil.copy(ROOT / "tests" / "fixtures" / "dialplans-broken" / "unreachable.yaml", tmp_path / "main.yaml")
    assert cli_main(["dialplan", "try", "main", "--dir", str(tmp_path)]) == 1
    assert "unreachable" in capsys.readouterr().out


def test_graph_dot_has_every_node_and_labelled_edge():
    text = (ROOT / "dialplans" / "main.yaml").read_text(encoding="utf-8")
    flow, _ = parse_flow(text, "main.yaml", read_include=lambda rel: (ROOT / "dialplans" / rel).read_text(encoding="utf-8"))
    dot = to_dot(flow)
    assert dot.startswith('digraph "main" {')
    for node_id in flow.nodes:
        assert f'"{node_id}" [shape=' in dot
    assert '"main_menu" -> "billing_menu" [label="digit 1"];' in dot
    assert '"crm_lookup" -> "unknown_customer" [label="fallback", style=dashed];' in dot


def test_graph_to_png_without_graphviz_writes_dot(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert cli_main(["dialplan", "graph", "main", "--dir", str(ROOT / "dialplans"), "-o", str(tmp_path / "main.png")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "main.dot").read_text().startswith('digraph "main"')
    assert f"dot -Tpng {tmp_path / 'main.dot'} -o {tmp_path / 'main.png'}" in out


def test_sounds_placeholders(tmp_path, capsys):
    for f in ("main.yaml",):
        (tmp_path / f).write_text("languages: [ko, en]\nstart: a\nnodes:\n  a: {type: hangup, prompt: bye}\n")
    assert cli_main(["dialplan", "sounds", str(tmp_path)]) == 1
    assert cli_main(["dialplan", "sounds", str(tmp_path), "--placeholders"]) == 0
    import wave

    with wave.open(str(tmp_path / "sounds" / "en" / "bye.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert cli_main(["dialplan", "check", str(tmp_path)]) == 0


async def test_terminal_keys_read_single_presses_with_timeout_on_a_pty():
    import os
    import pty

    from ivr.console import TerminalKeys

    master, slave = pty.openpty()
    try:
        keys = TerminalKeys(slave)
        os.write(master, b"12#9")
        assert await keys.read(8, 1.0, "#") == "12"
        assert await keys.read(1, 1.0) == "9"
        assert await keys.read(1, 0.1) == ""  # nothing pressed: the timeout runs out
        os.write(master, b"q")
        assert await keys.read(1, 1.0) is None  # hang up
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_versions_and_rollback_commands_talk_to_the_server_api(tmp_path, monkeypatch, capsys):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ivr.lookup import FixtureLookupClient
    from ivr.ports import InMemoryCallbackSink, PassThroughRouter
    from ivr.registry import FlowRegistry, content_hash
    from ivr.repository import MemoryIvrRepository
    from ivr.routes import router
    from ivr.service import IvrService

    v1 = "start: a\nnodes:\n  a: {type: hangup, prompt: one}\n"
    v2 = v1.replace("one", "two")
    (tmp_path / "main.yaml").write_text(v1)
    repo = MemoryIvrRepository()
    app = FastAPI()
    app.include_router(router)
    app.state.ivr = IvrService(FlowRegistry(tmp_path, store=repo, check_sounds=False), PassThroughRouter(),
                               InMemoryCallbackSink(), FixtureLookupClient({}), repo)
    from api.auth import Authenticator

    # the CLI signs a short admin token with the shared key (CALLCORE_JWT_KEY) when given none
    monkeypatch.setenv("CALLCORE_JWT_KEY", "cli-test-key")
    app.state.authenticator = Authenticator("cli-test-key")
    with TestClient(app) as client:
        admin = {"Authorization": "Bearer " + app.state.authenticator.issue("t", "admin")}
        assert client.post("/api/dialplans/reload", headers=admin).json()["ok"]
        (tmp_path / "main.yaml").write_text(v2)
        assert client.post("/api/dialplans/reload", headers=admin).json()["ok"]
        seen = []

        def fake_get(url, headers, timeout):
            seen.append(url)
            return client.get(url.removeprefix("http://srv:8080"), headers=headers)

        def fake_post(url, json, headers, timeout):
            seen.append(url)
            return client.post(url.removeprefix("http://srv:8080"), json=json, headers=headers)

        monkeypatch.setattr("httpx.get", fake_get)
        monkeypatch.setattr("httpx.post", fake_post)
        h1, h2 = content_hash(v1, {}), content_hash(v2, {})
        assert cli_main(["dialplan", "versions", "--api", "http://srv:8080"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"  main") and h1[:12] in lines[0]
        assert lines[1].startswith(f"* main") and h2[:12] in lines[1]
        assert cli_main(["dialplan", "rollback", "main", h1[:8], "--api", "http://srv:8080"]) == 0
        assert capsys.readouterr().out.strip() == f"main now serves version {h1[:12]}"
        assert cli_main(["dialplan", "rollback", "main", "0000000", "--api", "http://srv:8080"]) == 1
        assert "no stored version" in capsys.readouterr().out
        assert seen[0] == "http://srv:8080/api/dialplans"


def test_try_on_national_foundation_day_2028_is_a_holiday(capsys, crm_fixture):
    # the shipped YAML stopped at 2027 and said "open" here; the KR calendar covers every year
    cli_main(["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "--caller", "01099990000",
              "--digits", ",2,2", "--at", "2028-10-03T10:00+09:00", "--lookup-fixture", str(crm_fixture)])
    out = capsys.readouterr().out
    assert "schedule 'customer_center': holiday" in out and "개천절" in out
    assert "▶ play ko/holiday_closed" in out
    assert "schedule 'customer_center': open" not in out
