"""Post-processing of one recording with pydub (blocking: run it in a worker thread).

:func:`analyse` reads what the PBX wrote and returns measurements — duration,
peak and RMS level, talk/silence ratio per channel, waveform peaks — or raises
:class:`BadAudio` with a reason an operator can act on (missing, empty, no
audio, corrupt). A WAV whose header promises more audio than the file holds
(the PBX died mid-call) is analysed as far as it goes and flagged ``truncated``.
:func:`convert` re-encodes to MP3 or Opus through ffmpeg (pydub); callers keep
the original when it fails.
"""

from __future__ import annotations

import audioop  # deprecated in 3.11 (audioop-lts on 3.13+); pydub is built on it
import io
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError
from pydub.silence import detect_nonsilent

WAVEFORM_POINTS = 1000
SILENCE_THRESH_DBFS = -45.0
MIN_SILENCE_MS = 250
SEEK_MS = 10  # pydub scans every millisecond by default: an hour-long call would take minutes


class BadAudio(Exception):
    """The file cannot be used; ``reason`` says why (stored on the recording)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = f"{kind}: {reason}"


@dataclass
class Analysis:
    duration: float
    channels: int
    frame_rate: int
    sample_width: int
    peak_dbfs: float | None
    rms_dbfs: float | None
    per_channel: list[dict[str, Any]]
    waveform: list[list[float]]
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration, "channels": self.channels, "frame_rate": self.frame_rate,
            "sample_width": self.sample_width, "peak_dbfs": self.peak_dbfs, "rms_dbfs": self.rms_dbfs,
            "per_channel": self.per_channel, "truncated": self.truncated, "notes": self.notes,
        }


def _db(value: float) -> float | None:
    return None if value == -math.inf or value is None else round(float(value), 2)


def wav_truncation(data: bytes) -> str | None:
    """A reason when a RIFF/WAVE file's ``data`` chunk claims more bytes than the file has."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"data":
            have = len(data) - pos - 8
            if size > have and size not in (0, 0xFFFFFFFF):
                return f"the WAV header announces {size} bytes of audio, the file holds {have}"
            return None
        pos += 8 + size + (size & 1)
    return None


def load(data: bytes, fmt: str = "wav") -> AudioSegment:
    try:
        return AudioSegment.from_file(io.BytesIO(data), format=fmt)
    except (CouldntDecodeError, EOFError, struct.error, ValueError, IndexError, OSError) as exc:
        raise BadAudio("corrupt", f"cannot decode the {fmt} file ({type(exc).__name__}: {str(exc)[:200]})") from exc


def analyse(path: Path, *, points: int = WAVEFORM_POINTS) -> tuple[Analysis, bytes]:
    """Measure the file at ``path``; returns the analysis and the file's bytes."""
    if not path.exists():
        raise BadAudio("missing", f"no file at {path} (the PBX did not write one)")
    data = path.read_bytes()
    if not data:
        raise BadAudio("empty", f"{path.name} has 0 bytes")
    return analyse_bytes(data, path.suffix.lstrip(".") or "wav", points=points), data


def analyse_bytes(data: bytes, fmt: str = "wav", *, points: int = WAVEFORM_POINTS) -> Analysis:
    truncated = wav_truncation(data) if fmt == "wav" else None
    if truncated:
        data = _repair_wav_sizes(data)
    seg = load(data, fmt)
    if len(seg) == 0 or seg.frame_count() == 0:
        raise BadAudio("empty", "the file holds no audio frames")
    channels = seg.split_to_mono() if seg.channels > 1 else [seg]
    per_channel = []
    for i, ch in enumerate(channels):
        spans = detect_nonsilent(ch, min_silence_len=MIN_SILENCE_MS, silence_thresh=SILENCE_THRESH_DBFS, seek_step=SEEK_MS)
        talk_ms = sum(b - a for a, b in spans)
        per_channel.append({
            "channel": i, "peak_dbfs": _db(ch.max_dBFS), "rms_dbfs": _db(ch.dBFS),
            "talk_ratio": round(talk_ms / len(ch), 4) if len(ch) else 0.0,
            "silence_ratio": round(1 - talk_ms / len(ch), 4) if len(ch) else 1.0,
            "talk_seconds": round(talk_ms / 1000, 3),
        })
    analysis = Analysis(
        duration=round(seg.frame_count() / seg.frame_rate, 3), channels=seg.channels, frame_rate=seg.frame_rate,
        sample_width=seg.sample_width, peak_dbfs=_db(seg.max_dBFS), rms_dbfs=_db(seg.dBFS), per_channel=per_channel,
        waveform=[waveform_peaks(ch, points) for ch in channels], truncated=bool(truncated),
    )
    if truncated:
        analysis.notes.append(f"truncated: {truncated}")
    return analysis


