"""Merger benchmark: the video_merger handler against a raw ``ffmpeg -f concat -c copy``.

Generates ten 10-second 1280x720 clips (H.264 + AAC, identical parameters), then times:

1. raw: ``ffmpeg -f concat -safe 0 -i list.txt -c copy out.mp4`` on those files;
2. merger, stream-copy path: ``lambdas.video_merger.handler`` on the same files (``file://``
   URIs in and out), which also probes every input and the output;
3. merger, normalising path: the same handler on ten mismatched clips (every other one
   640x360 at 25 fps, MPEG-4 Part 2, without audio), which re-encodes everything.

Each of 1 and 2 runs ``--repeat`` times, alternating, and the median is reported; 3 runs once.
Usage: ``python benchmarks/merger.py [--repeat 5] [--clips 10] [--seconds 10] [--skip-normalise]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lambdas import video_merger  # noqa: E402
from lambdas.ffmpeg import ffmpeg_binary, probe, run_ffmpeg  # noqa: E402


def make_clip(path: Path, *, seconds: float, index: int, odd: bool) -> Path:
    """A test-pattern clip; ``odd`` ones differ in size, rate, codec and have no audio."""
    if path.exists():
        return path
    if odd:
        args = [
            "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={seconds}",
            "-c:v", "mpeg4", "-q:v", "5", str(path),
        ]  # fmt: skip
    else:
        args = [
            "-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=30:d={seconds}",
            "-f", "lavfi", "-i", f"sine=f={220 + 40 * index}:sample_rate=48000:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-shortest", str(path),
        ]  # fmt: skip
    run_ffmpeg(args, media_seconds=seconds)
    return path


def raw_concat(paths: list[Path], out: Path, workdir: Path) -> float:
    """Seconds taken by a bare ``ffmpeg -f concat -c copy``."""
    listing = workdir / "raw-list.txt"
    listing.write_text("".join(f"file '{path}'\n" for path in paths))
    started = time.perf_counter()
    subprocess.run(
        [
            ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out),
        ],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def merger(paths: list[Path], out_dir: Path, key: str) -> tuple[float, dict]:
    """Seconds taken by the handler, and its response."""
    event = {
        "input_videos": [path.as_uri() for path in paths],
        "output_bucket": out_dir.as_uri(),
        "output_key": key,
    }
    started = time.perf_counter()
    result = video_merger.handler(event, None)
    elapsed = time.perf_counter() - started
    if result.get("statusCode") != 200:
        raise SystemExit(f"merger failed: {result}")
    return elapsed, result


def _cpu() -> float:
    """CPU seconds (user + system) used so far by this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _report(label: str, times: list[float], cpu: list[float]) -> None:
    print(
        f"{label:<29}: median {statistics.median(times):.3f} s, best {min(times):.3f} s, "
        f"CPU median {statistics.median(cpu):.3f} s  "
        f"(runs: {', '.join(f'{t:.3f}' for t in times)})"
    )


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-normalise", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep clips here (cached)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        out_dir = workdir / "out"
        out_dir.mkdir(exist_ok=True)
        started = time.perf_counter()
        same = [
            make_clip(workdir / f"same-{i}.mp4", seconds=args.seconds, index=i, odd=False)
            for i in range(args.clips)
        ]
        print(
            f"clips: {args.clips} x {args.seconds:g} s 1280x720 H.264/AAC, "
            f"{sum(p.stat().st_size for p in same) / 1e6:.1f} MB in total "
            f"(generated in {time.perf_counter() - started:.1f} s)"
        )

        raw_times, merger_times, raw_cpu, merger_cpu = [], [], [], []
        for run in range(args.repeat):
            before = _cpu()
            raw_times.append(raw_concat(same, out_dir / f"raw-{run}.mp4", workdir))
            middle = _cpu()
            elapsed, result = merger(same, out_dir, f"merged-{run}.mp4")
            merger_times.append(elapsed)
            raw_cpu.append(middle - before)
            merger_cpu.append(_cpu() - middle)
        _report("raw ffmpeg -f concat -c copy", raw_times, raw_cpu)
        _report("merger, stream-copy path", merger_times, merger_cpu)
        median_ratio = statistics.median(merger_times) / statistics.median(raw_times)
        cpu_ratio = statistics.median(merger_cpu) / statistics.median(raw_cpu)
        print(
            f"ratio merger / raw: median {median_ratio:.2f}x, "
            f"best {min(merger_times) / min(raw_times):.2f}x, CPU {cpu_ratio:.2f}x "
            f"(output {result['duration']:.2f} s, {result['size'] / 1e6:.1f} MB)"
        )

        if args.skip_normalise:
            return
        mixed = [
            path if i % 2 == 0 else
            make_clip(workdir / f"odd-{i}.mp4", seconds=args.seconds, index=i, odd=True)
            for i, path in enumerate(same)
        ]  # fmt: skip
        elapsed, result = merger(mixed, out_dir, "normalised.mp4")
        expected = sum(probe(path).duration or 0 for path in mixed)
        print(f"merger, normalising path    : {elapsed:.3f} s for {len(mixed)} mismatched clips "
              f"(output {result['duration']:.2f} s of expected {expected:.2f} s, "
              f"{elapsed / expected:.2f} s per output second)")  # fmt: skip


if __name__ == "__main__":
    main()
