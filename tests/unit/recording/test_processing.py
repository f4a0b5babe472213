"""pydub post-processing: measurements, waveform, silence detection, bad files, conversion."""

from __future__ import annotations

import pytest

from recording import processing
from recording.processing import BadAudio
from tests.unit.recording.audio import wav


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
