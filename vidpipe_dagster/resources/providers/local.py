"""The ``local`` provider: real placeholder media rendered with ffmpeg, no network, no key.

Text is typeset with Pillow's embedded scalable font (``ImageFont.load_default(size=...)``),
so nothing depends on fonts installed on the machine, and ffmpeg composites the picture.

- :func:`render_talking_head`: the script scrolling beside an avatar disc, 1280x720, spoken
  by the neural voice of :mod:`~vidpipe_dagster.resources.speech` (or, without one, a tone as
  long as the script takes to read at :data:`WORDS_PER_MINUTE`).
- :func:`render_animation`: a moving test pattern under the prompt text, for ``duration`` s.
- :func:`render_voiceover`: the script spoken, as an MP3 (the same voice or tone).
- :func:`render_code`: the code typeset light-on-dark with line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambdas.ffmpeg import probe, run_ffmpeg
from vidpipe_dagster.domain.prices import free
from vidpipe_dagster.resources.providers.unit import ProviderUnit
from vidpipe_dagster.resources.speech import speak

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont

WORDS_PER_MINUTE = 150
MIN_SECONDS = 1.0
DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 25
DEFAULT_ANIMATION_SECONDS = 8.0
BACKGROUND = (17, 24, 39)
FOREGROUND = (229, 231, 235)
ACCENT = (99, 102, 241)
MUTED = (107, 114, 128)
VOICE_FILTER = "vibrato=f=5:d=0.4,tremolo=f=4:d=0.8,lowpass=f=1500"
VIDEO_CODEC = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Rendered:
    """A rendered file and its measured duration in seconds."""

    path: Path
    duration: float


def reading_seconds(text: str) -> float:
    """How long ``text`` takes to read aloud at :data:`WORDS_PER_MINUTE` (at least 1 s)."""
    words = len(text.split())
    return max(MIN_SECONDS, round(words * 60.0 / WORDS_PER_MINUTE, 3))


def render_talking_head(
    script: str,
    out: Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: int = DEFAULT_FPS,
) -> Rendered:
    """A video of ``script`` scrolling beside an avatar, narrated."""
    width, height = size
    voice, duration = _narration(script, out)
    margin = max(8, height // 12)
    panel_x = width * 2 // 5
    font_size = max(10, height // 22)
    text = _text_image(
        script,
        width=width - panel_x - margin,
        font_size=font_size,
        workdir=out.parent,
        name=f"{out.stem}-script.png",
    )
    base = _avatar_image(size=size, workdir=out.parent, name=f"{out.stem}-base.png")
    visible = height - 2 * margin
    excess = max(0, text.height - visible)
    y = f"{margin}-{excess}*t/{duration:.3f}" if excess else str(margin)
    graph = (
        f"{_still(0, pix_fmt='yuv420p')}[bg];{_still(1, pix_fmt='yuva420p')}[txt];"
        f"[bg][txt]overlay=x={panel_x}:y='{y}':format=yuv420,format=yuv420p[v];"
        f"[2:a]{'anull' if voice else VOICE_FILTER}[a]"
    )
    run_ffmpeg(
        [
            "-framerate", str(fps), "-i", str(base),
            "-framerate", str(fps), "-i", str(text.path),
            *_audio_input(voice, duration, sample_rate=48000),
            "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
            *VIDEO_CODEC, "-c:a", "aac", "-b:a", "96k",
            "-t", f"{duration:.3f}", "-movflags", "+faststart", str(out),
        ],
        media_seconds=duration,
    )  # fmt: skip
    return _measured(out)


def render_animation(
    prompt: str,
    out: Path,
    *,
    duration: float = DEFAULT_ANIMATION_SECONDS,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: int = DEFAULT_FPS,
) -> Rendered:
    """A moving test pattern with ``prompt`` over it, ``duration`` seconds long, silent."""
    width, height = size
    card = _text_image(
        prompt or "(no prompt)",
        width=width * 4 // 5,
        font_size=max(10, height // 16),
        workdir=out.parent,
        name=f"{out.stem}-prompt.png",
        background=(0, 0, 0, 170),
        padding=max(4, height // 40),
    )
    graph = (
        f"[0:v]format=yuv420p[bg];{_still(1, pix_fmt='yuva420p')}[card];"
        "[bg][card]overlay=x=(W-w)/2:y=(H-h)/2:format=yuv420,format=yuv420p[v]"
    )
    run_ffmpeg(
        [
            "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={duration:.3f}",
            "-framerate", str(fps), "-i", str(card.path),
            "-filter_complex", graph, "-map", "[v]", *VIDEO_CODEC,
            "-t", f"{duration:.3f}", "-movflags", "+faststart", str(out),
        ],
        media_seconds=duration,
    )  # fmt: skip
    return _measured(out)


def render_voiceover(script: str, out: Path) -> Rendered:
    """``script`` spoken, as an MP3 (a tone as long as it takes to read without a voice)."""
    voice, duration = _narration(script, out)
    run_ffmpeg(
        [
            *_audio_input(voice, duration, sample_rate=44100),
            "-af", "anull" if voice else VOICE_FILTER,
            "-c:a", "libmp3lame", "-b:a", "96k", str(out),
        ],
        media_seconds=duration,
    )  # fmt: skip
    return _measured(out)


def _narration(script: str, out: Path) -> tuple[Path | None, float]:
    """The spoken script beside ``out`` and its seconds; no file, reading time, without a voice."""
    wav = out.with_name(f"{out.stem}-voice.wav")
    seconds = speak(script, wav)
    if seconds is None:
        return None, reading_seconds(script)
    return wav, max(MIN_SECONDS, round(seconds, 3))


def _audio_input(voice: Path | None, duration: float, *, sample_rate: int) -> list[str]:
    """ffmpeg input arguments for the narration: the spoken WAV, else a tone."""
    if voice is not None:
        return ["-i", str(voice)]
    return ["-f", "lavfi", "-i", f"sine=f=150:sample_rate={sample_rate}:d={duration:.3f}"]


def code_seconds(code: str) -> float:
    """A default on-screen time for a code listing: 2 s plus half a second a line, 4-30 s."""
    lines = len(code.splitlines()) or 1
    return min(30.0, max(4.0, 2.0 + 0.5 * lines))


def render_code(
    code: str,
    out: Path,
    *,
    duration: float | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: int = DEFAULT_FPS,
) -> Rendered:
    """``code`` typeset on a dark background with line numbers, silent."""
    seconds = duration or code_seconds(code)
    screen = _code_image(code, size=size, workdir=out.parent, name=f"{out.stem}-code.png")
    run_ffmpeg(
        [
            "-framerate", str(fps), "-i", str(screen),
            "-filter_complex", f"{_still(0, pix_fmt='yuv420p')}[v]", "-map", "[v]",
            *VIDEO_CODEC, "-tune", "stillimage",
            "-t", f"{seconds:.3f}", "-movflags", "+faststart", str(out),
        ],
        media_seconds=seconds,
    )  # fmt: skip
    return _measured(out)


@dataclass(frozen=True)
class _TextImage:
    path: Path
    width: int
    height: int


def _font(size: int) -> FreeTypeFont | ImageFont:
    """Pillow's embedded scalable font (no system font files involved)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _wrap(text: str, *, font: FreeTypeFont | ImageFont, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels, keeping paragraph breaks."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        words, current = paragraph.split(), ""
        for word in words:
            candidate = f"{current} {word}".strip()
            if current and font.getlength(candidate) > width:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return lines


