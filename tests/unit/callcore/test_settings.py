from pathlib import Path

import pytest

from callcore.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for k in list(os.environ):
        if k.startswith("CALLCORE_"):
            monkeypatch.delenv(k)


def test_defaults_need_no_file_and_no_service():
    s = Settings()
    assert s.http_host == "127.0.0.1" and s.http_port == 8080
    assert s.agi_port == 4573 and s.ami_port == 5038
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert s.effective_database_url.endswith("data/callcore.db")
    assert s.only == ["agi", "ami", "http"]


def test_precedence_defaults_then_file_then_environment_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "callcore.yaml"
    cfg.write_text("http_port: 9000\nagi_port: 4600\nami_host: pbx.example\nami_secret: from-file\n")
    monkeypatch.setenv("CALLCORE_CONFIG_FILE", str(cfg))
    s = Settings()
    assert (s.http_port, s.agi_port, s.ami_host) == (9000, 4600, "pbx.example")

    monkeypatch.setenv("CALLCORE_HTTP_PORT", "9100")  # environment beats the file
    s = Settings()
    assert s.http_port == 9100 and s.agi_port == 4600
    assert s.ami_secret.get_secret_value() == "from-file"

    s = Settings(http_port=9200)  # command-line flags (init kwargs) beat everything
    assert s.http_port == 9200


def test_all_documented_environment_names(monkeypatch, tmp_path):
    env = {
        "CALLCORE_DATA_DIR": str(tmp_path / "d"),
        "CALLCORE_DATABASE_URL": "postgresql+asyncpg://cc:pw@db/cc",
        "CALLCORE_HTTP_HOST": "0.0.0.0",
        "CALLCORE_HTTP_PORT": "8181",
        "CALLCORE_AGI_HOST": "0.0.0.0",
        "CALLCORE_AGI_PORT": "4574",
        "CALLCORE_AMI_HOST": "10.0.0.5",
        "CALLCORE_AMI_PORT": "5039",
        "CALLCORE_AMI_USERNAME": "cc",
        "CALLCORE_AMI_SECRET": "s3cret",
        "CALLCORE_DIALPLANS_DIR": str(tmp_path / "plans"),
        "CALLCORE_ONLY": "agi,http",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    assert s.data_dir == Path(env["CALLCORE_DATA_DIR"])
    assert s.effective_database_url == env["CALLCORE_DATABASE_URL"]
    assert (s.http_host, s.http_port, s.agi_host, s.agi_port) == ("0.0.0.0", 8181, "0.0.0.0", 4574)
    assert (s.ami_host, s.ami_port, s.ami_username) == ("10.0.0.5", 5039, "cc")
    assert s.dialplans_dir == Path(env["CALLCORE_DIALPLANS_DIR"])
    assert s.only == ["agi", "http"] and not s.runs("ami")


def test_secrets_never_in_repr_or_dump(monkeypatch):
    monkeypatch.setenv("CALLCORE_AMI_SECRET", "topsecret-ami")
    monkeypatch.setenv("CALLCORE_DATABASE_URL", "postgresql+asyncpg://u:topsecret-db@h/d")
    monkeypatch.setenv("CALLCORE_JWT_KEY", "topsecret-jwt")
    s = Settings()
    text = repr(s) + str(s.model_dump()) + s.model_dump_json()
    assert "topsecret" not in text


def test_bad_config_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLCORE_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        Settings()
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    monkeypatch.setenv("CALLCORE_CONFIG_FILE", str(bad))
    with pytest.raises(ValueError, match="mapping"):
        Settings()
