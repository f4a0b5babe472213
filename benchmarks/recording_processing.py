"""Benchmark 6 — recording post-processing (issue 18).

callcore's job on one recording, as ``RecordingService.process`` does it —
``recording.processing.analyse_file`` (levels, talk/silence per channel, waveform: the WAV
streamed in 60 s chunks, each an ``AudioSegment``), ``convert_to_file`` (ffmpeg reading the
source file into a temporary file, MP3 32 kbit/s or Opus 24 kbit/s, the settings' codecs) and
``recording.storage.put_file`` (that file read, sealed with AES-GCM — ``crypto.encrypt_stream`` —,
hashed and written to ``FilesystemStorage`` a piece at a time) —
against the baseline of **ffmpeg called directly** on the same 8 kHz 16-bit mono WAV files with
the same codec and bitrate (``ffmpeg -i in.wav -b:a 32k out.mp3``). Each measurement runs in a
fresh child process; CPU time is the child's own plus its ffmpeg children's (``getrusage``),
so "× real time per core" = seconds of audio / CPU seconds, robust to a loaded machine.

Figures: throughput ratio callcore / ffmpeg (target ≥ 0.9: the median pair ratio, the job's
imports counted; beside it the same without them, what a server that imported once pays),
× real time per core to MP3 (≥ 500) and to Opus (≥ 100), and the peak memory (max RSS of the
process and of its ffmpeg child) for a short and a ``long_hours`` (4 h) recording: the analysis
holds one chunk and the output is streamed, so neither grows with the length (``output_mb`` in
the JSON is what used to be held twice).

The WAV files are generated: 10 s of speech-like signal (talk bursts of mixed tones with noise,
pauses of silence) repeated to the length wanted.
"""

from __future__ import annotations

import math
import os
import random
import resource
import statistics
import struct
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from benchmarks.common import SERVER_CPUS, Child, Figure, check

SIZES = {
    "full": {"files": 6, "seconds": 300, "reps": 3, "long_hours": 4.0},
    "quick": {"files": 2, "seconds": 30, "reps": 1, "long_hours": 0.25},
    "smoke": {"files": 1, "seconds": 5, "reps": 1, "long_hours": 0.01},
}
RATE = 8000
TARGETS = {"mp3": 500.0, "opus": 100.0}
RATIO_TARGET = 0.9


# ---------------------------------------------------------------- audio
def _pattern(seed: int) -> bytes:
    """10 s of 8 kHz mono 16-bit speech-like audio: ~60 % talk, pauses of digital-ish silence."""
    rng = random.Random(seed)
    out = bytearray()
    t = 0
    while t < RATE * 10:
        talk = rng.randint(int(0.6 * RATE), int(2.5 * RATE))
        f1, f2 = rng.uniform(120, 300), rng.uniform(600, 2400)
        for i in range(min(talk, RATE * 10 - t)):
            env = math.sin(math.pi * i / talk)
            v = env * (6000 * math.sin(2 * math.pi * f1 * i / RATE) + 2500 * math.sin(2 * math.pi * f2 * i / RATE)
                       + rng.uniform(-800, 800))
            out += struct.pack("<h", int(v))
        t += talk
        pause = min(rng.randint(int(0.3 * RATE), int(1.5 * RATE)), max(0, RATE * 10 - t))
        out += b"".join(struct.pack("<h", rng.randint(-20, 20)) for _ in range(pause))
        t += pause
    return bytes(out[: RATE * 10 * 2])


