"""Zip handler cost: wall time and peak memory of checking and unpacking a frames zip.

    python -m tests.benchmarks.bench_zips [--frames 60] [--width 1920 --height 1080] [--repeat 2]
                                           [--out DIR]

Builds one frames zip (``--frames`` barcode frames at full HD with context-free CSV, deflated
as a lab's zip tool would) and runs, each in a fresh process so peak memory is its own:

- handler: ``handlers.zips.handle_zip`` with the default [zips] limits, as a worker runs it;
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


def build_zip(path: Path, count: int, width: int, height: int) -> int:
    """A frames zip of ``count`` PNGs (frames 0..count-1) and a CSV; its size in bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            ok, data = cv2.imencode(".png", barcode_frame(index, width, height))
            assert ok
            archive.writestr(f"img{index:08d}.png", data.tobytes())
        archive.writestr("selected_frames.csv", "".join(f"img{i:08d}.png\n" for i in range(count)))
    return path.stat().st_size


def run_handler(zip_path: Path, out: Path) -> None:
    from handlers.outcome import ignore_progress
    from handlers.zips import ZipOptions, handle_zip

    out.mkdir()
    limits = Zips().model_dump()
    options = ZipOptions(**limits, context_frames=2, existing_bundle=out.parent / "none")
    handle_zip([zip_path], options, out, ignore_progress)


def run_baseline(zip_path: Path, out: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(out)
    for png in sorted(out.glob("*.png")):
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None


def measure_one(variant: str, zip_path: Path, out: Path) -> None:
    """Run one variant in this process and print its wall time and peak RSS as JSON."""
    start = time.perf_counter()
    (run_handler if variant == "handler" else run_baseline)(zip_path, out)
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
    parser.add_argument("--one", choices=("handler", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--zip", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(args.one, args.zip, args.out)
        return
    with tempfile.TemporaryDirectory(dir=args.out) as folder:
        root = Path(folder)
        zip_path = root / "frames.zip"
        size = build_zip(zip_path, args.frames, args.width, args.height)
        print(f"{args.frames} frames {args.width}x{args.height}, zip {size / 1e6:.1f} MB")
        print(f"{'variant':<10}{'wall s':>10}{'ms/frame':>10}{'peak MB':>10}")
        # Alternating order, so neither variant alone gets the cold page cache.
        for run in range(args.repeat):
            order = ("baseline", "handler") if run % 2 == 0 else ("handler", "baseline")
            for variant in order:
                data = measure(variant, zip_path, root / f"{variant}{run}")
                per_frame = 1000 * data["wall_s"] / args.frames
                wall, peak = data["wall_s"], data["peak_mb"]
                print(f"{variant:<10}{wall:>10.2f}{per_frame:>10.1f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
