"""What docs/deploy.md ships (deploy/): the systemd unit, the nginx example, the env file,
and every ``callcore`` command the guide names."""

from __future__ import annotations

import argparse
import inspect
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from callcore.cli import build_parser
from callcore.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit syntax: [Section], Key=Value, repeated keys accumulate, # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{n}: not Key=Value: {raw!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key), f"{path.name}:{n}: bad key {key!r}"
        current.setdefault(key, []).append(value)
    return sections


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _resolve(words: list[str]) -> list[str]:
    """The sub-command path ``words`` names in the real parser; fails on an unknown word."""
    parser, path = build_parser(), []
    for word in words:
        subs = _subcommands(parser)
        if not subs or word.startswith("-") or word.startswith("<"):
            break
        assert word in subs, f"`callcore {' '.join(path + [word])}` is not a callcore command (have: {sorted(subs)})"
        parser, path = subs[word], path + [word]
    assert not _subcommands(parser), f"`callcore {' '.join(path)}` needs a sub-command"
    return path


def test_unit_file_parses_and_runs_the_real_entry_point():
    unit = _unit(DEPLOY / "callcore.service")
    assert set(unit) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    exec_start = shlex.split(svc["ExecStart"][0])
    assert exec_start[0].startswith("/") and Path(exec_start[0]).name == "callcore"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "callcore" in scripts, "the unit runs a console script pyproject.toml does not install"
    assert _resolve(exec_start[1:]) == ["serve"]
    build_parser().parse_args(exec_start[1:])  # the flags it passes exist too


def test_unit_file_reloads_with_sighup_and_restarts_on_failure():
    svc = _unit(DEPLOY / "callcore.service")["Service"]
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    from callcore import app

    # the server really handles SIGHUP as "reload the dialplans"
    assert "signal.SIGHUP, lambda: _on_sighup(container)" in inspect.getsource(app.serve)
    assert "request_reload" in inspect.getsource(app._on_sighup)
    assert svc["Restart"] == ["on-failure"]
    assert svc["User"] == ["callcore"] and svc["Group"] == ["callcore"]
    assert float(svc["TimeoutStopSec"][0]) > Settings().agi_shutdown_grace + 2  # AGI grace + AMI logoff fit


def test_unit_file_owns_the_directories_callcore_writes():
    svc = _unit(DEPLOY / "callcore.service")["Service"]
    env = dict(e.split("=", 1) for e in svc["Environment"])
    assert env["CALLCORE_DATA_DIR"] == "/var/lib/" + svc["StateDirectory"][0]
    assert svc["WorkingDirectory"] == [env["CALLCORE_DATA_DIR"]]
    assert env["CALLCORE_DIALPLANS_DIR"].startswith("/etc/" + svc["ConfigurationDirectory"][0] + "/")
    writable = svc["ReadWritePaths"][0].split()
    assert env["CALLCORE_DATA_DIR"] in writable  # ProtectSystem=strict: everything else is read-only
    assert "/var/log/" + svc["LogsDirectory"][0] in writable
    assert svc["ProtectSystem"] == ["strict"]
    for name in env:
        assert name.startswith("CALLCORE_") and name[9:].lower() in Settings.model_fields, name
    env_file = svc["EnvironmentFile"][0].lstrip("-")
    assert env_file.startswith("/etc/" + svc["ConfigurationDirectory"][0] + "/")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_passes_systemd_analyze(tmp_path):
    unit = tmp_path / "callcore.service"
    unit.write_text((DEPLOY / "callcore.service").read_text().replace("/opt/callcore/venv/bin/callcore", "/bin/true"))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=30)
    problems = [l for l in out.stderr.splitlines() if "callcore.service" in l and ("Unknown" in l or "Invalid" in l)]
    assert not problems, problems


def test_env_example_names_only_real_settings_and_no_real_secret():
    names = []
    for line in (DEPLOY / "callcore.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            names.append(name)
            assert name.startswith("CALLCORE_") and name[9:].lower() in Settings.model_fields, name
    for secret in ("CALLCORE_JWT_KEY", "CALLCORE_AMI_SECRET", "CALLCORE_DATABASE_URL", "CALLCORE_FIELD_KEYS"):
        assert secret in names
    assert "REPLACE" in (DEPLOY / "callcore.env.example").read_text()


def _nginx_blocks(text: str) -> dict[str, str]:
    """``location`` blocks of the example, by their argument (no nested blocks inside them)."""
    text = re.sub(r"#.*", "", text)
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"location\s+([^{]+)\{([^{}]*)\}", text)}


