"""``callcore user add``: create a user account (the first admin, typically).

The password comes from ``CALLCORE_NEW_PASSWORD`` or an interactive prompt, never
from the command line (it would land in the shell history and the process list)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from typing import Any

from auth.permissions import ROLES


def register(sub: Any, add_common: Any) -> None:
    user = sub.add_parser("user", help="user accounts")
    add_common(user)
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="create a user (password from CALLCORE_NEW_PASSWORD or a prompt)")
    add.add_argument("id", help="login name")
    add.add_argument("--name", help="display name (default: the login name)")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--queue", action="append", default=[], help="limit to this queue (repeat for more)")
    add.add_argument("--agent", help="the agent id this user acts as")
    add.set_defaults(func=cmd_user_add)


def cmd_user_add(args: argparse.Namespace) -> int:
    from audit.service import AuditLog
    from auth.ratelimit import LoginThrottle
    from auth.repository import AuthRepository
    from auth.service import AuthService
    from auth.tokens import Authenticator
    from callcore import migrate
    from callcore.cli import _settings_from_args
    from callcore.db import create_engine, session_factory

    settings = _settings_from_args(args)
    password = os.environ.get("CALLCORE_NEW_PASSWORD") or getpass.getpass(f"password for {args.id}: ")
    if len(password) < 12:
        raise ValueError("the password must be at least 12 characters")
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(url)

    async def run() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            sm = session_factory(engine)
            service = AuthService(AuthRepository(sm), Authenticator("unused-" + "x" * 32), audit=AuditLog(sm), throttle=LoginThrottle(lambda: 0.0))
            return await service.create_user(
                "cli", id=args.id, password=password, name=args.name or args.id, role=args.role, queues=args.queue, agent_id=args.agent,
            )
        finally:
            await engine.dispose()

    row = asyncio.run(run())
    print(f"user {row['id']} created (role {row['role']})")
    return 0
