"""Placeholder prompts: tiny valid WAV files (8 kHz, mono, 16-bit) for every sound a flow needs.

``callcore dialplan sounds DIR --placeholders`` writes the missing ones so a new
flow can be checked and tried before the voice talent records the real
prompts. Each file is ~0.15 s: a short tone whose pitch differs per language
(so a tester hears which language is playing), then silence.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000
TONE = {"ko": 440.0, "en": 660.0}


def write_placeholder(path: Path, lang: str, seconds: float = 0.15) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    freq = TONE.get(lang, 550.0)
    n = int(RATE * seconds)
    tone_n = n // 2
    frames = bytearray()
    for i in range(n):
        v = int(3000 * math.sin(2 * math.pi * freq * i / RATE)) if i < tone_n else 0
        frames += struct.pack("<h", v)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))


def write_missing(sounds_dir: Path, needed: list[tuple[str, str]]) -> list[Path]:
    from ivr.checker import sound_exists

    written = []
    for lang, name in needed:
        if not sound_exists(sounds_dir, lang, name):
            path = sounds_dir / lang / f"{name}.wav"
            write_placeholder(path, lang)
            written.append(path)
    return written