def test_nginx_example_passes_websockets():
    text = (DEPLOY / "nginx-callcore.conf").read_text()
    assert text.count("{") == text.count("}")
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{[^}]*default\s+upgrade;", text)
    ws = _nginx_blocks(text)["/ws"]
    assert "proxy_http_version 1.1;" in text
    assert re.search(r"proxy_set_header Upgrade \$http_upgrade;", ws)
    assert re.search(r"proxy_set_header Connection \$connection_upgrade;", ws)
    assert "proxy_read_timeout" in ws
    from cti.routes import ws_router

    assert "/ws" in {r.path for r in ws_router.routes}, "the proxied websocket path is callcore's"


def test_nginx_example_streams_range_requests_without_buffering():
    text = (DEPLOY / "nginx-callcore.conf").read_text()
    rec = _nginx_blocks(text)["/api/recordings/"]
    assert "proxy_buffering off;" in rec
    assert "proxy_set_header Range $http_range;" in rec
    assert "proxy_set_header If-Range $http_if_range;" in rec
    assert "proxy_pass http://callcore;" in rec
    assert re.search(r"upstream callcore \{\s*server 127\.0\.0\.1:8080;", text)
    assert "ssl_certificate " in text and "listen 443 ssl" in text
    assert "deny all;" in _nginx_blocks(text)["= /metrics"]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_example_passes_nginx_t(tmp_path):
    conf = (DEPLOY / "nginx-callcore.conf").read_text()
    conf = re.sub(r"ssl_certificate(_key)? [^;]+;", "", conf).replace("listen 443 ssl", "listen 127.0.0.1:0")
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/pid; error_log stderr; events {{}} http {{ {conf} }}")
    out = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def _guide_commands() -> list[list[str]]:
    text = GUIDE.read_text()
    commands = []
    for m in re.finditer(r"(?:^|[\s`/'])callcore ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", text, re.M):
        commands.append(m.group(1).split())
    return commands


def test_every_cli_command_the_guide_names_exists():
    commands = _guide_commands()
    assert len(commands) >= 8
    seen = set()
    for words in commands:
        parser = build_parser()
        subs = _subcommands(parser)
        if words[0] not in subs:  # prose like "callcore runs" / "callcore refuses": not a command
            assert words[0] not in {"dialplan", "db", "user", "audit", "token"}, words
            continue
        seen.add(tuple(_resolve(words)))
    assert {("serve",), ("db", "upgrade"), ("db", "current"), ("dialplan", "check"), ("user", "add"),
            ("audit", "verify"), ("dialplan", "versions"), ("dialplan", "rollback"), ("dialplan", "try")} <= seen


def test_guide_names_only_shipped_deploy_files():
    text = GUIDE.read_text()
    for name in set(re.findall(r"(?<![/\w])deploy/[A-Za-z0-9_./-]+[A-Za-z0-9_-]", text)):
        assert (ROOT / name).exists(), f"docs/deploy.md names {name}, which is not shipped"
    for name in set(re.findall(r"(?<![/\w])docker/[A-Za-z0-9_.-]+", text)):
        if name != "docker/.env":
            assert (ROOT / name).exists(), name


def test_alert_rules_are_well_formed_and_cover_what_operators_page_on():
    import yaml

    rules = yaml.safe_load((DEPLOY / "prometheus" / "callcore-alerts.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for name, rule in by_name.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    assert "callcore_ami_connected == 0" in by_name["CallcoreAmiDown"]["expr"]
    assert "callcore_queue_longest_wait_seconds >" in by_name["CallcoreQueueLongestWait"]["expr"]
    assert "callcore_db_persistence_lag_seconds >" in by_name["CallcorePersistenceLag"]["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_alert_rules_pass_promtool():
    out = subprocess.run(["promtool", "check", "rules", str(DEPLOY / "prometheus" / "callcore-alerts.yml")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_dashboard_is_importable():
    import json

    dash = json.loads((DEPLOY / "grafana" / "callcore-dashboard.json").read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    assert dash["__inputs"][0]["name"] == "DS_PROMETHEUS"  # the datasource is chosen on import
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}"
