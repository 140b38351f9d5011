"""Drain time of many small clips, fork server against a fresh interpreter per item, one run.

    python -m tests.benchmarks.bench_throughput [--clips 300] [--rounds 2] [--frames 40]

Cuts ``--clips`` short clips (``--frames`` frames each, scaled to ``--size`` pixels wide,
mp4v) from the real ``../shared/data/mirror-mouse/test_vid.mp4``, each from a different
start. They are split into ``--rounds`` batches; each batch is drained by each start method in
turn (``spawn``, the old way, then ``forkserver``), so that the machine's changing load falls
on both. A drain: a real daemon (``framewatch run``, 2 workers, 4 frames per clip) is started
on a fresh root, the batch is dropped into its inbox at once (one rename each), and the time
until every status file says ``complete`` or ``failed`` is measured. The daemon's start-up
before the drop is not counted; the fork server's own start (on the first item of each
round) is. Prints each round, the totals per method and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2

from tests.harness import SHARED_DATA, Framewatch

SOURCE = SHARED_DATA / "mirror-mouse" / "test_vid.mp4"
CONFIG = "\n[extract]\nframes_per_video = 4\ncontext_frames = 0\n"


def cut_clips(folder: Path, clips: int, frames: int, width: int) -> list[Path]:
    """``clips`` mp4v clips of ``frames`` consecutive frames, each from another start."""
    capture = cv2.VideoCapture(str(SOURCE))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = capture.read()
    assert ok, f"cannot read {SOURCE}"
    height = round(first.shape[0] * width / first.shape[1] / 2) * 2
    all_frames = [cv2.resize(first, (width, height))]
    while len(all_frames) < total:
        ok, frame = capture.read()
        if not ok:
            break
        all_frames.append(cv2.resize(frame, (width, height)))
    capture.release()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    step = max(1, (len(all_frames) - frames) // clips)
    for n in range(clips):
        start = (n * step) % (len(all_frames) - frames)
        path = folder / f"trial{n:04d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30, (width, height))
        for frame in all_frames[start : start + frames]:
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def drain(root: Path, clips: list[Path], method: str, timeout_s: float) -> tuple[float, int]:
    """Seconds from dropping every clip into a running daemon until all are complete."""
    fw = Framewatch(root, settle_s=0.3, extra_config=CONFIG)
    text = fw.config.read_text().replace(
        "[workers]\n", f"[workers]\nstart_method = '{method}'\n", 1
    )
    fw.config.write_text(text)
    start(fw)
    inbox = fw.inbox("videos")
    status = root / "status" / "videos"
    started = time.monotonic()
    for clip in clips:
        os.link(clip, inbox / f".{clip.name}.part")
        os.replace(inbox / f".{clip.name}.part", inbox / clip.name)
    done = 0
    try:
        while time.monotonic() - started < timeout_s:
            states = [_state(path) for path in status.glob("*.json")]
            done = sum(state in ("complete", "failed") for state in states)
            if done >= len(clips):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        fw.stop()
    complete = sum(_state(path) == "complete" for path in status.glob("*.json"))
    return elapsed, complete


def start(fw: Framewatch) -> None:
    """``fw.start()`` with more patience: on a loaded machine the imports alone take > 30 s."""
    fw.process = subprocess.Popen(
        fw.command("run"),
        stdout=fw.log.open("ab"),
        stderr=subprocess.STDOUT,
        env=fw.environment(),
        cwd=fw.root,
    )
    fw.wait_for(lambda: "watching" in fw.log_text(), 600, "the daemon to start watching")


def _state(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()).get("state", ""))
    except (OSError, ValueError):
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        clips = cut_clips(Path(tmp) / "clips", args.clips, args.frames, args.size)
        totals = {"spawn": 0.0, "forkserver": 0.0}
        complete = {"spawn": 0, "forkserver": 0}
        for round_ in range(args.rounds):
            batch = clips[round_ :: args.rounds]
            for method in totals:
                root = Path(tmp) / f"{method}{round_}"
                elapsed, done = drain(root, batch, method, args.timeout)
                totals[method] += elapsed
                complete[method] += done
                print(
                    f"round {round_ + 1} {method:10s} {len(batch)} clips: {elapsed:7.1f} s, "
                    f"{done} complete (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        for method, total in totals.items():
            print(
                f"{method:10s} {len(clips)} clips: drained in {total:7.1f} s "
                f"({total / len(clips):.2f} s per clip), {complete[method]} complete"
            )
        print(f"speed-up: {totals['spawn'] / totals['forkserver']:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
