"""``callcore report``: queue / agent / IVR / survey reports from callcore's fact store, or
queue and agent figures straight from an Asterisk ``queue_log`` file.

Contract (scripts depend on it)::

    callcore report --queue-log FILE --format csv [--short-abandon-seconds N] [--service-level-seconds T]

prints one CSV row per queue, first columns
``queue,offered,answered,abandoned,short_abandoned,asa_seconds,service_level_pct,aht_seconds,longest_wait_seconds``
(abandoned excludes short abandons; seconds as decimals). Without ``--queue-log`` it reads
callcore's store for ``--from/--to`` (default: today in the center's time zone).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

QUEUE_COLUMNS = ["queue", "offered", "answered", "abandoned", "short_abandoned", "asa_seconds", "service_level_pct",
                 "aht_seconds", "longest_wait_seconds"]
QUEUE_EXTRA = ["timeouts", "abandon_rate_pct", "service_level_seconds", "service_level_formula", "answered_in_sl",
               "avg_talk_seconds", "avg_hold_seconds", "avg_wrapup_seconds", "handled", "transfers", "in_progress"]
AGENT_COLUMNS = ["agent_id", "answered", "handled", "aht_seconds", "talk_seconds", "hold_seconds", "wrapup_seconds",
                 "transfers", "login_seconds", "pause_seconds_total", "occupancy_pct"]
QUALITY_COLUMNS = ["by", "key", "handled_calls", "recording_required", "recorded", "recording_failed", "recording_pending",
                   "recorded_pct", "recording_compliance_pct", "evaluated_calls", "evaluations", "qa_coverage_pct",
                   "qa_coverage_of_handled_pct", "qa_avg_score", "qa_critical_failed", "qa_critical_failed_pct"]
DECIMALS = ("_seconds", "_pct", "_seconds_total", "_score")  # columns written with two decimals


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="KPI reports (queues, agents, IVR, surveys) from callcore's store or a queue_log")
    from callcore.cli import _add_common

    _add_common(p)
    p.add_argument("what", nargs="?", default="queues", choices=["queues", "agents", "ivr", "surveys", "quality", "rebuild"],
                   help="which report (default queues); 'quality': recording and QA coverage and QA scores "
                        "(--by); 'rebuild' rebuilds the 15-minute rollups of --from/--to")
    p.add_argument("--by", choices=["queue", "agent", "form", "all"], default="queue",
                   help="quality report: one row per queue (default), agent, QA form, or the whole center")
    p.add_argument("--queue-log", type=Path, help="compute from an Asterisk queue_log file instead of callcore's store")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--output", "-o", type=Path, help="also write the report as CSV to this file")
    p.add_argument("--from", dest="from_", help="start: 2026-12-02, 2026-12-02T09:00 (center's time zone) or epoch")
    p.add_argument("--to", help="end (exclusive); default: now / the end of --from's day")
    p.add_argument("--interval", choices=["15min", "hour", "day", "week", "month"])
    p.add_argument("--queue", action="append", help="only this queue (repeatable)")
    p.add_argument("--agent", action="append", help="only this agent (repeatable)")
    p.add_argument("--short-abandon-seconds", type=float, help="abandons under N seconds are short (excluded)")
    p.add_argument("--service-level-seconds", type=float, help="service-level threshold T for every queue")
    p.add_argument("--service-level-formula", choices=["answered", "offered", "abandoned_in_t_positive",
                                                       "abandoned_after_t"])
    p.set_defaults(func=cmd_report)


def _override(cfg: Any, args: argparse.Namespace) -> Any:
    kw: dict[str, Any] = {}
    if args.short_abandon_seconds is not None:
        kw["short_abandon_seconds"] = args.short_abandon_seconds
    if args.service_level_seconds is not None:
        kw["service_level_seconds"] = args.service_level_seconds
    if args.service_level_formula is not None:
        kw["sl_formula"] = args.service_level_formula
    return replace(cfg, **kw) if kw else cfg


def _check(args: argparse.Namespace) -> None:
    for name in ("short_abandon_seconds", "service_level_seconds"):
        v = getattr(args, name)
        if v is not None and v < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0")


def cmd_report(args: argparse.Namespace) -> int:
    from callcore.cli import _settings_from_args
    from reports.service import ReportConfig

    _check(args)
    settings = _settings_from_args(args)
    config = ReportConfig.from_settings(settings)
    config.default_queue = _override(config.default_queue, args)
    config.queues = {q: _override(c, args) for q, c in config.queues.items()}
    if args.queue_log is not None:
        if args.what not in ("queues", "agents"):
            raise ValueError("a queue_log has queue and agent figures only")
        rows = _from_queue_log(args, config)
    else:
        rows = asyncio.run(_from_store(args, settings, config))
    if args.what == "rebuild":
        print(f"rollups rebuilt: {rows} intervals")
        return 0
    columns = _columns(args.what, rows)
    if args.output is not None:
        args.output.write_text(to_csv(rows, columns), encoding="utf-8")
    if args.format == "csv":
        sys.stdout.write(to_csv(rows, columns))
    elif args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(to_table(rows, columns))
    return 0


def _from_queue_log(args: argparse.Namespace, config: Any) -> list[dict[str, Any]]:
    from reports import formulas as fm
    from reports.queuelog import parse_file

    ql = parse_file(args.queue_log)
    if ql.bad_lines:
        print(f"callcore: warning: {args.queue_log}: {len(ql.bad_lines)} unreadable line(s), first at line "
              f"{ql.bad_lines[0]}", file=sys.stderr)
    visits = [v for v in ql.visits if not args.queue or v.queue in args.queue]
    if args.what == "agents":
        lo, hi = ql.first_at or 0.0, (ql.last_at or 0.0) + 1
        return [m.to_dict() for m in fm.agents_report(visits, ql.spans, lo, hi)
                if not args.agent or m.agent_id in args.agent]
    return [m.to_dict() for m in fm.queues_report(visits, config.queues, config.default_queue)]


async def _from_store(args: argparse.Namespace, settings: Any, config: Any) -> Any:
    from callcore.db import create_engine, session_factory
    from reports.repository import ReportRepository
    from reports.service import ReportService

    from sqlalchemy.exc import DBAPIError

    engine = create_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:  # a clear word instead of "no such table"
            from sqlalchemy import inspect

            if not await conn.run_sync(lambda c: inspect(c).has_table("report_facts")):
                raise ValueError("the database has no report tables yet: run `callcore db upgrade` "
                                 "(or start `callcore serve` once)")
    except DBAPIError as exc:
        await engine.dispose()
        raise ValueError(f"cannot read the database: {exc.orig}") from None
    except BaseException:
        await engine.dispose()
        raise
    try:
        svc = ReportService(ReportRepository(session_factory(engine)), config)
        if args.what == "rebuild":
            lo, hi = svc._period(args.from_, args.to, None)
            return await svc.rebuild_rollups(lo, hi)
        if args.what == "queues":
            return await svc.queue_report(args.from_, args.to, args.interval, args.queue)
        if args.what == "agents":
            return await svc.agent_report(args.from_, args.to, args.interval, args.agent)
        if args.what == "ivr":
            return await svc.ivr_report(args.from_, args.to, None, args.interval)
        if args.what == "quality":
            keys = (args.queue if args.by == "queue" else args.agent if args.by == "agent" else None)
            return await svc.quality_report(args.from_, args.to, args.by, args.interval, keys)
        return await svc.survey_report(args.from_, args.to, "agent", args.interval)
    finally:
        await engine.dispose()


def _columns(what: str, rows: list[dict[str, Any]]) -> list[str]:
    lead = ["interval_start", "interval_end"] if any("interval_start" in r for r in rows) else []
    if what == "queues":
        base = QUEUE_COLUMNS + QUEUE_EXTRA
    elif what == "agents":
        base = AGENT_COLUMNS
    elif what == "quality":
        base = QUALITY_COLUMNS
    else:
        base = []
    rest = [k for r in rows[:1] for k in r if k not in base and k not in lead and not isinstance(r[k], (dict, list))]
    return lead + [c for c in base if not rows or c in rows[0]] + rest if rows else lead + base


def _cell(column: str, v: Any) -> str:
    if v is None:
        return ""
    if column.split(".")[-1].endswith(DECIMALS) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{float(v):.2f}"
    return str(v)


def flatten(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nested values (staffing, pause by reason, IVR nodes) become ``a.b`` columns for CSV."""
    out = []
    for r in rows:
        flat: dict[str, Any] = {}
        for k, v in r.items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    flat[f"{k}.{k2}"] = v2
            elif isinstance(v, list):
                flat[k] = json.dumps(v, ensure_ascii=False)
            else:
                flat[k] = v
        out.append(flat)
    return out


def to_csv(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    flat = flatten(rows)
    cols = list(columns)
    for r in flat:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in flat:
        w.writerow([_cell(c, r.get(c)) for c in cols])
    return buf.getvalue()


def to_table(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(no data for this period)"
    cells = [[_cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    body = ["  ".join(v.rjust(w) if v.replace(".", "", 1).isdigit() else v.ljust(w) for v, w in zip(row, widths))
            for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])