def write_wav(path: Path, seconds: float, seed: int = 1) -> Path:
    block = _pattern(seed)
    frames = int(seconds * RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        left = frames * 2
        while left > 0:
            chunk = block[: min(left, len(block))]
            w.writeframes(chunk)
            left -= len(chunk)
    return path


# ---------------------------------------------------------- measurements
def _usage() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, time.perf_counter()


def _job(conn: Any, kind: str, files: list[str], target: str, out_dir: str) -> None:
    """One measurement in this (fresh) process: every file through callcore's job or bare ffmpeg."""
    import asyncio

    cpu0, wall0 = _usage()
    audio = 0.0
    sizes = 0
    imports = 0.0
    if kind == "callcore":
        from recording import crypto
        from recording.processing import analyse_file, convert_to_file
        from recording.storage import FilesystemStorage, put_file

        imports = _usage()[0] - cpu0  # paid once per process (a server: at start-up)

        storage = FilesystemStorage(Path(out_dir))

        async def one(i: int, f: str) -> tuple[float, int]:  # RecordingService.process's steps
            analysis = analyse_file(Path(f))
            out = convert_to_file(Path(f), target)
            try:  # read, sealed, hashed and stored a piece at a time
                stored = await put_file(storage, f"bench/{i}.{target}", out, data_key=crypto.new_data_key())
            finally:
                out.unlink()
            return analysis.duration, stored.stored

        async def every() -> tuple[float, int]:
            total, size = 0.0, 0
            for i, f in enumerate(files):
                d, n = await one(i, f)
                total, size = total + d, size + n
            return total, size

        audio, sizes = asyncio.run(every())
    else:
        codec = ["-b:a", "32k"] if target == "mp3" else ["-c:a", "libopus", "-b:a", "24k"]
        for i, f in enumerate(files):
            out = Path(out_dir) / f"{i}.{target}"
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", f, *codec, str(out)], check=True)
            sizes += out.stat().st_size
            with wave.open(f) as w:
                audio += w.getnframes() / w.getframerate()
    cpu1, wall1 = _usage()
    conn.send({"result": {
        "audio_seconds": audio, "cpu_seconds": cpu1 - cpu0, "import_cpu_seconds": imports,
        "wall_seconds": wall1 - wall0, "bytes_out": sizes,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }})
    conn.recv()  # wait for "stop"


def _measure(kind: str, files: list[Path], target: str, tmp: Path) -> dict[str, Any]:
    out = tempfile.mkdtemp(dir=tmp)
    child = Child(_job, kind, [str(f) for f in files], target, out, cpus=SERVER_CPUS, name=f"rec-{kind}")
    try:
        return child.expect("result", 3600)["result"]
    finally:
        child.stop()


def run(size: str = "full") -> dict[str, Any]:
    cfg = SIZES[size]
    tmp = Path(tempfile.mkdtemp(prefix="callcore-bench-rec-"))
    try:
        return _run(cfg, tmp)
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def _run(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    files = [write_wav(tmp / f"call{i}.wav", cfg["seconds"], seed=i + 1) for i in range(cfg["files"])]
    figures: list[Figure] = []
    details: dict[str, Any] = {"sizes": cfg, "runs": {}}
    for target in ("mp3", "opus"):
        pairs = []
        for _ in range(cfg["reps"]):  # baseline and callcore back to back, the median pair ratio
            base = _measure("ffmpeg", files, target, tmp)
            cc = _measure("callcore", files, target, tmp)
            pairs.append((base, cc))
        details["runs"][target] = pairs
        ratios = sorted((b["cpu_seconds"] / c["cpu_seconds"]) for b, c in pairs)
        ratio = statistics.median(ratios)  # of an even count: the mean of the middle two
        warm = sorted(b["cpu_seconds"] / (c["cpu_seconds"] - c["import_cpu_seconds"]) for b, c in pairs)
        rt_cc = statistics.median(c["audio_seconds"] / c["cpu_seconds"] for _, c in pairs)
        rt_ff = statistics.median(b["audio_seconds"] / b["cpu_seconds"] for b, _ in pairs)
        imports = statistics.median(c["import_cpu_seconds"] for _, c in pairs)
        figures += [
            Figure("rec", f"{target}: throughput vs ffmpeg direct (per CPU-second)", rt_cc, "x rt", rt_ff,
                   target=f">= {RATIO_TARGET}x", verdict=check(ratio >= RATIO_TARGET),
                   note=f"median pair ratio {ratio:.3f} of {[round(r, 3) for r in ratios]}; {cfg['files']} files of "
                        f"{cfg['seconds']} s; the job's imports ({imports:.3f} s) included"),
            Figure("rec", f"{target}: the same, imports excluded (a server imports once)", statistics.median(warm), "x",
                   None, note=f"pair ratios {[round(r, 3) for r in warm]}: the per-recording work only"),
            Figure("rec", f"{target}: x real time per core (analysis + conversion + storage)", rt_cc, "x rt", None,
                   target=f">= {TARGETS[target]:g}", verdict=check(rt_cc >= TARGETS[target])),
        ]
    # memory: one short and one long recording, callcore's job vs ffmpeg alone (MP3)
    long_s = cfg["long_hours"] * 3600
    mem: dict[str, Any] = {}
    for label, seconds in (("short", cfg["seconds"]), ("long", long_s)):
        f = write_wav(tmp / f"mem-{label}.wav", seconds, seed=9)
        base = _measure("ffmpeg", [f], "mp3", tmp)
        cc = _measure("callcore", [f], "mp3", tmp)
        mem[label] = {"seconds": seconds, "wav_mb": f.stat().st_size / 2**20, "ffmpeg": base, "callcore": cc}
        f.unlink()
    details["memory"] = mem
    peak = lambda r: max(r["maxrss_mb"], r["child_maxrss_mb"])  # noqa: E731
    grow_cc = peak(mem["long"]["callcore"]) - peak(mem["short"]["callcore"])
    grow_ff = peak(mem["long"]["ffmpeg"]) - peak(mem["short"]["ffmpeg"])
    grow_py = mem["long"]["callcore"]["maxrss_mb"] - mem["short"]["callcore"]["maxrss_mb"]
    hours = f"{cfg['long_hours']:g} h"
    out_long, out_short = (mem[k]["callcore"]["bytes_out"] / 2**20 for k in ("long", "short"))
    mem["long"]["output_mb"], mem["short"]["output_mb"] = out_long, out_short
    figures += [
        Figure("rec", f"peak memory, {hours} recording (process or its ffmpeg)", peak(mem["long"]["callcore"]), "MB",
               peak(mem["long"]["ffmpeg"]), target="flat", lower_is_better=True,
               note=f"WAV {mem['long']['wav_mb']:.0f} MB; python {mem['long']['callcore']['maxrss_mb']:.0f} MB, "
                    f"ffmpeg {mem['long']['callcore']['child_maxrss_mb']:.0f} MB"),
        Figure("rec", f"peak memory growth, {cfg['seconds']} s → {hours}", grow_cc, "MB", None,
               target="< 64 MB (flat)", verdict=check(grow_cc < 64), lower_is_better=True,
               note=f"ffmpeg direct: {grow_ff:+.1f} MB; output {out_long:.0f} MB, streamed to storage"),
        Figure("rec", f"python process growth, {cfg['seconds']} s → {hours} (ffmpeg apart)", grow_py, "MB", None,
               target="< 64 MB", verdict=check(grow_py < 64), lower_is_better=True,
               note=f"python {mem['short']['callcore']['maxrss_mb']:.0f} → {mem['long']['callcore']['maxrss_mb']:.0f} MB: "
                    "one analysis chunk, one envelope chunk"),
    ]
    return {"name": "rec", "figures": figures, "details": details}