def _text_image(
    text: str,
    *,
    width: int,
    font_size: int,
    workdir: Path,
    name: str,
    background: tuple[int, int, int, int] = (0, 0, 0, 0),
    padding: int = 0,
) -> _TextImage:
    """A transparent PNG of ``text`` wrapped to ``width`` pixels."""
    from PIL import Image, ImageDraw

    font = _font(font_size)
    lines = _wrap(text, font=font, width=max(font_size, width - 2 * padding))
    line_height = int(font_size * 1.35)
    height = max(line_height, line_height * len(lines)) + 2 * padding
    image = Image.new("RGBA", (width, _even(height)), background)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((padding, padding + index * line_height), line, font=font, fill=FOREGROUND)
    path = workdir / name
    image.save(path)
    return _TextImage(path=path, width=image.width, height=image.height)


def _avatar_image(*, size: tuple[int, int], workdir: Path, name: str) -> Path:
    """A full-frame PNG: the dark background with a stylised head and shoulders on the left."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    centre_x, radius = width // 5, height // 7
    head_y = height * 2 // 5
    draw.ellipse(
        (centre_x - radius, head_y - radius, centre_x + radius, head_y + radius), fill=ACCENT
    )
    draw.ellipse(
        (centre_x - 2 * radius, head_y + int(1.3 * radius), centre_x + 2 * radius, height),
        fill=ACCENT,
    )
    path = workdir / name
    image.save(path)
    return path


def _code_image(code: str, *, size: tuple[int, int], workdir: Path, name: str) -> Path:
    """A full-frame PNG of ``code`` with line numbers on a dark editor-like background."""
    from PIL import Image, ImageDraw

    width, height = size
    lines = code.expandtabs(4).splitlines() or [""]
    font_size = max(8, min(height // 24, int(height * 0.85 / (1.35 * len(lines)))))
    font = _font(font_size)
    line_height = int(font_size * 1.35)
    margin = max(6, height // 20)
    gutter = margin + int(font.getlength(str(len(lines)))) + font_size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    space = font.getlength(" ") or font_size / 3
    for index, line in enumerate(lines):
        y = margin + index * line_height
        if y + line_height > height:
            break
        draw.text((margin, y), str(index + 1), font=font, fill=MUTED)
        indent = len(line) - len(line.lstrip(" "))
        draw.text((gutter + indent * space, y), line.lstrip(" "), font=font, fill=FOREGROUND)
    path = workdir / name
    image.save(path)
    return path


def _still(index: int, *, pix_fmt: str) -> str:
    """A filter chain repeating input ``index`` (one picture) forever, converted only once."""
    return f"[{index}:v]format={pix_fmt},loop=loop=-1:size=1:start=0"


def _measured(path: Path) -> Rendered:
    return Rendered(path=path, duration=probe(path).duration or 0.0)


def _even(value: int) -> int:
    return value + value % 2


UNIT = ProviderUnit(
    name="local",
    title="local renderer",
    mode="local",
    paid=False,
    node_types=frozenset(
        {"talking-head", "generate-animation", "generate-voiceover", "render-code"}
    ),
    price=lambda node_type, config, **_: free("local", "rendered locally, free"),
)
"""The ``local`` provider: renders in the run, no key, no client, free."""
