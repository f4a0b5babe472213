"""Issue 20 rough edge: `callcore dialplan versions` / `rollback` name the URL they tried."""

from __future__ import annotations

import argparse
import socket

from ivr import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(["dialplan", *argv])


def test_versions_and_rollback_say_which_url_they_could_not_reach():
    base = f"http://127.0.0.1:{_closed_port()}"
    lines: list[str] = []
    assert cli.cmd_versions(_parse("versions", "--api", base), lines.append) == 1
    assert lines[-1].startswith(f"cannot reach the callcore server at {base}/api/dialplans (ConnectError")
    assert "--api URL" in lines[-1] and "CALLCORE_HTTP_PORT" in lines[-1]
    assert cli.cmd_rollback(_parse("rollback", "main", "abc123", "--api", base), lines.append) == 1
    assert lines[-1].startswith(f"cannot reach the callcore server at {base}/api/dialplans/main/rollback (")
