"""``callcore qa check [PATH]``: validate QA forms and sampling rules (``file:line:col`` errors)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from qa.checker import check_path


def _default_dir() -> Path:
    try:
        from callcore.settings import Settings

        return Settings().qa_forms_dir
    except Exception:  # noqa: BLE001 - a broken config must not stop `check`
        return Path("qa-forms")


def cmd_check(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    path = Path(args.path) if args.path else _default_dir()
    result = check_path(path)
    for p in result.problems:
        if p.severity == "error" or not args.quiet:
            out(str(p))
    if not args.quiet:
        forms = ", ".join(sorted(result.forms)) or "none"
        rules = f"{len(result.rules.rules)} sampling rule(s)" if result.rules else "no sampling rules"
        out(f"{'FAILED' if result.errors else 'OK'}: {len(result.errors)} error(s); forms: {forms}; {rules}")
    return 1 if result.errors else 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    qa = subparsers.add_parser("qa", help="quality assurance: check evaluation forms and sampling rules")
    sub = qa.add_subparsers(dest="qa_command", required=True, metavar="ACTION")
    p = sub.add_parser("check", help="validate qa-forms/ (or one file) with file:line:col errors")
    p.add_argument("path", nargs="?", help="directory or file (default: settings qa_forms_dir)")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=cmd_check)
    return qa


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
