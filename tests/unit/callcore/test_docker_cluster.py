"""docker/docker-compose.cluster.yml (issue 19: 2 Asterisk + 2 callcore + PostgreSQL + NATS) cannot
run here (no Docker engine): check that it is consistent — names, ports, secrets — with
asterisk-config/, docker/asterisk-entrypoint.sh (run for real against a temp /etc/asterisk, with each
Asterisk service's environment) and callcore's settings."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import yaml

from callcore.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker" / "docker-compose.cluster.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _callcores(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if n.startswith("callcore")}


def _manager_conf() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False, interpolation=None)
    cp.read_string((ROOT / "asterisk-config" / "manager.conf").read_text())
    return cp


def _default(value: str) -> str:
    """``${VAR:-default}`` → default (what compose substitutes when VAR is unset)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def _asterisks(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if n.startswith("asterisk")}


def _ami_servers(env: dict) -> list[dict]:
    return json.loads(_default(env["CALLCORE_AMI_SERVERS"]))


def _by_systemname(compose: dict) -> dict[str, dict]:
    return {s["environment"]["CALLCORE_AST_SYSTEMNAME"]: s for s in _asterisks(compose).values()}


def test_services_two_asterisk_two_callcore_one_database_one_broker() -> None:
    compose = _compose()
    assert {"postgres", "nats", "asterisk-1", "asterisk-2"} <= set(compose["services"])
    assert len(_asterisks(compose)) == 2
    cc = _callcores(compose)
    assert len(cc) == 2
    names = {s["environment"]["CALLCORE_INSTANCE_NAME"] for s in cc.values()}
    assert names == set(cc)  # the instance name is the service name, and unique
    for name, svc in cc.items():
        env = svc["environment"]
        assert env["CALLCORE_BROKER_URL"].startswith("nats://"), name
        assert env["CALLCORE_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "nats" in svc["depends_on"]
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
        # the legacy single-endpoint settings would be ignored next to the list: not set at all
        assert not {"CALLCORE_AMI_HOST", "CALLCORE_AMI_PORT", "CALLCORE_AMI_SECRET"} & set(env), name


def test_each_asterisk_has_its_own_systemname_and_every_instance_names_both() -> None:
    compose = _compose()
    ast = _by_systemname(compose)
    assert len(ast) == 2  # distinct systemnames: distinct uniqueid prefixes
    lists = [_ami_servers(s["environment"]) for s in _callcores(compose).values()]
    assert lists[0] == lists[1]  # both instances know the same servers (either may hold the lease)
    servers = lists[0]
    assert [s["name"] for s in servers] == sorted(ast)  # one entry per Asterisk, named by its systemname
    assert len({s["name"] for s in servers}) == len(servers)
    for s in servers:
        assert set(s) == {"name", "host", "port", "username", "secret"}, s
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", s["name"]), s


def test_ports_do_not_collide_on_the_host_network() -> None:
    compose = _compose()
    cc = _callcores(compose)
    used: list[tuple[str, str, int]] = []  # (protocol, who, port)
    for name, svc in cc.items():
        used += [("tcp", name, int(svc["environment"][k])) for k in ("CALLCORE_HTTP_PORT", "CALLCORE_AGI_PORT")]
    nats = compose["services"]["nats"]["command"]
    assert nats[nats.index("-p") + 1] == "4222" and nats[nats.index("-a") + 1] == "127.0.0.1"
    used += [("tcp", "nats", 4222), ("tcp", "nats", int(nats[nats.index("-m") + 1]))]
    (pg,) = compose["services"]["postgres"]["ports"]
    used.append(("tcp", "postgres", int(_default(pg).split(":")[1])))
    rtp_ranges = []
    for name, svc in _asterisks(compose).items():
        env = svc["environment"]
        assert svc["network_mode"] == "host", name
        used += [("tcp", name, int(env["CALLCORE_AST_AMI_PORT"])), ("udp", name, int(env["CALLCORE_AST_SIP_PORT"]))]
        lo, hi = int(env["CALLCORE_AST_RTP_START"]), int(env["CALLCORE_AST_RTP_END"])
        assert lo < hi and lo % 2 == 0, name  # RTP on even ports, RTCP on the odd one after
        rtp_ranges.append(range(lo, hi + 1))
    keys = [(proto, port) for proto, _, port in used]
    assert len(keys) == len(set(keys)), sorted(used, key=lambda u: u[2])
    a, b = rtp_ranges
    assert not set(a) & set(b), "the two Asterisk servers' RTP ranges overlap"
    assert not {p for proto, _, p in used if proto == "udp"} & (set(a) | set(b))
    for svc in cc.values():
        assert svc["environment"]["CALLCORE_BROKER_URL"] == "nats://127.0.0.1:4222"
        servers = _ami_servers(svc["environment"])
        assert len({s["port"] for s in servers}) == len(servers)


def _run_entrypoint(tmp_path: Path, env: dict) -> Path:
    """docker/asterisk-entrypoint.sh for real, against a copy of asterisk-config/ in a temp
    /etc/asterisk holding the image's asterisk.conf shape ([options] with a commented systemname)."""
    if shutil.which("sh") is None:  # pragma: no cover
        pytest.skip("no /bin/sh")
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc / "callcore")
    (etc / "asterisk.conf").write_text("[directories](!)\nastetcdir => /etc/asterisk\n\n[options]\n"
                                       ";verbose = 3\n;systemname = my_system_name\n")
    fake = tmp_path / "asterisk"
    fake.write_text('#!/bin/sh\necho "asterisk $*"\n')
    fake.chmod(0o755)
    full = {**os.environ, "ASTERISK_ETC": str(etc), "ASTERISK_BIN": str(fake), **{k: _default(v) for k, v in env.items()}}
    proc = subprocess.run(["sh", str(ROOT / "docker" / "asterisk-entrypoint.sh")], env=full, capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "asterisk -f -vvv"
    return etc


def _conf(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), comment_prefixes=(";",), strict=False,
                                   interpolation=None, delimiters=("=", "=>"))
    cp.read_string(path.read_text())
    return cp


