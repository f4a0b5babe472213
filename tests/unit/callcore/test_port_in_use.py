"""Issue 20 rough edge: a port already in use is one clear line (which port, what to set), for the
HTTP port as for the FastAGI port; never a traceback (``callcore serve`` prints an exception's text
as ``callcore: error: …``)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from callcore.app import Container
from callcore.cli import main
from callcore.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.slow  # starts the real container twice
@pytest.mark.parametrize("which,field,env_name", [("HTTP", "http_port", "CALLCORE_HTTP_PORT"), ("FastAGI", "agi_port", "CALLCORE_AGI_PORT")])
async def test_port_in_use_is_one_clear_error(tmp_path, busy_port, which, field, env_name, caplog):
    settings = Settings(data_dir=tmp_path, ami_port=1, http_port=0, agi_port=0, dialplans_dir=ROOT / "dialplans",
                        dialplan_watch=False).model_copy(update={field: busy_port})
    container = Container(settings)
    caplog.set_level(logging.ERROR)
    try:
        with pytest.raises(OSError) as err:
            await container.start()
    finally:
        await container.stop()
    msg = str(err.value)
    assert msg.startswith(f"[Errno 98] {which} port 127.0.0.1:{busy_port} cannot be opened (Address already in use)"), msg
    assert env_name in msg and "\n" not in msg
    # no traceback about the port (uvicorn's SystemExit(3), a failed "http" task)
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith(("uvicorn", "callcore", "ivr"))]


def test_the_cli_prints_an_error_as_one_line(monkeypatch, capsys):
    import callcore.cli as cli

    def boom(args):
        raise OSError(98, "HTTP port 127.0.0.1:8080 cannot be opened (Address already in use): …")

    monkeypatch.setattr(cli, "cmd_serve", boom)
    assert main(["serve"]) == 1
    assert capsys.readouterr().err == "callcore: error: [Errno 98] HTTP port 127.0.0.1:8080 cannot be opened (Address already in use): …\n"
