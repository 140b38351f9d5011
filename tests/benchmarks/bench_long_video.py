"""Long videos: the video handler's time and peak memory next to a plain decode of the file.

Run (from the repository root):

    python -m tests.benchmarks.bench_long_video --video ../shared/data/openfield/m3v1mp4.mp4
    python -m tests.benchmarks.bench_long_video --minutes 30 --size 640x480 --fps 30

In one run, each in a fresh child process (so peak memory is that process's own):
- plain:   a plain OpenCV loop that only decodes the file (``while cap.read()``): the floor
           for any method that looks at every frame;
- handler: framewatch's video handler end to end (scan, choose, export PNGs into a
           temporary staging folder);
- spread:  the handler's scan and export of 20 frames spread evenly over the video (with
           their context frames), no choice: a looped generated video makes the choice fall
           in its first minute, and this times the seeking export a real recording needs;
- known:   the known approach (Lightning Pose app: every frame resized to 64x64, kept in
           memory as float16, motion energy in float64, frames above the median, PCA to 32
           dimensions, k-means, the frame nearest each centre, then seek and export), on the
           first ``--known-frames`` frames only, beside a plain decode of those same frames.
Wall and CPU time are measured inside the child around the work itself (interpreter start
and imports excluded); peak memory is the child's maximum resident set (``ru_maxrss``,
which includes the imports), cross-checked by sampling the largest resident set in its
process tree with psutil every 50 ms.

Generated videos (``--minutes``) are H.264 made with ffmpeg when it is installed (a clip of
../shared/data/openfield re-encoded with x264 defaults, or ffmpeg's testsrc2 with noise
when that is absent, looped with ``-stream_loop`` and copied, so a 3-hour file takes
seconds), else mp4v written by OpenCV. They are cached by parameters in ``--out``
(default: a folder in the system's temporary directory), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
OPENFIELD = REPO.parent / "shared" / "data" / "openfield" / "m3v1mp4.mp4"
FRAMES_PER_VIDEO = 20
CONTEXT_FRAMES = 2
KNOWN_RESIZE = 64
SAMPLE_EVERY_S = 0.05


# ----- generated videos ------------------------------------------------------------------


def generate_video(out: Path, minutes: float, width: int, height: int, fps: float) -> Path:
    """A cached test video of the given length and size; made once per parameter set."""
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    if shutil.which("ffmpeg"):
        source = "openfield" if OPENFIELD.exists() else "testsrc2"
        target = videos / f"{source}-{width}x{height}-{fps:g}fps-{minutes:g}min-h264.mp4"
        if not target.exists():
            clip = _h264_clip(videos, source, width, height, fps)
            _run_ffmpeg(
                ["-stream_loop", "-1", "-i", str(clip), "-t", f"{minutes * 60:.3f}", "-c", "copy"],
                target,
            )
        return target
    target = videos / f"barcode-{width}x{height}-{fps:g}fps-{minutes:g}min-mp4v.mp4"
    if not target.exists():
        _write_mp4v(target, round(minutes * 60 * fps), width, height, fps)
    return target


def _h264_clip(videos: Path, source: str, width: int, height: int, fps: float) -> Path:
    """About a minute of H.264 (x264 defaults: GOP 250, B-frames) to loop."""
    clip = videos / f"clip-{source}-{width}x{height}-{fps:g}fps.mp4"
    if clip.exists():
        return clip
    if source == "openfield":
        inputs = ["-i", str(OPENFIELD)]
        filters = f"scale={width}:{height},fps={fps:g}"
    else:
        inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps:g}"]
        filters = "noise=alls=12:allf=t"
    _run_ffmpeg(
        [*inputs, "-t", "60", "-vf", filters, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-an"],
        clip,
    )
    return clip


def _run_ffmpeg(arguments: list[str], target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    command = ["ffmpeg", "-v", "error", "-y", *arguments, "-f", "mp4", str(partial)]
    print("generating:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    partial.rename(target)


def _write_mp4v(target: Path, frames: int, width: int, height: int, fps: float) -> None:
    from tests.media import barcode_frame

    partial = target.with_name(target.name + ".partial.mp4")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    clip = [barcode_frame(i, width, height) for i in range(int(fps * 10))]
    for index in range(frames):
        writer.write(clip[index % len(clip)])
    writer.release()
    partial.rename(target)


# ----- the measured work, each run in a child process -------------------------------------


def plain_decode(video: Path, limit: int | None) -> dict[str, Any]:
    """Decode frame by frame to BGR and do nothing else."""
    capture = cv2.VideoCapture(str(video))
    count = 0
    while (limit is None or count < limit) and capture.read()[0]:
        count += 1
    capture.release()
    return {"frames": count}


def run_handler(video: Path, staging: Path) -> dict[str, Any]:
    """framewatch's video handler, end to end, into ``staging``."""
    from handlers.video import VideoOptions, handle_video

    options = VideoOptions(
        frames_per_video=FRAMES_PER_VIDEO, frame_range=(0.0, 1.0), context_frames=CONTEXT_FRAMES
    )
    start = time.perf_counter()
    # The handler's progress messages mark its phases: reading, then choosing, then writing.
    seen: dict[str, list[float]] = {}

    def progress(fraction: float, message: str) -> None:
        seen.setdefault(message.split()[0], []).append(time.perf_counter() - start)

    result = handle_video([video], options, staging, progress)
    end = time.perf_counter() - start
    scan_end = max(seen.get("reading", [0.0]))
    write_start = min(seen.get("writing", [end]))
    return {
        "frames": result.report.get("frame_count"),
        "samples": result.report.get("samples"),
        "export": result.report.get("export"),
        "selected": len(result.selected),
        "pngs": len(list(staging.glob("img*.png"))),
        "phases_s": {
            "scan": round(scan_end, 2),
            "choose": round(write_start - scan_end, 2),
            "export": round(end - write_start, 2),
        },
    }


