"""docker/docker-compose.cluster.yml (issue 19) cannot run here (no Docker engine): check that it
is consistent — names, ports, secrets — with asterisk-config/ and callcore's settings."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

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


def test_services_two_callcore_instances_one_database_one_broker() -> None:
    compose = _compose()
    assert {"postgres", "nats", "asterisk"} <= set(compose["services"])
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


def test_ports_do_not_collide_on_the_host_network() -> None:
    cc = _callcores(_compose())
    ports = [int(s["environment"][k]) for s in cc.values() for k in ("CALLCORE_HTTP_PORT", "CALLCORE_AGI_PORT")]
    assert len(ports) == len(set(ports))
    nats = _compose()["services"]["nats"]["command"]
    assert nats[nats.index("-p") + 1] == "4222" and nats[nats.index("-a") + 1] == "127.0.0.1"
    for svc in cc.values():
        assert svc["environment"]["CALLCORE_BROKER_URL"] == "nats://127.0.0.1:4222"


def test_every_instance_logs_in_to_the_ami_of_asterisk_config() -> None:
    mgr = _manager_conf()
    assert mgr.get("general", "bindaddr").strip() == "127.0.0.1"
    port = mgr.get("general", "port").strip()
    compose = _compose()
    ast_secret = compose["services"]["asterisk"]["environment"]["CALLCORE_AMI_SECRET"]
    default_secret = mgr.get("callcore", "secret").strip()
    assert ast_secret == "${CALLCORE_AMI_SECRET:-" + default_secret + "}"
    for name, svc in _callcores(compose).items():
        env = svc["environment"]
        assert svc["network_mode"] == "host" == compose["services"]["asterisk"]["network_mode"]
        assert env["CALLCORE_AMI_HOST"] == "127.0.0.1" and env["CALLCORE_AMI_PORT"] == port, name
        assert env["CALLCORE_AMI_USERNAME"] in mgr.sections(), name
        assert env["CALLCORE_AMI_SECRET"] == ast_secret, name  # one variable for both ends
        # one signing key for the cluster: a token from one instance is valid on the other
        assert env["CALLCORE_JWT_KEY"] == "${CALLCORE_JWT_KEY:-change-me-too}"


def test_every_variable_is_a_setting_and_parses() -> None:
    fields = {f"CALLCORE_{n.upper()}" for n in Settings.model_fields}
    for name, svc in _callcores(_compose()).items():
        env = svc["environment"]
        unknown = set(env) - fields
        assert not unknown, f"{name}: {unknown}"
        values = {k[len("CALLCORE_"):].lower(): re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
        s = Settings(**values)
        assert s.broker_url and s.instance_name == name


def test_mounts_exist() -> None:
    compose = _compose()
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).resolve().exists(), f"{name}: {src}"
            else:
                assert src in compose["volumes"], f"{name}: volume {src} not declared"
