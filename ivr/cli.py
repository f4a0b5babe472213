"""``callcore dialplan ...``: check, try, graph, versions, rollback, sounds.

``register(subparsers)`` adds the ``dialplan`` group to the main argparse
parser; each leaf sets ``func(args) -> int`` (the exit status). Standalone:
``python -m ivr.cli dialplan check dialplans/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ivr.channel import CallInfo
from ivr.checker import check_dir, check_path, required_sounds


def _default_dir() -> Path:
    try:
        from callcore.settings import Settings

        return Settings().dialplans_dir
    except Exception:  # noqa: BLE001 - a broken config must not stop `check`
        return Path("dialplans")


def _api_base(args: argparse.Namespace) -> str:
    if args.api:
        return args.api.rstrip("/")
    from callcore.settings import Settings

    s = Settings()
    return f"http://{s.http_host}:{s.http_port}"


def _voicemail_conf(args: argparse.Namespace) -> Path | None:
    """``--voicemail-conf PATH`` (``none``: skip), else ``settings.voicemail_conf``."""
    given = getattr(args, "voicemail_conf", None)
    if given is not None:
        return None if given == "none" else Path(given)
    from callcore.settings import Settings

    return Settings().voicemail_conf


# ---------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    path = Path(args.path) if args.path else _default_dir()
    sounds = Path(args.sounds) if args.sounds else None
    result = check_path(path, sounds_dir=sounds, check_sounds=not args.no_sounds, voicemail_conf=_voicemail_conf(args))
    for p in result.problems:
        if p.severity == "error" or not args.quiet:
            out(str(p))
    errors = len(result.errors) + (len(result.warnings) if args.strict else 0)
    if not args.quiet:
        flows = ", ".join(sorted(result.flows)) or "none"
        out(f"{'FAILED' if errors else 'OK'}: {len(result.errors)} error(s), {len(result.warnings)} warning(s); flows: {flows}")
    return 1 if errors else 0


# ---------------------------------------------------------------- try
class _FixedWaitRouter:
    def __init__(self, wait: int | None) -> None:
        self.wait = wait

    async def route(self, request: Any) -> Any:
        from ivr.ports import RouteDecision

        return RouteDecision(queue=request.queue, priority=request.priority, estimated_wait=self.wait,
                             reasons=(("vip",) if request.vip else ()))


def _parse_at(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise SystemExit("--at needs a UTC offset, e.g. 2026-12-25T10:00+09:00")
    return dt


async def _try(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    from ivr.console import ConsoleChannel
    from ivr.engine import Engine
    from ivr.lookup import FixtureLookupClient, HttpLookupClient
    from ivr.ports import InMemoryCallbackSink

    directory = Path(args.dir) if args.dir else _default_dir()
    result = check_dir(directory, Path(args.sounds) if args.sounds else None)
    if not result.ok:
        for p in result.errors:
            out(str(p))
        out(f"the dialplans in {directory} fail the checker; fix them first (callcore dialplan check {directory})")
        return 1
    if args.flow not in result.flows:
        out(f"no flow {args.flow!r} in {directory} (flows: {', '.join(sorted(result.flows))})")
        return 2
    at = _parse_at(args.at)
    release = None
    if args.lookup_fixture:
        lookup: Any = FixtureLookupClient.from_file(Path(args.lookup_fixture))
    elif args.crm_url:
        lookup = HttpLookupClient(args.crm_url)
    else:  # what the server uses: settings.crm_url, else its built-in customer table
        from callcore.settings import Settings
        from callcore.wiring import build_try_lookup

        lookup, what, release = await build_try_lookup(Settings())
        out(what)
    callbacks = InMemoryCallbackSink()
    answers = None if args.interactive else ([] if args.digits in (None, "") else args.digits.split(","))
    info = CallInfo(
        uniqueid="console-1", channel="Console/dsp", caller_num=args.caller, caller_name=None, dialed=args.dialed,
        language=args.lang or "ko", params={"flow": args.flow},
    )
    from ivr.console import TerminalKeys

    keys = TerminalKeys() if args.interactive and sys.stdin.isatty() else None
    channel = ConsoleChannel(info, answers, interactive=args.interactive, out=out, keys=keys)
    engine = Engine(result.flows, router=_FixedWaitRouter(args.queue_wait), callbacks=callbacks, lookup=lookup,
                    clock=lambda: at, trace=out)
    out(f"☎ call from {args.caller or 'anonymous'} to {args.dialed or '-'} at {at.isoformat()} → flow {args.flow!r}")
    try:
        outcome = await engine.run(channel, args.flow, args.lang)
    finally:
        aclose = getattr(lookup, "aclose", None)
        if aclose:
            await aclose()
        if release is not None:
            await release()
    out("")
    if outcome.kind == "queue":
        t = f", timeout {outcome.timeout} s" if outcome.timeout else ""
        out(f"■ call ends in queue {outcome.queue!r} priority {outcome.priority}{t}")
        out("  screen pop data: " + json.dumps(outcome.data, ensure_ascii=False))
        if outcome.survey_flow:
            out(f"  after the agent: survey flow {outcome.survey_flow!r}")
    elif outcome.kind == "callback":
        req = callbacks.requests[-1] if callbacks.requests else None
        out(f"■ call ends with a callback request for {req.number if req else '?'} (queue {outcome.queue!r}, time {req.requested_time if req else None})")
    else:
        out(f"■ call ends: {outcome.kind} at {outcome.end_node}" + (f" ({outcome.error})" if outcome.error else ""))
    if outcome.survey_answers:
        out("  survey answers: " + json.dumps(outcome.survey_answers))
    out("  path: " + " → ".join(outcome.context["path"]))
    lang = outcome.language
    journey = [e["text"].get(lang) or e["text"].get("*") or next(iter(e["text"].values())) for e in outcome.context["journey"]]
    out("  journey (screen pop): " + (" → ".join(journey) if journey else "(no node has a label)"))
    out("  IVR context for the agent: " + json.dumps(outcome.context["agent"], ensure_ascii=False))
    if args.json:
        out(json.dumps({"outcome": outcome.kind, "queue": outcome.queue, "priority": outcome.priority, "data": outcome.data,
                        "context": outcome.context, "steps": [s.as_dict() for s in outcome.steps]}, ensure_ascii=False, indent=2))
    return 0


def cmd_try(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    return asyncio.run(_try(args, out))


# ---------------------------------------------------------------- graph
def cmd_graph(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from ivr.graph import pick_font, to_dot

    directory = Path(args.dir) if args.dir else _default_dir()
    result = check_dir(directory, check_sounds=False)
    flow = result.flows.get(args.flow)
    if flow is None:
        out(f"no flow {args.flow!r} in {directory} (flows: {', '.join(sorted(result.flows))})")
        return 2
    font, advice = pick_font(flow)
    dot = to_dot(flow, font)
    if advice and args.output:
        out(f"note: {advice}")
    if not args.output:
        out(dot.rstrip("\n"))
        return 0
    target = Path(args.output)
    fmt = target.suffix.lstrip(".").lower()
    if fmt == "dot":
        target.write_text(dot, encoding="utf-8")
        out(f"wrote {target}")
        return 0
    dot_bin = shutil.which("dot")
    if dot_bin is None:
        dot_path = target.with_suffix(".dot")
        dot_path.write_text(dot, encoding="utf-8")
        out(f"Graphviz 'dot' is not installed; wrote {dot_path}. Render it with: dot -T{fmt} {dot_path} -o {target}")
        return 0
    proc = subprocess.run([dot_bin, f"-T{fmt}", "-o", str(target)], input=dot.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        out(f"dot failed: {proc.stderr.decode(errors='replace')}")
        return 1
    out(f"wrote {target}")
    return 0


# ---------------------------------------------------------------- versions / rollback (running server)
def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    """``--token`` or ``CALLCORE_API_TOKEN``; else, on the server's own host, a 5-minute
    admin token signed with the shared ``CALLCORE_JWT_KEY`` from the settings."""
    import os

    token = getattr(args, "token", None) or os.environ.get("CALLCORE_API_TOKEN")
    if not token:
        from api.auth import issue_token
        from callcore.settings import Settings

        token = issue_token(Settings().jwt_key.get_secret_value(), "cli", "admin", 300)
    return {"Authorization": f"Bearer {token}"}


def _unreachable(url: str, exc: Exception) -> str:
    """One line: which URL was tried, why it failed, and what to set (issue 20)."""
    return (f"cannot reach the callcore server at {url} ({exc.__class__.__name__}: {exc}); "
            "is it running (scripts/serve)? Point at it with --api URL or CALLCORE_HTTP_HOST / CALLCORE_HTTP_PORT")


def cmd_versions(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    import httpx

    url = f"{_api_base(args)}/api/dialplans"
    try:
        resp = httpx.get(url, headers=_auth_headers(args), timeout=10)
    except httpx.HTTPError as exc:
        out(_unreachable(url, exc))
        return 1
    data = resp.json()
    for v in data.get("versions", []):
        if args.flow and v["flow"] != args.flow:
            continue
        mark = "*" if v["active"] else " "
        out(f"{mark} {v['flow']:<20} {v['hash'][:12]}  {v['loaded_at']}  {v['file']}")
    return 0 if resp.status_code == 200 else 1


def cmd_rollback(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    import httpx

    url = f"{_api_base(args)}/api/dialplans/{args.flow}/rollback"
    try:
        resp = httpx.post(url, json={"hash": args.hash}, headers=_auth_headers(args), timeout=30)
    except httpx.HTTPError as exc:
        out(_unreachable(url, exc))
        return 1
    data = resp.json()
    if resp.status_code == 200 and data.get("ok"):
        out(f"{args.flow} now serves version {data['versions'][args.flow][:12]}")
        return 0
    for e in data.get("errors", [data]):
        out(str(e))
    return 1


# ---------------------------------------------------------------- sounds
def cmd_sounds(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from ivr.checker import sound_exists
    from ivr.sounds import write_missing

    directory = Path(args.dir) if args.dir else _default_dir()
    sounds = Path(args.sounds) if args.sounds else directory / "sounds"
    result = check_dir(directory, check_sounds=False)
    needed = required_sounds(result.flows)
    missing = [(lang, name) for lang, name in needed if not sound_exists(sounds, lang, name)]
    for lang, name in missing:
        out(f"missing {lang}/{name}")
    if args.placeholders and missing:
        written = write_missing(sounds, missing)
        out(f"wrote {len(written)} placeholder(s) under {sounds}")
        return 0
    out(f"{len(needed)} sound(s) referenced, {len(missing)} missing")
    return 1 if missing and not args.placeholders else 0


# ---------------------------------------------------------------- wiring
def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add ``dialplan`` (check/try/graph/versions/rollback/sounds) to a subparsers object."""
    dp = subparsers.add_parser("dialplan", help="check, try and review IVR dialplans")
    sub = dp.add_subparsers(dest="dialplan_command", required=True)

    p = sub.add_parser("check", help="check flows: schema, targets, loops, schedules, sounds (exit 1 on errors)")
    p.add_argument("path", nargs="?", help="a dialplans directory or one flow file (default: settings.dialplans_dir)")
    p.add_argument("--sounds", help="sounds directory (default: <dialplans>/sounds)")
    p.add_argument("--no-sounds", action="store_true", help="skip the sound-file check")
    p.add_argument("--voicemail-conf", help="Asterisk voicemail.conf the mailboxes must exist in "
                   "(default: settings voicemail_conf = asterisk-config/voicemail.conf; 'none' skips the check)")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("try", help="run a flow on the console and show what the caller hears and why")
    p.add_argument("flow")
    p.add_argument("--dir", help="dialplans directory (default: settings.dialplans_dir)")
    p.add_argument("--sounds", help="sounds directory")
    p.add_argument("--caller", default="01012345678")
    p.add_argument("--dialed", default="1588-0000")
    p.add_argument("--lang", help="initial language (default: the flow's default_language)")
    p.add_argument("--digits", help="answers, comma separated: '1,2,0101234#' ('' or t = timeout); then the caller hangs up")
    p.add_argument("--at", help="call time with offset, e.g. 2026-12-25T10:00+09:00 (default: now)")
    p.add_argument("--lookup-fixture", help="YAML mapping path -> response used instead of the CRM")
    p.add_argument("--crm-url", help="a CRM base URL for lookups (default: what the server uses — settings.crm_url, "
                   "else the built-in customer table of the configured database)")
    p.add_argument("--queue-wait", type=int, help="estimated queue wait in seconds the router reports")
    p.add_argument("-i", "--interactive", action="store_true", help="read key presses from the terminal (single keys with real timeouts on a TTY; else one line per answer)")
    p.add_argument("--json", action="store_true", help="also print the outcome, context and step log as JSON")
    p.set_defaults(func=cmd_try)

    p = sub.add_parser("graph", help="Graphviz DOT of a flow (to stdout, or -o file.dot/.svg/.png)")
    p.add_argument("flow")
    p.add_argument("--dir")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("versions", help="list loaded versions on the running server")
    p.add_argument("flow", nargs="?")
    p.add_argument("--api", help="server base URL (default: from settings)")
    p.add_argument("--token", help="API token (default: CALLCORE_API_TOKEN, else an admin token from CALLCORE_JWT_KEY)")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("rollback", help="serve an earlier version of a flow on the running server")
    p.add_argument("flow")
    p.add_argument("hash", help="content hash or a 6+ character prefix (see `dialplan versions`)")
    p.add_argument("--api", help="server base URL (default: from settings)")
    p.add_argument("--token", help="API token (default: CALLCORE_API_TOKEN, else an admin token from CALLCORE_JWT_KEY)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("sounds", help="list sounds the flows need that are missing")
    p.add_argument("dir", nargs="?")
    p.add_argument("--sounds")
    p.add_argument("--placeholders", action="store_true", help="write tiny placeholder WAVs for the missing ones")
    p.set_defaults(func=cmd_sounds)
    return dp


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callcore")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