def run_spread(video: Path, staging: Path) -> dict[str, Any]:
    """The handler's scan and export, for 20 frames spread evenly instead of chosen.

    A generated video is one clip looped, so the choice falls in its first loop and the
    export never seeks; this times the export the way a real long recording needs it.
    """
    from handlers import bundle, frames

    def write(index: int, image: np.ndarray) -> None:
        _, png = cv2.imencode(".png", image)
        (staging / f"img{index:08d}.png").write_bytes(png.tobytes())

    scan = frames.scan_video(video)
    count = scan.frame_count
    chosen = np.linspace(CONTEXT_FRAMES, count - CONTEXT_FRAMES - 1, FRAMES_PER_VIDEO)
    wanted = bundle.with_context([int(i) for i in chosen.round()], CONTEXT_FRAMES, count)
    start = time.perf_counter()
    summary = frames.export_frames(video, wanted, write, timestamps=scan.timestamps)
    return {
        "frames": count,
        "pngs": len(list(staging.glob("img*.png"))),
        "export": summary.__dict__,
        "export_s": round(time.perf_counter() - start, 2),
    }


def read_small_frames(video: Path, limit: int) -> np.ndarray:
    """Every frame resized to 64x64 RGB, kept as float16, as the Lightning Pose app does."""
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        small = cv2.resize(frame, (KNOWN_RESIZE, KNOWN_RESIZE))
        frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float16))
    capture.release()
    return np.array(frames)


def known_choice(frames: np.ndarray, n: int, context: int) -> list[int]:
    """Motion energy, frames above the median, PCA to 32 dimensions, k-means, nearest frame."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    batches = np.reshape(frames, (frames.shape[0], -1))[: frames.shape[0] - context]
    energy = np.concatenate([np.zeros((1, batches.shape[1])), np.diff(batches, axis=0)])
    energy = np.sum(np.abs(energy), axis=1)
    high = np.where(energy > np.percentile(energy, 50))[0]
    if len(high) < n:
        high = np.arange(energy.shape[0])
    embedding = PCA(n_components=min(len(high), 32)).fit_transform(batches[high])
    centres = KMeans(n, n_init="auto").fit(embedding).cluster_centers_
    distances = np.linalg.norm(embedding[:, :, None] - centres.T[None, :], axis=1)
    return sorted(int(i) for i in high[np.argmin(distances, axis=0)])


def run_known(video: Path, staging: Path, limit: int) -> dict[str, Any]:
    """The known approach on the first ``limit`` frames, exporting by unchecked seeks."""
    frames = read_small_frames(video, limit)
    chosen = known_choice(frames, FRAMES_PER_VIDEO, CONTEXT_FRAMES)
    count = frames.shape[0]
    del frames
    capture = cv2.VideoCapture(str(video))
    written = 0
    for index in chosen:
        start = max(index - CONTEXT_FRAMES, 0)
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        for offset in range(start, min(index + CONTEXT_FRAMES + 1, count)):
            ok, image = capture.read()
            if ok:
                written += cv2.imwrite(str(staging / f"img{offset:08d}.png"), image)
    capture.release()
    return {"frames": count, "selected": len(set(chosen)), "pngs": written}


def child_main(kind: str, video: Path, staging: Path, limit: int | None) -> None:
    """Run one measured piece of work and print its numbers as one JSON line."""

    def cpu_seconds() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    work: dict[str, Callable[[], dict[str, Any]]] = {
        "plain": lambda: plain_decode(video, limit),
        "handler": lambda: run_handler(video, staging),
        "spread": lambda: run_spread(video, staging),
        "known": lambda: run_known(video, staging, limit or 2**62),
    }
    # Imports are not part of the work: load what each needs before the clock starts.
    if kind in ("handler", "spread"):
        import handlers.video  # noqa: F401
    if kind == "known":
        import sklearn.cluster
        import sklearn.decomposition  # noqa: F401

    wall, cpu = time.perf_counter(), cpu_seconds()
    outcome = work[kind]()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_kb / 1024, **outcome}))


# ----- the parent: run children, sample memory, print the table ---------------------------


@dataclass
class Measure:
    """One child's numbers."""

    label: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    sampled_mb: float
    details: dict[str, Any]


