"""Small WAV builders for the recording tests (tone, digital silence)."""

from __future__ import annotations

import array
import io
import math
import wave


def wav(segments: list[tuple[float, bool]], rate: int = 8000, channels: int = 1) -> bytes:
    """``[(seconds, silent), ...]`` → a 16-bit WAV: a 440 Hz tone, or digital silence."""
    samples = array.array("h")
    for seconds, silent in segments:
        n = int(round(seconds * rate))
        for i in range(n):
            v = 0 if silent else int(6000 * math.sin(2 * math.pi * 440 * i / rate))
            samples.extend([v] * channels)
    return wav_of(samples, rate, channels)


def wav_of(samples: "array.array[int]", rate: int = 8000, channels: int = 1) -> bytes:
    """Interleaved 16-bit samples → the bytes of a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()
