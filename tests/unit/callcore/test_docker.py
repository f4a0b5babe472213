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


# ---- values that must agree across compose, the entrypoint and the configuration (issue 9 item 11)
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

from callcore.settings import Settings  # noqa: E402


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def _default(value: str) -> str:
    """``${VAR:-default}`` → default (what compose substitutes when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _manager_secret() -> str:
    return re.search(r"^secret *= *(\S+)", (ROOT / "asterisk-config" / "manager.conf").read_text(), re.M).group(1)


def test_the_ami_secret_reaches_both_services_from_one_variable():
    services = _compose()["services"]
    ast_env = services["asterisk"].get("environment") or {}
    cc_env = services["callcore"]["environment"]
    assert ast_env["CALLCORE_AMI_SECRET"] == cc_env["CALLCORE_AMI_SECRET"] == "${CALLCORE_AMI_SECRET:-change-me-callcore-secret}"
    # unset, both fall back to the secret of the shipped manager.conf, which is callcore's own default
    assert _default(ast_env["CALLCORE_AMI_SECRET"]) == _manager_secret() == Settings().ami_secret.get_secret_value()
    # the entrypoint reads exactly that variable and the compose file mounts what it runs
    entry = (DOCKER / "asterisk-entrypoint.sh").read_text()
    assert "$CALLCORE_AMI_SECRET" in entry
    assert "./asterisk-entrypoint.sh:/callcore-entrypoint.sh:ro" in services["asterisk"]["volumes"]
    assert services["asterisk"]["entrypoint"] == ["/bin/sh", "/callcore-entrypoint.sh"]
    assert "../asterisk-config:/etc/asterisk/callcore:ro" in services["asterisk"]["volumes"]
    assert 'cp "$ETC"/callcore/*.conf "$ETC"/' in entry and "${ASTERISK_ETC:-/etc/asterisk}" in entry
    # callcore reaches the AMI port manager.conf binds, as the user manager.conf defines
    manager = (ROOT / "asterisk-config" / "manager.conf").read_text()
    assert f"port = {services['callcore']['environment']['CALLCORE_AMI_PORT']}" in manager
    assert f"[{services['callcore']['environment']['CALLCORE_AMI_USERNAME']}]" in manager


def test_postgres_is_not_published_on_the_hosts_5432_and_callcore_uses_the_published_port():
    services = _compose()["services"]
    (mapping,) = services["postgres"]["ports"]
    host_ip, host_port, container_port = _default(mapping).split(":")
    assert host_ip == "127.0.0.1" and container_port == "5432"
    assert host_port != "5432"
    url = _default(services["callcore"]["environment"]["CALLCORE_DATABASE_URL"])
    assert f"@127.0.0.1:{host_port}/" in url
    env = services["postgres"]["environment"]
    assert f"://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@" in url and url.endswith("/" + env["POSTGRES_DB"])
    assert "55432" in (DOCKER / "README.md").read_text()


def test_rtp_range_of_compose_docs_and_rtp_conf_agree():
    rtp = (ROOT / "asterisk-config" / "rtp.conf").read_text()
    start = re.search(r"^rtpstart *= *(\d+)", rtp, re.M).group(1)
    end = re.search(r"^rtpend *= *(\d+)", rtp, re.M).group(1)
    assert f"RTP UDP {start}-{end}" in (DOCKER / "docker-compose.yml").read_text()
    assert f"RTP UDP {start}–{end}" in (DOCKER / "README.md").read_text()


@pytest.mark.parametrize("secret", ["s3cret", "a/b&c\\d e"])
def test_entrypoint_writes_the_secret_into_manager_conf(tmp_path, secret):
    """Run the real entrypoint against a copy of asterisk-config/ in a temp /etc/asterisk."""
    if shutil.which("sh") is None:  # pragma: no cover
        pytest.skip("no /bin/sh")
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc / "callcore")
    fake = tmp_path / "asterisk"
    fake.write_text('#!/bin/sh\necho "asterisk $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "ASTERISK_ETC": str(etc), "ASTERISK_BIN": str(fake), "CALLCORE_AMI_SECRET": secret}
    proc = subprocess.run(["sh", str(DOCKER / "asterisk-entrypoint.sh")], env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "asterisk -f -vvv"
    manager = (etc / "manager.conf").read_text()
    assert re.findall(r"^secret *=.*$", manager, re.M) == [f"secret = {secret}"]
    for conf in (etc / "callcore").glob("*.conf"):  # every shipped file is in place
        assert (etc / conf.name).is_file()
    # a secret with a newline would inject a second manager.conf line: refused
    env["CALLCORE_AMI_SECRET"] = "x\nwrite = all"
    bad = subprocess.run(["sh", str(DOCKER / "asterisk-entrypoint.sh")], env=env, capture_output=True, text=True, timeout=20)
    assert bad.returncode == 1 and "one line" in bad.stderr


def test_callcore_checks_mailboxes_against_the_asterisk_config_it_mounts():
    services = _compose()["services"]
    path = services["callcore"]["environment"]["CALLCORE_VOICEMAIL_CONF"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["callcore"]["volumes"]}
    target_dir, name = path.rsplit("/", 1)
    assert mounts[target_dir] == "../asterisk-config"  # the same files the asterisk service uses
    assert mounts[target_dir] + ":/etc/asterisk/callcore:ro" in services["asterisk"]["volumes"]
    assert (ROOT / "asterisk-config" / name).is_file()
