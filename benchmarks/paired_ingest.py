"""AMI ingest, paired in-process A/B: ``python -m benchmarks.paired_ingest ROOT_A ROOT_B [--pairs N] [--mb MB]``.

For a machine too loaded for the two-process benchmark (``benchmarks/run --only ami``): its
wall-clock figures then measure preemption, not callcore. This runs the same pipeline as
that benchmark's burst part (``AmiProtocol`` → ``AmiClient._on_frame`` → ``CtiService`` →
bus, 64 KiB reads of the capture mix) in a fresh process per run, once per checkout,
alternating A and B ``pairs`` times, plus panoramisk 1.4's parser on the same reads, and
reports **frames per process CPU-second** (``time.process_time``): per-pair ratio B/A and
the median. ``ROOT_A``/``ROOT_B`` are two checkouts (e.g. ``/work/main`` and a worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import asyncio, json, logging, os, sys, time
sys.path.insert(0, os.environ["PAIRED_ROOT"])
from benchmarks.common import apply_gc_mode, quiet_logs
from benchmarks.ami_ingest import _PanoramiskCounter, _StubTransport
from benchmarks.amigen import CaptureMix

async def main(kind, mb):
    quiet_logs()
    logging.getLogger("cti").setLevel(logging.CRITICAL)
    mix = CaptureMix()
    data = b"".join(mix.copy(i) for i in range(max(1, int(mb * 2**20 / mix.bytes_per_copy))))
    reads = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    if kind == "panoramisk":
        cls = _PanoramiskCounter.make()
        p = cls()
        p.connection_made(_StubTransport())
        c0 = time.process_time()
        for r in reads:
            p.data_received(r)
        return cls.messages, time.process_time() - c0
    from benchmarks.cti_stub import NotificationSink, build_cti
    from cti.ami.client import AmiClient
    from cti.ami.protocol import AmiProtocol
    cti, bus, _ = await build_cti()
    NotificationSink(bus)
    client = AmiClient("127.0.0.1", 1, "bench", "bench", on_event=cti.handle_event)
    client._gate_open = True
    proto = AmiProtocol(client._on_frame, stats=client.stats)
    proto.connection_made(_StubTransport())
    apply_gc_mode(default="freeze")
    c0 = time.process_time()
    for r in reads:
        proto.data_received(r)
        while proto._drain_handle is not None:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # persistence and other background tasks of the last frames
    return proto.stats.frames, time.process_time() - c0

frames, cpu = asyncio.run(main(sys.argv[1], float(sys.argv[2])))
print(json.dumps({"frames": frames, "cpu": cpu}))
"""


def _one(root: str, kind: str, mb: float) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, kind, str(mb)], cwd=root, env={**os.environ, "PAIRED_ROOT": root},
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["frames"] / res["cpu"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root_a")
    ap.add_argument("root_b")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--json", help="also write the raw figures (per run, with the load average) to this file")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    a: list[float] = []
    b: list[float] = []
    pano: list[float] = []
    for _ in range(args.pairs):
        a.append(_one(args.root_a, "callcore", args.mb))
        b.append(_one(args.root_b, "callcore", args.mb))
        pano.append(_one(args.root_a, "panoramisk", args.mb))
    ratios = [y / x for x, y in zip(a, b)]
    print(f"A {args.root_a}: frames/CPU-s " + ", ".join(f"{x:,.0f}" for x in a) + f" (median {statistics.median(a):,.0f})")
    print(f"B {args.root_b}: frames/CPU-s " + ", ".join(f"{x:,.0f}" for x in b) + f" (median {statistics.median(b):,.0f})")
    print("panoramisk 1.4: frames/CPU-s " + ", ".join(f"{x:,.0f}" for x in pano) + f" (median {statistics.median(pano):,.0f})")
    print("B/A per pair " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")
    print(f"median B / median panoramisk {statistics.median(b) / statistics.median(pano):.2f}; "
          f"median A / median panoramisk {statistics.median(a) / statistics.median(pano):.2f}")
    print(f"load average {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"root_a": args.root_a, "root_b": args.root_b, "mb": args.mb, "pairs": args.pairs,
                       "a_fps_cpu": a, "b_fps_cpu": b, "panoramisk_fps_cpu": pano, "ratios_b_a": ratios,
                       "median_ratio": statistics.median(ratios),
                       "median_b_over_panoramisk": statistics.median(b) / statistics.median(pano),
                       "median_a_over_panoramisk": statistics.median(a) / statistics.median(pano),
                       "load_before": load_before, "load_after": os.getloadavg()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
