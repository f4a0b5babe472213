"""pydub post-processing: measurements, waveform, silence detection, bad files, conversion."""

from __future__ import annotations

import pytest

from recording import processing
from recording.processing import BadAudio
from tests.unit.recording.audio import wav, wav_of


def test_measures_duration_levels_talk_ratio_and_peaks(tmp_path):
    path = tmp_path / "1.1.wav"
    path.write_bytes(wav([(2.0, False), (1.0, True), (1.0, False)]))
    a, data = processing.analyse(path)
    assert a.duration == pytest.approx(4.0, abs=0.01)
    assert a.channels == 1 and a.frame_rate == 8000
    assert a.peak_dbfs == pytest.approx(-14.7, abs=0.3)  # 6000 / 32768
    assert a.per_channel[0]["talk_ratio"] == pytest.approx(0.75, abs=0.03)
    assert len(a.waveform) == 1 and len(a.waveform[0]) == processing.WAVEFORM_POINTS
    peaks = a.waveform[0]
    assert max(peaks[:450]) > 0.1 and max(peaks[520:740]) == 0.0 and max(peaks[760:]) > 0.1
    assert processing.silent_spans(data) == [(pytest.approx(2.0, abs=0.011), pytest.approx(3.0, abs=0.011))]


def test_stereo_channels_measured_apart():
    a = processing.analyse_bytes(wav([(1.0, False)], channels=2))
    assert a.channels == 2 and len(a.per_channel) == 2 and len(a.waveform) == 2


@pytest.mark.parametrize(
    "content, kind",
    [(None, "missing"), (b"", "empty"), (b"RIFF\x00\x00garbage-not-audio" * 3, "corrupt"), (wav([]), "empty")],
)
def test_bad_files_get_a_reason(tmp_path, content, kind):
    path = tmp_path / "2.2.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadAudio) as exc:
        processing.analyse(path)
    assert exc.value.kind == kind and exc.value.reason.startswith(kind + ":")


def test_truncated_wav_is_analysed_as_far_as_it_goes(tmp_path):
    data = wav([(2.0, False)])
    path = tmp_path / "3.3.wav"
    path.write_bytes(data[: len(data) // 2])
    a, _ = processing.analyse(path)
    assert a.truncated and a.duration == pytest.approx(1.0, abs=0.01)
    assert "truncated" in a.notes[0]


def test_conversion_to_mp3_through_ffmpeg():
    mp3 = processing.convert(wav([(1.0, False)]), "wav", "mp3")
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    with pytest.raises(ValueError):
        processing.convert(wav([(0.1, False)]), "wav", "flac")


def _speechlike(seconds: float, seed: int, channels: int = 1, rate: int = 8000) -> bytes:
    """Talk bursts of tones and noise, quiet pauses of every length (some under the 250 ms window),
    near the −45 dBFS threshold too; channels differ."""
    import array
    import math
    import random

    rng = random.Random(seed)
    n = int(seconds * rate)
    chans = []
    for c in range(channels):
        out = array.array("h")
        while len(out) < n:
            talk = rng.randint(int(0.05 * rate), int(1.5 * rate))
            amp = rng.choice([6000, 1500, 300, 250])  # RMS 212 and 177: either side of the threshold (184)
            f = rng.uniform(150, 1800)
            out.extend(int(amp * math.sin(2 * math.pi * f * i / rate) + rng.uniform(-30, 30)) for i in range(talk))
            pause = rng.randint(int(0.02 * rate), int(0.9 * rate))
            out.extend(rng.randint(-15, 15) for _ in range(pause))
        chans.append(out[:n])
    inter = array.array("h", [0] * (n * channels))
    for c, ch in enumerate(chans):
        inter[c::channels] = ch
    return wav_of(inter, rate, channels)


@pytest.mark.parametrize("numpy", [True, False], ids=["numpy", "audioop"])
@pytest.mark.parametrize("seconds, channels, truncate", [(7.0, 1, False), (5.437, 2, False), (6.0, 1, True), (0.2, 1, False)])
def test_the_streamed_analysis_gives_what_pydub_gave_on_the_whole_file(monkeypatch, numpy, seconds, channels, truncate):
    """Issue 18: block energies in chunks (here 1 s, so the windows cross chunk boundaries)
    instead of one AudioSegment and detect_nonsilent — the same spans, levels and waveform."""
    data = _speechlike(seconds, seed=int(seconds * 1000) + channels, channels=channels)
    if truncate:
        data = data[: len(data) * 2 // 3 + 1]  # the header still announces the whole
    before = processing._analyse_whole(data)  # the pydub way (the code before issue 18)
    monkeypatch.setattr(processing, "CHUNK_SECONDS", 1)
    if not numpy:
        monkeypatch.setattr(processing, "_np", None)
    after = processing.analyse_bytes(data)
    assert (after.duration, after.channels, after.truncated, after.frame_rate) == (before.duration, before.channels, before.truncated, 8000)
    assert after.peak_dbfs == before.peak_dbfs
    assert after.rms_dbfs == pytest.approx(before.rms_dbfs, abs=0.05)
    assert after.waveform == before.waveform
    for a, b in zip(after.per_channel, before.per_channel, strict=True):
        assert a["peak_dbfs"] == b["peak_dbfs"] and a["rms_dbfs"] == pytest.approx(b["rms_dbfs"], abs=0.05)
        if numpy:  # exact energies: the very same talk spans
            assert a["talk_seconds"] == b["talk_seconds"]
        else:  # audioop's integer block RMS: within a few windows
            assert a["talk_seconds"] == pytest.approx(b["talk_seconds"], abs=0.05)
        assert a["talk_ratio"] == pytest.approx(b["talk_ratio"], abs=0.01)
    assert 0 < before.per_channel[0]["talk_ratio"] < 1 or seconds < 0.25


def test_a_non_pcm_wav_and_other_formats_take_the_whole_file_way(tmp_path):
    import subprocess

    src = tmp_path / "a.wav"
    src.write_bytes(wav([(1.0, False), (0.5, True)]))
    alaw = tmp_path / "b.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-c:a", "pcm_alaw", str(alaw)], check=True)
    assert processing._analyse_wav_stream(alaw.open("rb"), alaw.stat().st_size, 10) is None  # wave cannot read A-law
    a = processing.analyse_file(alaw)
    assert a.duration == pytest.approx(1.5, abs=0.01) and a.per_channel[0]["talk_ratio"] == pytest.approx(0.67, abs=0.05)


def test_conversion_reads_the_source_file(tmp_path):
    src = tmp_path / "c.wav"
    src.write_bytes(wav([(1.0, False)]))
    mp3 = processing.convert_file(src, "mp3")
    opus = processing.convert_file(src, "opus")
    assert (mp3[:3] == b"ID3" or mp3[0] == 0xFF) and opus[:4] == b"OggS"
    with pytest.raises(ValueError):
        processing.convert_file(src, "flac")
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        processing.convert_file(tmp_path / "bad.wav", "mp3")
