"""The ``callcore`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from callcore import logs
from callcore.settings import ALL_PARTS, Settings


def _settings_from_args(args: argparse.Namespace) -> Settings:
    """Command-line flags override environment, file and defaults."""
    overrides: dict[str, Any] = {}
    for name in ("http_host", "http_port", "agi_host", "agi_port", "ami_host", "ami_port", "data_dir", "dialplans_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "only", None):
        overrides["only"] = args.only
    if getattr(args, "log_json", False):
        overrides["log_json"] = True
    if getattr(args, "dev", False):
        overrides["dev_mode"] = True
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    if getattr(args, "config", None):
        import os

        os.environ["CALLCORE_CONFIG_FILE"] = str(args.config)
    return Settings(**overrides)


def _parts(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in ALL_PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"--only takes a comma list of {', '.join(ALL_PARTS)}; got {value!r}")
    return parts


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML settings file (also CALLCORE_CONFIG_FILE)")
    p.add_argument("--data-dir", type=Path, help="data directory (CALLCORE_DATA_DIR, default ./data)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING... (CALLCORE_LOG_LEVEL)")
    p.add_argument("--log-json", action="store_true", help="one JSON object per log line (CALLCORE_LOG_JSON)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcore",
        description="Contact-center server for Asterisk: IVR (FastAGI), routing, CTI screen pop, recording and QA.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (FastAGI + AMI client + HTTP/websocket API)")
    _add_common(serve)
    serve.add_argument("--only", type=_parts, help="run only these parts, e.g. --only agi or --only ami,http (CALLCORE_ONLY)")
    serve.add_argument("--http-host")
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--agi-host")
    serve.add_argument("--agi-port", type=int)
    serve.add_argument("--ami-host")
    serve.add_argument("--ami-port", type=int)
    serve.add_argument("--dialplans-dir", type=Path)
    serve.add_argument(
        "--dev", action="store_true",
        help="development on loopback only: generated signing key, `change-me` secrets only warn (CALLCORE_DEV_MODE)",
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database maintenance")
    _add_common(db)
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply the migrations (Alembic) up to REVISION (default head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    cur = dbsub.add_parser("current", help="print the database's migration revision")
    cur.set_defaults(func=cmd_db_current)

    from auth.permissions import ROLES

    token = sub.add_parser("token", help="issue an access token (signed with the server's key; refused with a default key)")
    _add_common(token)
    token.add_argument("subject", help="agent id (for role agent) or a name")
    token.add_argument("--role", choices=ROLES, default="agent")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 1 h)")
    token.add_argument("--dev", action="store_true", help="use the dev-mode key of the data directory")
    token.set_defaults(func=cmd_token)

    # --- security (issue 11): `callcore audit verify`, `callcore user add`
    from audit import cli as audit_cli
    from auth import cli as auth_cli

    audit_cli.register(sub, _add_common)
    auth_cli.register(sub, _add_common)

    agi = sub.add_parser("agi", help="classic AGI: run one call's IVR over stdin/stdout (AGI(callcore-agi))")
    agi.set_defaults(func=cmd_agi)

    try:
        from ivr import cli as ivr_cli
    except ImportError:  # pragma: no cover - the IVR package is part of the distribution
        ivr_cli = None
    if ivr_cli is not None and hasattr(ivr_cli, "register"):
        ivr_cli.register(sub)
    # --- reports (issue 16): callcore report
    from reports import cli as reports_cli

    reports_cli.register(sub)
    # --- recording (issue 13): callcore recording check|purge|rotate-keys|process
    from recording import cli as recording_cli

    recording_cli.register(sub)
    # --- kb (issue 17): callcore kb check|import|export|search|gaps|expiring
    from kb import cli as kb_cli

    kb_cli.register(sub)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from callcore.app import serve

    settings = _settings_from_args(args)
    logs.configure(settings.log_level, settings.log_json)
    asyncio.run(serve(settings))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from callcore import migrate

    settings = _settings_from_args(args)
    logs.configure(settings.log_level, settings.log_json)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.effective_database_url, args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    from callcore import migrate
    from callcore.db import create_engine

    settings = _settings_from_args(args)

    async def run() -> str | None:
        engine = create_engine(settings.effective_database_url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    rev = asyncio.run(run())
    print(f"current: {rev or '(empty database)'}  head: {migrate.head_revision()}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth import issue_token

    from auth.checker import signing_keys

    settings = _settings_from_args(args)
    print(issue_token(signing_keys(settings), args.subject, args.role, args.ttl))
    return 0


def cmd_agi(args: argparse.Namespace) -> int:
    from ivr.agi.classic import main as classic_main

    return classic_main() or 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for operators; traceback with --log-level DEBUG
        logging.getLogger("callcore").debug("command failed", exc_info=True)
        print(f"callcore: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
