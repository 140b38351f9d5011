"""Zip handler cost: wall time and peak memory of checking and unpacking a frames zip.

    python -m tests.benchmarks.bench_zips [--frames 60] [--width 1920 --height 1080] [--repeat 2]
                                           [--out DIR]

Builds one frames zip (``--frames`` barcode frames at full HD with context-free CSV, deflated
as a lab's zip tool would) and runs, each in a fresh process so peak memory is its own:

- handler: ``handlers.zips.handle_zip`` with the default [zips] limits, as a worker runs it,
  with no video to check against (today's check without a video);
- video: the same handler with the zip's video in ``video_candidates``: every PNG is compared
  with its frame decoded in order from the start (the zip's PNGs are that video's frames);
- baseline: the least anyone could do: ``ZipFile.extractall`` and ``cv2.imread`` of every PNG
  (no checks, no counting; unsafe on untrusted zips).

Prints wall seconds, peak RSS (MB) and per-frame milliseconds side by side. Nothing is written
into the repository: the zip and the outputs go to a temporary folder (or --out).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2

from daemon.config import Zips
from tests.media import barcode_frame

REPO = Path(__file__).resolve().parents[2]


def build_video(path: Path, count: int, width: int, height: int) -> Path:
    """An MJPG video of ``count`` barcode frames, the recording the zip's frames come from."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    for index in range(count):
        writer.write(barcode_frame(index, width, height))
    writer.release()
    return path


def build_zip(path: Path, video: Path, count: int) -> int:
    """A frames zip of the video's first ``count`` frames as decoded, and a CSV; its size."""
    capture = cv2.VideoCapture(str(video))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            ok, frame = capture.read()
            assert ok, index
            ok, data = cv2.imencode(".png", frame)
            assert ok
            archive.writestr(f"img{index:08d}.png", data.tobytes())
        archive.writestr("selected_frames.csv", "".join(f"img{i:08d}.png\n" for i in range(count)))
    return path.stat().st_size


def run_handler(zip_path: Path, out: Path, video: Path | None = None) -> None:
    from handlers.outcome import ignore_progress
    from handlers.zips import ZipOptions, handle_zip

    out.mkdir()
    limits = Zips().model_dump()
    options = ZipOptions(
        **limits,
        context_frames=2,
        existing_bundle=out.parent / "none",
        video_candidates=(video,) if video else (),
    )
    result = handle_zip([zip_path], options, out, ignore_progress)
    if video is not None:  # the check must really have run and found every frame exact
        assert not any("could not be checked" in w for w in result.warnings), result.warnings


def run_baseline(zip_path: Path, out: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(out)
    for png in sorted(out.glob("*.png")):
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None


def measure_one(variant: str, zip_path: Path, out: Path) -> None:
    """Run one variant in this process and print its wall time and peak RSS as JSON."""
    start = time.perf_counter()
    if variant == "baseline":
        run_baseline(zip_path, out)
    else:
        run_handler(zip_path, out, zip_path.with_suffix(".avi") if variant == "video" else None)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": variant, "wall_s": wall, "peak_mb": peak_mb}))


def measure(variant: str, zip_path: Path, out: Path) -> dict[str, float]:
    """``measure_one`` in a fresh Python process."""
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.bench_zips",
        "--one",
        variant,
        "--zip",
        str(zip_path),
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", choices=("handler", "video", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--zip", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(args.one, args.zip, args.out)
        return
    with tempfile.TemporaryDirectory(dir=args.out) as folder:
        root = Path(folder)
        zip_path = root / "frames.zip"
        video = build_video(zip_path.with_suffix(".avi"), args.frames, args.width, args.height)
        size = build_zip(zip_path, video, args.frames)
        print(f"{args.frames} frames {args.width}x{args.height}, zip {size / 1e6:.1f} MB")
        print(f"{'variant':<10}{'wall s':>10}{'ms/frame':>10}{'peak MB':>10}")
        # Alternating order, so neither variant alone gets the cold page cache.
        for run in range(args.repeat):
            variants = ("baseline", "handler", "video")
            order = variants if run % 2 == 0 else variants[::-1]
            for variant in order:
                data = measure(variant, zip_path, root / f"{variant}{run}")
                per_frame = 1000 * data["wall_s"] / args.frames
                wall, peak = data["wall_s"], data["peak_mb"]
                print(f"{variant:<10}{wall:>10.2f}{per_frame:>10.1f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
