"""Post-processing of one recording (blocking: run it in a worker thread).

:func:`analyse_file` measures what the PBX wrote — duration, peak and RMS level, talk/silence
ratio per channel, waveform peaks — or raises :class:`BadAudio` with a reason an operator can
act on (missing, empty, no audio, corrupt). A WAV whose header promises more audio than the
file holds (the PBX died mid-call) is analysed as far as it goes and flagged ``truncated``.
:func:`convert_file` re-encodes to MP3 or Opus with ffmpeg reading the source file itself;
callers keep the original when it fails.

Streaming (issue 18: a 4-hour recording peaked at 583 MB): pydub has **no streaming API** — an
``AudioSegment`` holds the whole recording, ``split_to_mono``/``export`` copy it, and
``export`` writes it back to a temporary WAV for ffmpeg. So a PCM WAV (what Asterisk's
MixMonitor writes) is read with :mod:`wave` in 60 s chunks, each chunk an ``AudioSegment``
(pydub still splits the channels and measures the levels), and the talk/silence scan is
pydub's ``detect_nonsilent`` (250 ms windows every 10 ms, −45 dBFS) computed from per-10 ms
block energies of the raw samples — numpy when it is installed, else ``audioop`` (pydub's
own dependency; ``audioop-lts`` on 3.13+) — instead of 30,000 ``AudioSegment`` slices a
5-minute call. Memory is one chunk whatever the length. Conversion gives ffmpeg the source
path (the binary pydub is configured with, ``AudioSegment.converter``). Anything else — a
non-PCM WAV (GSM, A-law), an 8/24-bit one, another container, a header with no data size —
goes the whole-file pydub way (:func:`analyse_bytes`), as before.
"""

from __future__ import annotations

import audioop  # deprecated in 3.11 (audioop-lts on 3.13+); pydub is built on it
import contextlib
import io
import math
import os
import struct
import subprocess
import tempfile
import wave
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
CHUNK_SECONDS = 60  # what the streamed analysis holds in memory at a time

try:  # exact block energies, vectorised; without it audioop does the same within ~1 %
    import numpy as _np
except ImportError:  # pragma: no cover - numpy comes with kiwipiepy (kb) in callcore's install
    _np = None


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
    return _wav_data_chunk(io.BytesIO(data), len(data))[1]


