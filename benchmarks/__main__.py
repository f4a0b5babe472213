"""``python -m benchmarks [--quick] [--only ami,pop,agi] [--json PATH] [--profile]``

Runs each benchmark on this machine over loopback, prints one table (figure,
baseline measured in the same run, ratio, target, verdict) and writes the JSON
(default ``benchmarks/results/latest.json``; ``--quick`` writes ``quick.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, Figure, machine_info, table, write_json

BENCHES = ("ami", "pop", "agi", "kb", "reports", "recsearch", "broker", "rec", "wall", "cluster")


def _run_one(name: str, size: str) -> dict[str, Any]:
    if name == "ami":
        from benchmarks import ami_ingest

        return ami_ingest.run(size)
    if name == "pop":
        from benchmarks import pop_latency

        return pop_latency.run(size)
    if name == "agi":
        from benchmarks import fastagi

        return fastagi.run(size)
    if name == "kb":  # knowledge-base search (issue 17)
        from benchmarks import kb_search

        return kb_search.run(size)
    if name == "reports":  # reports on a 500-seat center's fact store, PostgreSQL (issue 18)
        from benchmarks import reports_bench

        return reports_bench.run(size)
    if name == "recsearch":  # recording search on 1,000,000 recordings, PostgreSQL + SQLite (issues 13 and 18)
        from benchmarks import recording_search

        return recording_search.run(size)
    if name == "broker":  # what the cross-instance broker adds to a pop (issue 19)
        from benchmarks import broker_hop

        return broker_hop.run(size)
    if name == "rec":  # recording post-processing vs ffmpeg (issue 18)
        from benchmarks import recording_processing

        return recording_processing.run(size)
    if name == "wall":  # wallboard freshness, 2,000 desks + 50 supervisors (issue 18)
        from benchmarks import wallboard_freshness

        return wallboard_freshness.run(size)
    if name == "cluster":  # two instances vs one: IVR sessions/s, pops delivered/s across NATS (issue 19)
        from benchmarks import cluster_capacity

        return cluster_capacity.run(size)
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds, for a smoke run); figures not meaningful")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of: ami,pop,agi,kb,reports,recsearch,broker,rec,wall,cluster")
    ap.add_argument("--json", type=Path, default=None, help="where to write the results (default benchmarks/results/latest.json)")
    ap.add_argument("--profile", action="store_true",
                    help="run the server processes under pyinstrument; text reports in benchmarks/results/profiles/")
    args = ap.parse_args(argv)
    if args.profile:
        import os

        from benchmarks.common import PROFILE_ENV

        os.environ[PROFILE_ENV] = str(RESULTS / "profiles")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)} (choose from {', '.join(BENCHES)})")
    size = "quick" if args.quick else "full"
    out_path = args.json or (RESULTS / ("quick.json" if args.quick else "latest.json"))

    started = time.time()
    report: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "size": size,
        "machine": machine_info(),
        "benchmarks": {},
    }
    figures: list[Figure] = []
    failed = False
    for name in names:
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] running {name} ({size}) ...", file=sys.stderr, flush=True)
        try:
            res = _run_one(name, size)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            report["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            figures.append(Figure(name, "ERROR", None, target="", verdict="ERROR", note=str(exc)[:200]))
            continue
        res["seconds"] = round(time.time() - t0, 1)
        report["benchmarks"][name] = res
        figures.extend(res["figures"])
        print(table(res["figures"]), file=sys.stderr, flush=True)
    report["figures"] = figures
    report["seconds"] = round(time.time() - started, 1)
    write_json(out_path, report)

    print()
    print(f"callcore benchmarks — {report['date_utc']} — {size} — "
          f"{report['machine']['cpus']} CPUs (server on {report['machine']['server_cpus']}, load on {report['machine']['load_cpus']})")
    print(table(figures))
    missed = [f for f in figures if f.verdict in ("MISS", "ERROR")]
    if missed:
        print("\nmissed: " + "; ".join(f"{f.bench} {f.figure} = {f.value if f.value is None else round(f.value, 3)} {f.unit} (target {f.target})" for f in missed))
    print(f"\nJSON: {out_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
