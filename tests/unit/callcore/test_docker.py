"""docker/ cannot run here (no Docker engine): check it is well-formed and refers to real files."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"


def test_compose_file_is_valid_and_wires_the_three_services():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"asterisk", "postgres", "callcore"}
    assert services["callcore"]["build"]["dockerfile"] == "docker/Dockerfile"
    env = services["callcore"]["environment"]
    assert env["CALLCORE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["callcore"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # every bind mount points at something that exists in the repository
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (DOCKER / src).resolve().exists(), f"{name}: {src} does not exist"
    for vol in {v.split(":", 1)[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}:
        assert vol in compose["volumes"], f"named volume {vol} not declared"


def test_dockerfile_copies_every_package_and_installs_the_project():
    text = (DOCKER / "Dockerfile").read_text()
    for pkg in ("callcore", "ivr", "cti", "recording", "api"):
        assert f"COPY {pkg} ./{pkg}" in text
        assert (ROOT / pkg / "__init__.py").exists()
    assert "pip install --no-cache-dir ." in text
    assert 'CMD ["sh", "-c", "callcore db upgrade && exec callcore serve"]' in text


def test_asterisk_config_is_what_compose_mounts():
    for conf in ("manager.conf", "extensions.conf", "queues.conf", "pjsip.conf"):
        assert (ROOT / "asterisk-config" / conf).is_file(), conf