def _wav_data_chunk(f: Any, total: int) -> tuple[int | None, str | None]:
    """(bytes of audio the ``data`` chunk really holds or None, the truncation reason or None),
    reading only the chunk headers of file ``f`` of ``total`` bytes."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None, None
    pos = 12
    while pos + 8 <= total:
        f.seek(pos)
        h = f.read(8)
        cid, size = h[:4], struct.unpack("<I", h[4:8])[0]
        if cid == b"data":
            have = total - pos - 8
            if size in (0, 0xFFFFFFFF):
                return None, None  # a size never written (a live file): not streamed
            if size > have:
                return have, f"the WAV header announces {size} bytes of audio, the file holds {have}"
            return size, None
        pos += 8 + size + (size & 1)
    return None, None


def load(data: bytes, fmt: str = "wav") -> AudioSegment:
    try:
        return AudioSegment.from_file(io.BytesIO(data), format=fmt)
    except (CouldntDecodeError, EOFError, struct.error, ValueError, IndexError, OSError) as exc:
        raise BadAudio("corrupt", f"cannot decode the {fmt} file ({type(exc).__name__}: {str(exc)[:200]})") from exc


def analyse(path: Path, *, points: int = WAVEFORM_POINTS) -> tuple[Analysis, bytes]:
    """Measure the file at ``path``; returns the analysis and the file's bytes (the whole file
    in memory: :func:`analyse_file` and :func:`convert_file` do not need it)."""
    analysis = analyse_file(path, points=points)
    return analysis, path.read_bytes()


def analyse_file(path: Path, *, points: int = WAVEFORM_POINTS) -> Analysis:
    """Measure the file at ``path``, a PCM WAV streamed in ``CHUNK_SECONDS`` chunks."""
    if not path.exists():
        raise BadAudio("missing", f"no file at {path} (the PBX did not write one)")
    total = path.stat().st_size
    if not total:
        raise BadAudio("empty", f"{path.name} has 0 bytes")
    fmt = path.suffix.lstrip(".").lower() or "wav"
    if fmt == "wav":
        with path.open("rb") as f:
            analysis = _analyse_wav_stream(f, total, points)
        if analysis is not None:
            return analysis
    return _analyse_whole(path.read_bytes(), fmt, points=points)


def analyse_bytes(data: bytes, fmt: str = "wav", *, points: int = WAVEFORM_POINTS) -> Analysis:
    """:func:`analyse_file` of bytes already in memory (the stereo file built from the legs)."""
    if not data:
        raise BadAudio("empty", "0 bytes")
    if fmt == "wav":
        analysis = _analyse_wav_stream(io.BytesIO(data), len(data), points)
        if analysis is not None:
            return analysis
    return _analyse_whole(data, fmt, points=points)


def _analyse_whole(data: bytes, fmt: str = "wav", *, points: int = WAVEFORM_POINTS) -> Analysis:
    """The whole file as one ``AudioSegment`` (pydub ``detect_nonsilent``): any format ffmpeg reads."""
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


class _Talk:
    """pydub's ``detect_nonsilent(min_silence_len=MIN_SILENCE_MS, silence_thresh=SILENCE_THRESH_DBFS,
    seek_step=SEEK_MS)`` of one channel, from its per-10 ms block energies (sums of squared
    samples) fed a chunk at a time: the same windows (``MIN_SILENCE_MS`` long, every 10 ms, the
    last one at ``len - MIN_SILENCE_MS``), the same integer RMS compared with the same threshold
    (``audioop.rms``), the same merging of silent starts into ranges. Only the talk total is kept."""

    def __init__(self, frame_rate: int, frames: int, width: int) -> None:
        self.rate = frame_rate
        self.block = frame_rate * SEEK_MS // 1000  # frames per 10 ms
        self.win = MIN_SILENCE_MS // SEEK_MS  # blocks per window
        self.win_frames = MIN_SILENCE_MS * frame_rate // 1000
        self.len_ms = round(1000 * frames / frame_rate)  # len(AudioSegment)
        self.last = self.len_ms - MIN_SILENCE_MS  # the last window's start (ms)
        self.thresh = 10 ** (SILENCE_THRESH_DBFS / 20) * (2 ** (8 * width) / 2)
        self.carry: list[float] = []  # energies of blocks whose windows are not evaluated yet
        self.next_k = 0  # the first window (in blocks) not evaluated yet
        self.prev: int | None = None
        self.range_start = 0
        self.silent_ms = 0

    def _silent_start(self, i: int) -> None:
        if self.prev is None:
            self.prev = self.range_start = i
            return
        continuous = i == self.prev + SEEK_MS
        gap = i > self.prev + MIN_SILENCE_MS
        if not continuous and gap:
            self.silent_ms += self.prev + MIN_SILENCE_MS - self.range_start
            self.range_start = i
        self.prev = i

    def _silent_starts(self, starts: Any) -> None:
        """:meth:`_silent_start` of each of ``starts`` (ascending ms, a numpy array) at once: a
        range of silent windows breaks only where two starts are more than a window apart."""
        if not len(starts):
            return
        if self.prev is None:
            self.prev = self.range_start = int(starts[0])
            starts = starts[1:]
            if not len(starts):
                return
        full = _np.concatenate(([self.prev], starts))
        for j in _np.flatnonzero(_np.diff(full) > MIN_SILENCE_MS).tolist():
            self.silent_ms += int(full[j]) + MIN_SILENCE_MS - self.range_start
            self.range_start = int(full[j + 1])
        self.prev = int(full[-1])

    def feed(self, energies: list[float] | Any, final: bool = False) -> None:
        """Block energies in order (the last block of the file may be partial: ``final``)."""
        blocks = self.carry + list(energies) if _np is None else _np.concatenate((self.carry, energies))
        k0 = self.next_k  # window k starts at block k; blocks[0] is block k0
        if self.last < 0:
            self.carry = []
            return
        last_k = self.last // SEEK_MS  # windows k0..last_k are due in all
        if final:  # the blocks after the end are padding: zero (as pydub pads a short slice)
            need = last_k + self.win - k0 - len(blocks)
            if need > 0:
                blocks = list(blocks) + [0.0] * need if _np is None else _np.concatenate((blocks, _np.zeros(need)))
        n = min(last_k - k0 + 1, len(blocks) - self.win + 1)
        if n > 0:
            limit = (math.floor(self.thresh) + 1) ** 2 * self.win_frames  # int(sqrt(S / n)) <= thresh
            if _np is not None:
                c = _np.concatenate(([0.0], _np.cumsum(blocks)))
                sums = c[self.win:self.win + n] - c[:n]
                self._silent_starts((k0 + _np.flatnonzero(sums < limit)) * SEEK_MS)
            else:
                run = sum(blocks[:self.win])
                for j in range(n):
                    if j:
                        run += blocks[j + self.win - 1] - blocks[j - 1]
                    if run < limit:
                        self._silent_start((k0 + j) * SEEK_MS)
            self.next_k = k0 + n
        self.carry = blocks[n:] if n > 0 else blocks

    def finish(self, last_window: Any) -> float:
        """Talk milliseconds; ``last_window()`` gives the raw mono samples of the window at
        ``len - MIN_SILENCE_MS`` when it is not on the 10 ms grid."""
        if self.last >= 0 and self.last % SEEK_MS:
            if audioop.rms(last_window(), self.width) <= self.thresh:
                self._silent_start(self.last)
        if self.prev is not None:
            self.silent_ms += self.prev + MIN_SILENCE_MS - self.range_start
        if self.last < 0:  # shorter than a window: all talk, as pydub
            return float(self.len_ms)
        return float(self.len_ms - self.silent_ms)


def _energies(raw: bytes, width: int, block: int) -> Any:
    """Sums of squared samples of each ``block``-frame block of mono ``raw`` (the last may be short)."""
    if _np is not None:  # exact: integer sums below 2**53 in float64, one pass (einsum, no squares array)
        x = _np.frombuffer(raw, dtype="<i2" if width == 2 else "<i4")
        n = len(x) // block
        full = x[:n * block].reshape(n, block).astype(_np.float64)
        out = _np.einsum("ij,ij->i", full, full)
        if len(x) > n * block:
            rest = x[n * block:].astype(_np.float64)
            out = _np.append(out, rest @ rest)
        return out
    step = block * width
    out = []
    for a in range(0, len(raw), step):
        b = raw[a:a + step]
        out.append(float(audioop.rms(b, width)) ** 2 * (len(b) // width))  # within the rms's rounding
    return out


def _analyse_wav_stream(f: Any, total: int, points: int) -> Analysis | None:
    """A PCM WAV (16/32-bit, a rate on the 10 ms grid) in ``CHUNK_SECONDS`` chunks; None when the
    file is not one of those (the caller takes the whole-file pydub way)."""
    have, truncated = _wav_data_chunk(f, total)
    if have is None:
        return None
    f.seek(0)
    try:
        w = wave.open(f, "rb")
    except (wave.Error, EOFError, struct.error):
        return None  # not PCM (GSM, A-law ...) or not a WAV pydub/ffmpeg may still read
    channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
    if width not in (2, 4) or rate <= 0 or rate % 100 or channels < 1:
        return None
    frames = have // (width * channels)
    if frames == 0:
        raise BadAudio("empty", "the file holds no audio frames")
    full = float(1 << (8 * width - 1))
    talk = [_Talk(rate, frames, width) for _ in range(channels)]
    for t in talk:
        t.width = width  # type: ignore[attr-defined]
    peaks = [[0] * points for _ in range(channels)]
    ch_sq = [0.0] * channels
    bounds = [((i * frames) // points, max(((i + 1) * frames) // points, min(frames, (i * frames) // points + 1)))
              for i in range(points)]
    step = rate * CHUNK_SECONDS
    pos = 0
    bucket = 0
    while pos < frames:
        raw = w.readframes(min(step, frames - pos))
        n = len(raw) // (width * channels)
        if n == 0:
            break
        seg = AudioSegment(data=raw[:n * width * channels], sample_width=width, frame_rate=rate, channels=channels)
        monos = seg.split_to_mono() if channels > 1 else [seg]
        end = pos + n
        last_chunk = end >= frames
        for c, mono in enumerate(monos):
            data = memoryview(mono.raw_data)  # slices for audioop without copies
            e = _energies(data, width, talk[c].block)
            ch_sq[c] += float(e.sum()) if _np is not None else sum(e)
            talk[c].feed(e, final=last_chunk)
            b = bucket
            while b < points and bounds[b][0] < end:  # the waveform buckets this chunk touches
                lo, hi = max(bounds[b][0], pos), min(bounds[b][1], end)
                if hi > lo:
                    peaks[c][b] = max(peaks[c][b], audioop.max(data[(lo - pos) * width:(hi - pos) * width], width))
                if bounds[b][1] > end:
                    break
                b += 1
        while bucket < points and bounds[bucket][1] <= end:
            bucket += 1
        pos = end
    frames = min(frames, pos)
    if frames == 0:
        raise BadAudio("empty", "the file holds no audio frames")
    ch_max = [max(p) for p in peaks]  # the waveform's buckets cover every frame read

    def last_window(c: int) -> bytes:
        t = talk[c]
        a, b = t.last * rate // 1000, (t.last + MIN_SILENCE_MS) * rate // 1000
        w.setpos(min(a, frames))
        raw = w.readframes(max(0, min(b, frames) - a))
        mono = audioop.tomono(raw, width, 1 if c == 0 else 0, 1 if c == 1 else 0) if channels == 2 else raw
        if channels > 2:
            mono = AudioSegment(data=raw, sample_width=width, frame_rate=rate, channels=channels).split_to_mono()[c].raw_data
        return mono + bytes(max(0, (b - a) * width - len(mono)))  # padded like pydub's slice

    def db(v: float) -> float | None:
        return None if v <= 0 else round(20 * math.log10(v / full), 2)

    per_channel = []
    for c in range(channels):
        talk_ms = talk[c].finish(lambda c=c: last_window(c))
        len_ms = talk[c].len_ms
        rms = int(math.sqrt(ch_sq[c] / frames))
        per_channel.append({
            "channel": c, "peak_dbfs": db(ch_max[c]), "rms_dbfs": db(rms),
            "talk_ratio": round(talk_ms / len_ms, 4) if len_ms else 0.0,
            "silence_ratio": round(1 - talk_ms / len_ms, 4) if len_ms else 1.0,
            "talk_seconds": round(talk_ms / 1000, 3),
        })
    w.close()
    rms_all = int(math.sqrt(sum(ch_sq) / (frames * channels)))
    analysis = Analysis(
        duration=round(frames / rate, 3), channels=channels, frame_rate=rate, sample_width=width,
        peak_dbfs=db(max(ch_max)), rms_dbfs=db(rms_all), per_channel=per_channel,
        waveform=[[round(p / full, 4) for p in ch] for ch in peaks], truncated=bool(truncated),
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


CODECS = {"mp3": ["-b:a", "32k", "-f", "mp3"], "opus": ["-c:a", "libopus", "-b:a", "24k", "-f", "opus"]}


def convert_to_file(path: Path, target: str, *, directory: Path | str | None = None) -> Path:
    """Re-encode the file at ``path`` to ``mp3`` or ``opus`` into a new temporary file (in
    ``directory``, default the system's) and return its path: the caller streams it to storage
    and removes it. ffmpeg (pydub's configured ``AudioSegment.converter``) reads the source
    itself — what pydub's ``export`` runs after writing its in-memory segment back to a temporary
    WAV, without the segment or the copy — with the baseline's flags (``-b:a 32k``, or
    ``-c:a libopus -b:a 24k``). Raises on failure (and leaves no file)."""
    if target not in CODECS:
        raise ValueError(f"unknown target format {target!r}")
    # into a file, not a pipe: the output is never in this process's memory, its length is
    # known before the envelope's header is written, and a pipe cost this process ~20 ms of CPU
    # a 5-minute call (communicate's reads and join)
    fd, tmp = tempfile.mkstemp(prefix="callcore-convert-", suffix=f".{target}", dir=directory)
    os.close(fd)
    try:
        cmd = [AudioSegment.converter, "-nostdin", "-loglevel", "error", "-y", "-i", str(path), *CODECS[target], tmp]
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"ffmpeg failed ({out.returncode}): {out.stderr.decode(errors='replace')[-300:]}")
        if not os.path.getsize(tmp):
            raise RuntimeError(f"ffmpeg produced an empty {target} file")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def convert_file(path: Path, target: str) -> bytes:
    """:func:`convert_to_file`'s output as bytes (the whole file in memory: tests, small files)."""
    out = convert_to_file(path, target)
    try:
        return out.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            out.unlink()


def spill(data: bytes, suffix: str = ".wav", *, directory: Path | str | None = None) -> Path:
    """``data`` written to a new temporary file (the caller removes it): the stereo WAV built
    from the legs, so that it converts and stores the way the PBX's own file does."""
    fd, tmp = tempfile.mkstemp(prefix="callcore-audio-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


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
