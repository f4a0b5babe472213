"""``callcore kb …``: check the suggestion rules, import/export Markdown, search, reports.

    callcore kb check [dialplans/kb/rules.yaml]     # file:line:col problems, exit 1 on errors
    callcore kb import kb/sample                     # upsert *.md (+ synonyms.yaml) by slug
    callcore kb export ./kb-export                   # every article as Markdown + front matter
    callcore kb search "환불해주세요"
    callcore kb gaps [--days 30]                      # calls with a disposition and no helpful article
    callcore kb expiring [--days 14]                  # articles past / near their validity date
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    kb = subparsers.add_parser("kb", help="knowledge base: check rules, import/export Markdown, search, reports")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    p = sub.add_parser("check", help="check the suggestion rules (exit 1 on errors)")
    p.add_argument("path", nargs="?", help="rules file (default: <dialplans>/kb/rules.yaml)")
    p.add_argument("--dialplans", help="dialplans directory whose node names 'path' rules may use")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("import", help="import a folder of Markdown articles (YAML front matter), upsert by slug")
    p.add_argument("directory")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export every article as Markdown with YAML front matter")
    p.add_argument("directory")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("search", help="search published articles")
    p.add_argument("query")
    p.add_argument("--queue")
    p.add_argument("--tag")
    p.add_argument("--limit", type=int, default=5)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("gaps", help="calls with a disposition but no article marked helpful")
    p.add_argument("--days", type=int)
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("expiring", help="published articles past or near their validity date (reminders)")
    p.add_argument("--days", type=int, default=14)
    p.set_defaults(func=cmd_expiring)
    for action in sub.choices.values():
        action.add_argument("--data-dir", type=Path, help="data directory (CALLCORE_DATA_DIR)")
        action.add_argument("--config", type=Path, help="YAML settings file (CALLCORE_CONFIG_FILE)")
    return kb


def _settings(args: argparse.Namespace):
    import os

    from callcore.settings import Settings

    if getattr(args, "config", None):
        os.environ["CALLCORE_CONFIG_FILE"] = str(args.config)
    kw: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        kw["data_dir"] = args.data_dir
    return Settings(**kw)


def cmd_check(args: argparse.Namespace) -> int:
    from ivr.checker import check_dir
    from kb.rules import load_rules

    settings = _settings(args)
    path = Path(args.path) if args.path else settings.effective_kb_rules_file
    dialplans = Path(args.dialplans) if args.dialplans else (path.parent.parent if path.parent.name == "kb" else settings.dialplans_dir)
    nodes = None
    if dialplans.is_dir():
        nodes = {n for f in check_dir(dialplans, check_sounds=False).flows.values() for n in f.nodes}
    rules, problems = load_rules(path, flow_nodes=nodes)
    for p in problems:
        print(p)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    print(f"{'OK' if not errors else 'FAILED'}: {errors} error(s), {warnings} warning(s); "
          f"{len(rules.rules) if rules else 0} rule(s) in {path}")
    return 1 if errors or (args.strict and warnings) else 0


def _run(args: argparse.Namespace, body: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``body(kb_service)`` against the configured database (SQLite is migrated first)."""
    from callcore import migrate
    from callcore.db import create_engine, session_factory
    from kb.analysis import Analyzer
    from kb.repository import KbRepository
    from kb.rules import load_rules
    from kb.service import KbService
    from recording.storage import build_storage

    settings = _settings(args)

    async def main() -> int:
        url = settings.effective_database_url
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url)
        try:
            rules_file = settings.effective_kb_rules_file
            rules = load_rules(rules_file)[0] if rules_file.is_file() else None
            kb = KbService(KbRepository(session_factory(engine)), Analyzer(),
                           store=build_storage(settings), rules=rules)
            await kb.start()
            try:
                return await body(kb)
            finally:
                await kb.stop()
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    print()


def cmd_import(args: argparse.Namespace) -> int:
    from kb.permissions import SYSTEM

    async def body(kb) -> int:
        report = await kb.import_dir(Path(args.directory), SYSTEM)
        for e in report.errors:
            print(f"error: {e}", file=sys.stderr)
        print(f"created {len(report.created)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
              f"errors {len(report.errors)}")
        return 1 if report.errors else 0

    return _run(args, body)


def cmd_export(args: argparse.Namespace) -> int:
    from kb.permissions import SYSTEM

    async def body(kb) -> int:
        written = await kb.export_dir(Path(args.directory), SYSTEM)
        print(f"wrote {len(written)} file(s) to {args.directory}")
        return 0

    return _run(args, body)


def cmd_search(args: argparse.Namespace) -> int:
    from kb.permissions import SYSTEM

    async def body(kb) -> int:
        res = await kb.search(args.query, SYSTEM, queue=args.queue, tag=args.tag, limit=args.limit)
        print(f"terms: {' '.join(res['searched'])}" + (f"  (corrected: {res['corrected']})" if res["corrected"] else ""))
        for r in res["results"]:
            print(f"{r['score']:8.3f}  {r['slug']:32} {r['title']}")
        return 0

    return _run(args, body)


def cmd_gaps(args: argparse.Namespace) -> int:
    from kb.permissions import SYSTEM

    async def body(kb) -> int:
        _print(await kb.gaps_report(SYSTEM, days=args.days))
        return 0

    return _run(args, body)


def cmd_expiring(args: argparse.Namespace) -> int:
    from kb.permissions import SYSTEM

    async def body(kb) -> int:
        rows = await kb.expiring(SYSTEM, within_days=args.days)
        for r in rows:
            print(f"{'EXPIRED' if r['expired'] else 'expires'} {r['valid_until'][:10]}  owner {r['owner'] or '-':8} {r['slug']}")
        if not rows:
            print("no article past or near its validity date")
        return 0

    return _run(args, body)
