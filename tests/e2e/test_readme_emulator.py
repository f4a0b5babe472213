"""The README's "PBX without Asterisk" recipe produces a screen pop (issue 9 item 13).

Runs the README's emulator command and its ``callcore desk 1001`` command exactly as written
(only the two port numbers are swapped for free ones: tests never take fixed ports), against
callcore started in-process with the shipped dialplans and a clock inside opening hours
(``scripts/serve`` is that server with the real clock). The desk must print ``call.ringing``
for the README's caller, in the queue the flow sends the caller to.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import sys

import pytest

from callcore.app import Container
from callcore.settings import Settings
from tests.e2e.conftest import OPEN_HOURS, ROOT, eventually

pytestmark = pytest.mark.slow  # the documented command runs in real time (~10 s)


def readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("**A PBX without Asterisk", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def command(prefix: str) -> list[str]:
    (line,) = [c for c in readme_block() if c.startswith(prefix)]
    return shlex.split(line, comments=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_recipe_is_what_this_test_runs():
    cmds = readme_block()
    assert cmds[0].startswith("scripts/serve")
    assert command(".venv/bin/callcore desk") == [".venv/bin/callcore", "desk", "--dev", "1001"]
    emu = command(".venv/bin/python -m tests.pbxsim")
    assert emu[emu.index("--ami-port") + 1] == "5038" and emu[emu.index("--agi") + 1] == "127.0.0.1:4573"
    # the documented member is in the queue the flow's digit leads to (main.yaml: "3" → sales_queue → sales)
    assert emu[emu.index("--member") + 1].startswith("sales=Local/1001@agents/n")
    assert "await:main_menu,press:3" in emu[emu.index("--script") + 1]


async def _lines(stream: asyncio.StreamReader, sink: list[str]) -> None:
    while line := await stream.readline():
        sink.append(line.decode("utf-8", "replace").rstrip("\n"))


async def test_the_readme_emulator_command_pops_the_call_on_the_desk(tmp_path):
    ami_port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data", http_port=0, agi_port=0, ami_port=ami_port,
        ami_reconnect_min=0.05, ami_reconnect_max=0.2, dialplans_dir=ROOT / "dialplans",
        dialplan_watch=False, dev_mode=True,
    )
    container = Container(settings, clock=lambda: OPEN_HOURS)
    await container.start()
    procs: list[asyncio.subprocess.Process] = []
    desk_out: list[str] = []
    emu_out: list[str] = []
    readers: list[asyncio.Task] = []
    # scripts/serve without a key = dev mode: the desk signs with the data directory's dev key
    env = {k: v for k, v in os.environ.items() if k not in ("CALLCORE_JWT_KEY", "CALLCORE_DEV_MODE")}
    env.update({"PYTHONPATH": str(ROOT), "CALLCORE_HTTP_PORT": str(container.http_port), "CALLCORE_DATA_DIR": str(settings.data_dir)})
    try:
        desk_cmd = command(".venv/bin/callcore desk")
        desk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcore.cli", *desk_cmd[1 + desk_cmd.index(".venv/bin/callcore"):],
            cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(desk)
        readers.append(asyncio.create_task(_lines(desk.stdout, desk_out)))
        await eventually(lambda: any(line.startswith("hello ") for line in desk_out), 10, "the desk connected")

        emu = command(".venv/bin/python -m tests.pbxsim")
        emu[emu.index("--ami-port") + 1] = str(ami_port)
        emu[emu.index("--agi") + 1] = f"127.0.0.1:{container.agi.port}"
        emu_proc = await asyncio.create_subprocess_exec(
            sys.executable, *emu[1:], cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        procs.append(emu_proc)
        readers.append(asyncio.create_task(_lines(emu_proc.stdout, emu_out)))

        def pop():
            for line in desk_out:
                if line.startswith("call.ringing "):
                    return json.loads(line.split(" ", 1)[1])
            return None

        payload = await eventually(pop, 40, f"call.ringing on the desk (desk: {desk_out}, emulator: {emu_out})")
        assert payload["caller_num"] == "01012345678" and payload["caller_name"] == "홍길동"
        assert payload["queue"] == "sales" and payload["agent_id"] == "1001"
        assert any("waiting for an AMI client" in line for line in emu_out)
        await eventually(lambda: any(line.startswith("call.answered ") for line in desk_out), 20, "call.answered")
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 10)
            except asyncio.TimeoutError:  # pragma: no cover
                p.kill()
        for t in readers:
            t.cancel()
        await container.stop()


async def test_callcore_desk_with_a_bad_token_is_refused_not_retried_forever(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", http_port=0, agi_port=0, ami_port=free_port(),
                        dialplans_dir=ROOT / "dialplans", dialplan_watch=False, dev_mode=True)
    container = Container(settings, clock=lambda: OPEN_HOURS)
    await container.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcore.cli", "desk", "1001", "--token", "not-a-token", "--timeout", "20",
            cwd=str(ROOT), env={**os.environ, "CALLCORE_HTTP_PORT": str(container.http_port)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 1
        assert "callcore desk: refused" in err.decode() and "--dev" in err.decode()
    finally:
        await container.stop()