def test_every_servers_ami_entry_matches_the_manager_conf_its_asterisk_runs_with(tmp_path) -> None:
    """Per server: the port, account and secret callcore logs in with are what that Asterisk
    container's entrypoint writes into its manager.conf; its systemname is the server's name."""
    mgr = _manager_conf()
    assert mgr.get("general", "bindaddr").strip() == "127.0.0.1"
    compose = _compose()
    ast = _by_systemname(compose)
    servers = _ami_servers(next(iter(_callcores(compose).values()))["environment"])
    raw = {s["name"]: s for s in json.loads(next(iter(_callcores(compose).values()))["environment"]["CALLCORE_AMI_SERVERS"])}
    secret_vars = set()
    for s in servers:
        svc = ast[s["name"]]
        env = svc["environment"]
        assert svc["entrypoint"] == ["/bin/sh", "/callcore-entrypoint.sh"]
        assert "./asterisk-entrypoint.sh:/callcore-entrypoint.sh:ro" in svc["volumes"]
        assert "../asterisk-config:/etc/asterisk/callcore:ro" in svc["volumes"]
        # one variable for both ends of this server's AMI login
        assert raw[s["name"]]["secret"] == env["CALLCORE_AMI_SECRET"], s["name"]
        var = re.fullmatch(r"\$\{([A-Z0-9_]+):-[^}]*\}", env["CALLCORE_AMI_SECRET"]).group(1)
        secret_vars.add(var)
        assert _default(env["CALLCORE_AMI_SECRET"]) == mgr.get("callcore", "secret").strip()  # unset: the shipped default
        assert s["host"] == "127.0.0.1"  # host networking, AMI bound to loopback
        etc = _run_entrypoint(tmp_path / s["name"], env)
        m = _conf(etc / "manager.conf")
        assert int(m.get("general", "port")) == s["port"] == int(env["CALLCORE_AST_AMI_PORT"]), s["name"]
        assert m.get("general", "bindaddr").strip() == "127.0.0.1"
        assert s["username"] in m.sections() and m.get(s["username"], "secret").strip() == s["secret"], s["name"]
        assert _conf(etc / "asterisk.conf").get("options", "systemname").strip() == s["name"]
        assert len(re.findall(r"^\s*systemname", (etc / "asterisk.conf").read_text(), re.M)) == 1
        assert f"bind = 0.0.0.0:{env['CALLCORE_AST_SIP_PORT']}" in (etc / "pjsip.conf").read_text()
        rtp = _conf(etc / "rtp.conf")
        assert (rtp.get("general", "rtpstart").strip(), rtp.get("general", "rtpend").strip()) == (
            env["CALLCORE_AST_RTP_START"], env["CALLCORE_AST_RTP_END"])
    assert len(secret_vars) == len(servers)  # each server its own secret variable
    for name, svc in _callcores(compose).items():
        # one signing key for the cluster: a token from one instance is valid on the other
        assert svc["environment"]["CALLCORE_JWT_KEY"] == "${CALLCORE_JWT_KEY:-change-me-too}", name


@pytest.mark.parametrize("env,blamed", [
    ({"CALLCORE_AST_SYSTEMNAME": "ast 1"}, "CALLCORE_AST_SYSTEMNAME"),
    ({"CALLCORE_AST_SYSTEMNAME": "a/b"}, "CALLCORE_AST_SYSTEMNAME"),
    ({"CALLCORE_AST_AMI_PORT": "50x8"}, "CALLCORE_AST_AMI_PORT"),
    ({"CALLCORE_AST_AMI_PORT": "70000"}, "CALLCORE_AST_AMI_PORT"),
    ({"CALLCORE_AST_SIP_PORT": "-1"}, "CALLCORE_AST_SIP_PORT"),
    ({"CALLCORE_AST_RTP_START": "10000"}, "CALLCORE_AST_RTP_END"),  # half a range
])
def test_the_entrypoint_refuses_a_bad_name_or_port(tmp_path, env, blamed) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc / "callcore")
    full = {**os.environ, "ASTERISK_ETC": str(etc), "ASTERISK_BIN": "true", **env}
    proc = subprocess.run(["sh", str(ROOT / "docker" / "asterisk-entrypoint.sh")], env=full, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1 and blamed in proc.stderr, (proc.returncode, proc.stderr)


def test_every_variable_is_a_setting_and_parses() -> None:
    fields = {f"CALLCORE_{n.upper()}" for n in Settings.model_fields}
    for name, svc in _callcores(_compose()).items():
        env = svc["environment"]
        unknown = set(env) - fields
        assert not unknown, f"{name}: {unknown}"
        values = {k[len("CALLCORE_"):].lower(): _default(v) for k, v in env.items()}
        values["ami_servers"] = json.loads(values["ami_servers"])  # what pydantic-settings does with the JSON variable
        s = Settings(**values)
        assert s.broker_url and s.instance_name == name
        assert [x.name for x in s.ami_servers] == ["ast1", "ast2"], s.ami_servers


def test_mounts_exist() -> None:
    compose = _compose()
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).resolve().exists(), f"{name}: {src}"
            else:
                assert src in compose["volumes"], f"{name}: volume {src} not declared"
