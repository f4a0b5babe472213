"""``callcore recording ...``: check a policy file, run the purge, rotate encryption keys.

``check FILE`` prints every problem as ``file:line:col: message`` (like
``callcore dialplan check``) and exits 1 when there are errors.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any, Callable


def cmd_check(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from recording.checker import DEFAULT_POLICY_FILE, check_file

    path = Path(args.file) if args.file else DEFAULT_POLICY_FILE
    result = check_file(path)
    for p in result.problems:
        out(str(p))
    if result.ok and result.policy is not None:
        out(f"{path}: OK ({len(result.policy.rules)} rules)")
        return 0
    out(f"{path}: {len(result.errors)} error(s)")
    return 1


async def _with_service(args: argparse.Namespace, fn: Callable[[Any], Any]) -> Any:
    from callcore.cli import _settings_from_args
    from callcore.db import create_engine, session_factory
    from recording.service import build_recording_service

    settings = _settings_from_args(args)
    engine = create_engine(settings.effective_database_url)
    try:
        service = build_recording_service(settings, sessionmaker=session_factory(engine), ami=None)
        return await fn(service)
    finally:
        await engine.dispose()


def cmd_purge(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    purged = asyncio.run(_with_service(args, lambda s: s.purge_once()))
    out(f"purged {len(purged)} recording(s) past retention: {purged}")
    return 0


def cmd_rotate(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    n = asyncio.run(_with_service(args, lambda s: s.rotate_keys()))
    out(f"rewrapped {n} data key(s) with the active master key")
    return 0


def cmd_process(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    n = asyncio.run(_with_service(args, lambda s: s.run_due_jobs()))
    out(f"ran {n} due post-processing job(s)")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    from callcore.cli import _add_common

    rec = subparsers.add_parser("recording", help="recording policies, retention purge, encryption keys")
    sub = rec.add_subparsers(dest="recording_command", required=True, metavar="ACTION")
    p = sub.add_parser("check", help="check a recording-policies file (exit 1 on errors)")
    p.add_argument("file", nargs="?", help="default: the shipped recording/recording-policies.yaml")
    p.set_defaults(func=cmd_check)
    for name, fn, text in (
        ("purge", cmd_purge, "delete the audio of recordings past retention (not on hold) now"),
        ("rotate-keys", cmd_rotate, "rewrap every data key with recording_master_key_id"),
        ("process", cmd_process, "run the due post-processing jobs once"),
    ):
        q = sub.add_parser(name, help=text)
        _add_common(q)
        q.set_defaults(func=fn)
    return rec
