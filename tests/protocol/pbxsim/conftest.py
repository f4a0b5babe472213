from __future__ import annotations

from pathlib import Path

import pytest

from tests.pbxsim import Pbx, PbxConfig, QueueConfig

from .helpers import AgiScript, RawAmi, start_agi

#: time scale for the conformance runs: a 30 s capture scenario plays in 1.5 s
SCALE = 0.05


def capture_config(tmp_path: Path, agi_port: int = 1, **kw) -> PbxConfig:
    """The conditions of the capture run: asterisk-etc/queues.conf, its dialplan, hello-world ≈ 1 s."""
    return PbxConfig(
        queues=[
            QueueConfig("sales", "ringall", timeout=10, retry=2),
            QueueConfig("support", "leastrecent", timeout=10, retry=2),
        ],
        dialplan="capture",
        agi_port=agi_port,
        time_scale=kw.pop("time_scale", SCALE),
        monitor_dir=tmp_path / "monitor",
        prompt_seconds={"hello-world": 1.0, "beep": 0.5},
        **kw,
    )


@pytest.fixture
async def agi_server():
    servers = []

    async def make(commands: list[str]) -> tuple[AgiScript, int]:
        script = AgiScript(commands)
        server, port = await start_agi(script)
        servers.append(server)
        return script, port

    yield make
    for s in servers:
        s.close()
        await s.wait_closed()


@pytest.fixture
async def pbx_factory(tmp_path):
    made: list[Pbx] = []

    async def make(cfg: PbxConfig | None = None, **kw) -> Pbx:
        pbx = Pbx(cfg or capture_config(tmp_path, **kw))
        await pbx.start()
        made.append(pbx)
        return pbx

    yield make
    for p in made:
        await p.close()
        assert not p.errors, p.errors


@pytest.fixture
async def ami_factory():
    clients: list[RawAmi] = []

    async def make(port: int) -> RawAmi:
        c = await RawAmi().connect(port)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()