def _repair_wav_sizes(data: bytes) -> bytes:
    """Rewrite the RIFF and data sizes to what the file really holds (so it decodes)."""
    buf = bytearray(data)
    pos = 12
    while pos + 8 <= len(buf):
        cid, size = bytes(buf[pos:pos + 4]), struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        if cid == b"data":
            have = len(buf) - pos - 8
            buf[pos + 4:pos + 8] = struct.pack("<I", have)
            break
        pos += 8 + size + (size & 1)
    buf[4:8] = struct.pack("<I", len(buf) - 8)
    return bytes(buf)


def waveform_peaks(seg: AudioSegment, points: int) -> list[float]:
    """``points`` peak levels (0..1) of a mono segment, for the player's waveform."""
    raw = seg.raw_data
    width = seg.sample_width
    frames = len(raw) // width
    if frames == 0:
        return [0.0] * points
    full = float(1 << (8 * width - 1))
    out = []
    for i in range(points):
        a, b = (i * frames) // points, ((i + 1) * frames) // points
        if b <= a:
            b = min(frames, a + 1)
        out.append(round(audioop.max(raw[a * width:b * width], width) / full, 4))
    return out


def silent_spans(data: bytes, fmt: str = "wav", *, min_ms: int = 200) -> list[tuple[float, float]]:
    """Spans (seconds) of digital silence (every sample 0) — to verify PCI muting."""
    seg = load(data, fmt)
    raw, width, rate = seg.raw_data, seg.sample_width * seg.channels, seg.frame_rate
    step = max(1, rate // 100)  # 10 ms blocks
    spans: list[tuple[float, float]] = []
    start = None
    frames = len(raw) // width
    for f in range(0, frames, step):
        block = raw[f * width:min(frames, f + step) * width]
        zero = audioop.max(block, seg.sample_width) == 0
        if zero and start is None:
            start = f
        elif not zero and start is not None:
            if (f - start) * 1000 / rate >= min_ms:
                spans.append((start / rate, f / rate))
            start = None
    if start is not None and (frames - start) * 1000 / rate >= min_ms:
        spans.append((start / rate, frames / rate))
    return spans


def stereo_from_legs(caller: bytes, agent: bytes) -> bytes:
    """MixMonitor's ``r()`` (caller) and ``t()`` (agent) leg files → one stereo WAV
    (left: caller, right: agent), the shorter leg padded with silence."""
    left, right = load(caller).set_channels(1), load(agent).set_channels(1)
    right = right.set_frame_rate(left.frame_rate).set_sample_width(left.sample_width)
    size = max(len(left.raw_data), len(right.raw_data))
    left, right = (seg._spawn(seg.raw_data + bytes(size - len(seg.raw_data))) for seg in (left, right))
    stereo = AudioSegment.from_mono_audiosegments(left, right)
    out = io.BytesIO()
    stereo.export(out, format="wav")
    return out.getvalue()


def convert(data: bytes, src_fmt: str, target: str) -> bytes:
    """Re-encode with ffmpeg (through pydub): ``mp3`` or ``opus``. Raises on failure."""
    seg = load(data, src_fmt)
    out = io.BytesIO()
    if target == "mp3":
        seg.export(out, format="mp3", bitrate="32k")
    elif target == "opus":
        seg.export(out, format="opus", codec="libopus", bitrate="24k")
    else:
        raise ValueError(f"unknown target format {target!r}")
    blob = out.getvalue()
    if not blob:
        raise RuntimeError(f"ffmpeg produced an empty {target} file")
    return blob
