"""Reading MP4/MOV headers directly, for answers that do not need an ffmpeg process.

Starting ffmpeg costs tens of milliseconds; the merger's stream-copy path is meant to cost
little more than the copy itself, so it reads what it needs from the ``moov`` box here:
the declared duration (:func:`duration`) and a signature of the first video and audio
tracks' codec configuration (:func:`copy_signature`). Files with equal signatures can be
joined by the concat demuxer without re-encoding. Anything unexpected returns ``None`` and
callers fall back to ffmpeg.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

MAX_MOOV_BYTES = 64 * 1024 * 1024
CODEC_CONFIG_BOXES = {b"avcC", b"hvcC", b"av1C", b"vpcC", b"dOps", b"dfLa", b"alac", b"dac3"}
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def read_moov(path: Path) -> bytes | None:
    """The payload of the top-level ``moov`` box, or ``None``."""
    try:
        with path.open("rb") as handle:
            end = os.fstat(handle.fileno()).st_size
            while handle.tell() + 8 <= end:
                start = handle.tell()
                size, kind = struct.unpack(">I4s", handle.read(8))
                header = 8
                if size == 1:
                    size = struct.unpack(">Q", handle.read(8))[0]
                    header = 16
                elif size == 0:
                    size = end - start
                if size < header:
                    return None
                if kind == b"moov":
                    if size > MAX_MOOV_BYTES:
                        return None
                    return handle.read(size - header)
                handle.seek(start + size)
    except (OSError, struct.error):
        return None
    return None


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, payload_end)`` for each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, offset + header, offset + size
        offset += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for box, payload_start, payload_end in iter_boxes(data, start, end):
        if box == kind:
            return payload_start, payload_end
    return None


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for kind in kinds:
        if span is None:
            return None
        span = _child(data, span[0], span[1], kind)
    return span


def duration(path: Path) -> float | None:
    """The duration declared in ``moov/mvhd``, in seconds."""
    moov = read_moov(path)
    if moov is None:
        return None
    try:
        span = _child(moov, 0, len(moov), b"mvhd")
        if span is None:
            return None
        start = span[0]
        if moov[start] == 1:
            timescale, length = struct.unpack_from(">IQ", moov, start + 20)
        else:
            timescale, length = struct.unpack_from(">II", moov, start + 12)
    except (struct.error, IndexError):
        return None
    return length / timescale if timescale else None


def copy_signature(path: Path) -> tuple[object, ...] | None:
    """What must be equal between MP4 files to join them by stream copy, or ``None``.

    Covers the first video track (sample entry type, size, codec configuration record,
    media timescale and frame duration) and the first audio track (sample entry type,
    channels, sample rate and decoder configuration), ignoring bitrate fields.
    """
    moov = read_moov(path)
    if moov is None:
        return None
    try:
        video = audio = None
        for kind, start, end in iter_boxes(moov):
            if kind != b"trak":
                continue
            handler = _path(moov, start, end, b"mdia", b"hdlr")
            if handler is None:
                return None
            handler_type = moov[handler[0] + 8 : handler[0] + 12]
            if handler_type == b"vide" and video is None:
                video = _video_signature(moov, start, end)
                if video is None:
                    return None
            elif handler_type == b"soun" and audio is None:
                audio = _audio_signature(moov, start, end)
                if audio is None:
                    return None
    except (struct.error, IndexError, ValueError):
        return None
    if video is None:
        return None
    return (video, audio)


def _media_timescale(moov: bytes, start: int, end: int) -> int | None:
    span = _path(moov, start, end, b"mdia", b"mdhd")
    if span is None:
        return None
    offset = span[0]
    return struct.unpack_from(">I", moov, offset + (20 if moov[offset] == 1 else 12))[0]


def _sample_entry(moov: bytes, start: int, end: int) -> tuple[bytes, int, int] | None:
    stsd = _path(moov, start, end, b"mdia", b"minf", b"stbl", b"stsd")
    if stsd is None:
        return None
    count = struct.unpack_from(">I", moov, stsd[0] + 4)[0]
    if count != 1:
        return None
    for kind, entry_start, entry_end in iter_boxes(moov, stsd[0] + 8, stsd[1]):
        return kind, entry_start, entry_end
    return None


def _video_signature(moov: bytes, start: int, end: int) -> tuple[object, ...] | None:
    entry = _sample_entry(moov, start, end)
    stts = _path(moov, start, end, b"mdia", b"minf", b"stbl", b"stts")
    timescale = _media_timescale(moov, start, end)
    if entry is None or stts is None or timescale is None:
        return None
    kind, entry_start, entry_end = entry
    width, height = struct.unpack_from(">HH", moov, entry_start + 24)
    config = [
        moov[box_start:box_end]
        for box, box_start, box_end in iter_boxes(moov, entry_start + 78, entry_end)
        if box in CODEC_CONFIG_BOXES
    ]
    if not config:
        return None
    entries = struct.unpack_from(">I", moov, stts[0] + 4)[0]
    frame_delta = struct.unpack_from(">I", moov, stts[0] + 12)[0] if entries else None
    return (kind, width, height, tuple(config), timescale, frame_delta)


def _audio_signature(moov: bytes, start: int, end: int) -> tuple[object, ...] | None:
    entry = _sample_entry(moov, start, end)
    if entry is None:
        return None
    kind, entry_start, entry_end = entry
    channels, sample_size = struct.unpack_from(">HH", moov, entry_start + 16)
    sample_rate = struct.unpack_from(">I", moov, entry_start + 24)[0] >> 16
    config: list[bytes] = []
    for box, box_start, box_end in iter_boxes(moov, entry_start + 28, entry_end):
        if box == b"esds":
            decoder = _esds_decoder_config(moov[box_start:box_end])
            if decoder is None:
                return None
            config.append(decoder)
        elif box in CODEC_CONFIG_BOXES:
            config.append(moov[box_start:box_end])
    if not config:
        return None
    return (kind, channels, sample_size, sample_rate, tuple(config))


def _esds_decoder_config(esds: bytes) -> bytes | None:
    """Object type plus AudioSpecificConfig from an ``esds`` payload (bitrates left out)."""
    offset = 4
    tag, offset = _descriptor(esds, offset)
    if tag != 0x03:
        return None
    flags = esds[offset + 2]
    offset += 3
    if flags & 0x80:
        offset += 2
    if flags & 0x40:
        offset += 1 + esds[offset]
    if flags & 0x20:
        offset += 2
    tag, offset = _descriptor(esds, offset)
    if tag != 0x04:
        return None
    object_type = esds[offset : offset + 2]
    offset += 13
    tag, after = _descriptor(esds, offset)
    if tag != 0x05:
        return object_type
    length = _descriptor_length(esds, offset + 1)[0]
    return object_type + esds[after : after + length]


def _descriptor(data: bytes, offset: int) -> tuple[int, int]:
    """A descriptor's tag and the offset of its payload."""
    tag = data[offset]
    _, payload = _descriptor_length(data, offset + 1)
    return tag, payload


def _descriptor_length(data: bytes, offset: int) -> tuple[int, int]:
    """An MPEG-4 descriptor length (1-4 bytes, 7 bits each) and the offset after it."""
    length = 0
    for _ in range(4):
        byte = data[offset]
        offset += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return length, offset
