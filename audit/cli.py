"""``callcore audit verify``: recompute the audit log's hash chain (exit 1 if broken)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any


def register(sub: Any, add_common: Any) -> None:
    audit = sub.add_parser("audit", help="the audit log")
    add_common(audit)
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = asub.add_parser("verify", help="check the hash chain; exit 1 and name the first bad row if it is broken")
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from audit.service import AuditLog
    from callcore.cli import _settings_from_args
    from callcore.db import create_engine, session_factory

    settings = _settings_from_args(args)

    async def run() -> Any:
        engine = create_engine(settings.effective_database_url)
        try:
            return await AuditLog(session_factory(engine)).verify()
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    print(json.dumps(result.as_dict()))
    if result.ok:
        print(f"audit log intact: {result.checked} entries")
        return 0
    print(f"audit log TAMPERED at entry {result.first_bad_id}: {result.reason}")
    return 1