def measure_child(
    label: str, kind: str, video: Path, out: Path, limit: int | None = None
) -> Measure:
    """Run ``kind`` in a child process, sampling its process tree's resident memory."""
    import psutil

    staging = Path(tempfile.mkdtemp(prefix=f"staging-{kind}-", dir=out))
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.bench_long_video",
        "--child",
        kind,
        "--video",
        str(video),
        "--staging",
        str(staging),
    ]
    if limit is not None:
        command += ["--limit", str(limit)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    sampled = 0
    parent = psutil.Process(process.pid)
    while process.poll() is None:
        sampled = max(sampled, _largest_rss(parent))
        time.sleep(SAMPLE_EVERY_S)
    stdout = process.stdout.read() if process.stdout else ""
    shutil.rmtree(staging, ignore_errors=True)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed with exit status {process.returncode}")
    numbers = json.loads(stdout.strip().splitlines()[-1])
    return Measure(
        label=label,
        wall_s=numbers.pop("wall_s"),
        cpu_s=numbers.pop("cpu_s"),
        peak_mb=numbers.pop("peak_mb"),
        sampled_mb=sampled / 2**20,
        details=numbers,
    )


def _largest_rss(process: Any) -> int:
    """The largest resident set among a process and its descendants (not their sum: a
    child just forked shares its parent's pages, and summing would count them twice)."""
    import psutil

    largest = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            largest = max(largest, member.memory_info().rss)
        except psutil.Error:
            continue
    return largest


def video_facts(video: Path) -> dict[str, Any]:
    """Size, frame rate and the container's frame count, for the table's heading."""
    capture = cv2.VideoCapture(str(video))
    facts = {
        "size": f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x"
        f"{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}",
        "fps": round(capture.get(cv2.CAP_PROP_FPS), 3),
        "frames_in_header": int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        "codec": int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1"),
        "bytes": video.stat().st_size,
    }
    capture.release()
    return facts


def format_table(rows: list[tuple[Measure, Measure]]) -> str:
    """Markdown table: each measure beside the plain decode it is compared with."""
    lines = [
        "| run | frames | wall s | CPU s | peak MB (sampled) | wall / plain | CPU / plain |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for measure, floor in rows:
        lines.append(
            f"| {measure.label} | {measure.details.get('frames')} | {measure.wall_s:.1f} | "
            f"{measure.cpu_s:.1f} | {measure.peak_mb:.0f} ({measure.sampled_mb:.0f}) | "
            f"{measure.wall_s / floor.wall_s:.2f} | {measure.cpu_s / floor.cpu_s:.2f} |"
        )
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    """``640x480`` as (640, 480)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="a video to measure on")
    parser.add_argument("--minutes", type=float, help="generate a video this long instead")
    parser.add_argument("--size", default="640x480", help="generated video size, WxH")
    parser.add_argument("--fps", type=float, default=30.0, help="generated video frame rate")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "fw-bench",
        help="folder for generated videos, staging and results",
    )
    parser.add_argument(
        "--known-frames",
        type=int,
        default=9000,
        help="frames the known approach reads (0: skip it)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="plain/handler pairs to run; the fastest of each is reported",
    )
    parser.add_argument(
        "--child", choices=["plain", "handler", "spread", "known"], help=argparse.SUPPRESS
    )
    parser.add_argument("--staging", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.video, args.staging, args.limit)
        return
    if (args.video is None) == (args.minutes is None):
        parser.error("give exactly one of --video PATH or --minutes M")
    args.out.mkdir(parents=True, exist_ok=True)
    video = (
        args.video.resolve()
        if args.video
        else generate_video(args.out, args.minutes, *parse_size(args.size), args.fps)
    )
    facts = video_facts(video)
    print(f"video: {video} {json.dumps(facts)}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)

    plains, handlers = [], []
    for _ in range(args.repeat):
        plains.append(measure_child("plain decode", "plain", video, args.out))
        print(f"  plain decode: {plains[-1].wall_s:.1f} s", flush=True)
        handlers.append(measure_child("framewatch handler", "handler", video, args.out))
        print(f"  handler: {handlers[-1].wall_s:.1f} s", flush=True)
    plain = min(plains, key=lambda m: m.wall_s)
    handler = min(handlers, key=lambda m: m.wall_s)
    rows = [(plain, plain), (handler, plain)]
    spread = measure_child("scan + export of 20 spread frames", "spread", video, args.out)
    rows.append((spread, plain))
    if args.known_frames > 0:
        limit = min(args.known_frames, int(plain.details["frames"]))
        prefix = measure_child(f"plain decode, first {limit}", "plain", video, args.out, limit)
        known = measure_child(f"known approach, first {limit}", "known", video, args.out, limit)
        rows += [(prefix, prefix), (known, prefix)]
    table = format_table(rows)
    print(f"\nload average after: {os.getloadavg()}\n\n{table}")
    print(f"\nhandler (fastest run): {json.dumps(handler.details)}")
    print(f"spread export: {json.dumps(spread.details)}")
    results = args.out / f"results-{video.stem}.json"
    results.write_text(
        json.dumps(
            {
                "video": str(video),
                "facts": facts,
                "table": table,
                "rows": [m.__dict__ for m, _ in rows],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"\nresults: {results}")


if __name__ == "__main__":
    main()
