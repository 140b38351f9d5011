"""Pose-coverage benchmark: do the chosen frames cover the poses in the video?

    python -m tests.benchmarks.bench_diversity [--seeds 3] [--out DIR]

Videos with known poses (tests/benchmarks/posevideo.py renders them; one per seed) and the
real ../shared/data/mirror-mouse-ensemble clip (pose = the mean of five models' predictions)
are given to four methods at N = 10, 20 and 50 frames:

- uniform: evenly spaced frames;
- random: frames drawn at random (seeded);
- known: the Lightning Pose app's approach, reimplemented here: every frame grey at 64x64,
  keep frames above the median motion energy, PCA to 32 dimensions, k-means with k = N, the
  frame nearest each centre (two centres sharing a frame give fewer than N frames);
- ours: framewatch's own scan (handlers.frames.scan_video) and choose_frames, as the video
  handler runs them.

Measures, in pose space (RMS keypoint distance in pixels between two poses):
- coverage mean / worst: distance from every clean frame's pose to the nearest selected pose
  (lower is better); distractor frames are neither counted nor usable as a selected pose;
- rare recall: share of rare-pose visits holding at least one selected frame;
- redundancy: smallest distance between two selected poses (higher is better);
- distractors: selected frames showing the hand or a flicker (lower is better).
The real clip has no distractors; its rare visits are the runs of frames whose pose is among
the 5% farthest from their 10 nearest poses.

Nothing is written into the repository: videos go to a temporary folder (or --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from handlers import frames
from handlers.options import frame_window
from handlers.video import VideoOptions, choose_frames
from handlers.video.features import FrameReducer
from tests.benchmarks.posevideo import render_pose_video

REPO = Path(__file__).resolve().parents[2]
ENSEMBLE = REPO.parent / "shared" / "data" / "mirror-mouse-ensemble"
SIZES = (10, 20, 50)
CONTEXT = 2
METHODS = ("uniform", "random", "known", "ours")


@dataclass(frozen=True)
class Case:
    """One video with its ground truth, as the measures need it."""

    name: str
    path: Path
    poses: npt.NDArray[np.float64]
    distractor: npt.NDArray[np.bool_]
    rare_visit: npt.NDArray[np.int64]


# ----- the known approach, reimplemented --------------------------------------------------


def read_small_frames(path: Path, size: int = 64) -> npt.NDArray[np.uint8]:
    """Every frame, grey and resized to size x size, all held in memory (as the app does)."""
    capture = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        out.append(cv2.resize(grey, (size, size)))
    capture.release()
    return np.stack(out)


def known_approach(small: npt.NDArray[np.uint8], window: range, n: int, seed: int) -> list[int]:
    """Motion energy above the median, PCA 32, k-means k=n, the frame nearest each centre."""
    data = small[window.start : window.stop].reshape(len(window), -1).astype(np.float64)
    energy = np.concatenate([[0.0], np.abs(np.diff(data, axis=0)).mean(axis=1)])
    keep = np.flatnonzero(energy > np.median(energy))
    embedded = PCA(n_components=min(32, keep.size), random_state=seed).fit_transform(data[keep])
    model = KMeans(n_clusters=n, n_init="auto", random_state=seed).fit(embedded)
    picks = set()
    for centre in model.cluster_centers_:
        picks.add(int(keep[np.argmin(np.linalg.norm(embedded - centre, axis=1))]))
    return sorted(window.start + p for p in picks)


# ----- measures -------------------------------------------------------------------------


Poses = npt.NDArray[np.float64]
Results = dict[tuple[str, int], dict[str, float]]


def pose_distance(a: Poses, b: Poses) -> Poses:
    """RMS keypoint distance between every pose of ``a`` and every pose of ``b`` (pixels)."""
    keypoints = a.shape[1] / 2
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0) / keypoints)


def measure(case: Case, chosen: list[int]) -> dict[str, float]:
    """The pose-space measures of one selection."""
    chosen_arr = np.asarray(sorted(set(chosen)), dtype=np.int64)
    usable = chosen_arr[~case.distractor[chosen_arr]]
    clean = case.poses[~case.distractor]
    if usable.size:
        nearest = pose_distance(clean, case.poses[usable]).min(axis=1)
        mean_cov, worst_cov = float(nearest.mean()), float(nearest.max())
    else:
        mean_cov = worst_cov = float("inf")
    if usable.size > 1:
        pair = pose_distance(case.poses[usable], case.poses[usable])
        np.fill_diagonal(pair, np.inf)
        redundancy = float(pair.min())
    else:
        redundancy = 0.0
    visits = np.unique(case.rare_visit[case.rare_visit >= 0])
    hit = np.unique(case.rare_visit[chosen_arr])
    recall = float(np.isin(visits, hit).mean()) if visits.size else float("nan")
    return {
        "frames": float(chosen_arr.size),
        "cov_mean": mean_cov,
        "cov_worst": worst_cov,
        "rare_recall": recall,
        "redundancy": redundancy,
        "distractors": float(case.distractor[chosen_arr].sum()),
    }


# ----- cases ----------------------------------------------------------------------------


def synthetic_case(folder: Path, seed: int) -> Case:
    """A rendered pose video for ``seed``."""
    video = render_pose_video(folder / f"pose-seed{seed}.mp4", seed=seed)
    return Case(
        f"synthetic seed {seed}", video.path, video.poses, video.distractor, video.rare_visit
    )


def read_pose_csv(path: Path) -> npt.NDArray[np.float64]:
    """x, y of every keypoint per frame from a DeepLabCut / Lightning Pose CSV."""
    table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    coords = table.columns.get_level_values(2)
    return table.loc[:, np.isin(coords, ["x", "y"])].to_numpy(dtype=np.float64)


def rare_visits_by_density(
    poses: npt.NDArray[np.float64], share: float = 0.05, k: int = 10, gap: int = 3
) -> npt.NDArray[np.int64]:
    """Runs of frames whose pose is among the ``share`` farthest from its k nearest poses."""
    dist = pose_distance(poses, poses)
    knn = np.sort(dist, axis=1)[:, k]
    rare = knn >= np.quantile(knn, 1 - share)
    visit = np.full(len(poses), -1, dtype=np.int64)
    current, last = -1, -(10**9)
    for t in np.flatnonzero(rare):
        if t - last > gap:
            current += 1
        visit[last + 1 : t + 1] = current if t - last <= gap else -1
        visit[t] = current
        last = t
    return visit


def ensemble_case() -> Case | None:
    """The real mirror-mouse clip with the mean of five models' predictions, if present."""
    csvs = sorted(ENSEMBLE.glob("180607_004.rng*.csv"))
    video = ENSEMBLE / "180607_004.mp4"
    if not csvs or not video.exists():
        return None
    poses = np.mean([read_pose_csv(path) for path in csvs], axis=0)
    return Case(
        "mirror-mouse-ensemble (real)",
        video,
        poses,
        np.zeros(len(poses), bool),
        rare_visits_by_density(poses),
    )


# ----- running ----------------------------------------------------------------------------


def plain_decode_seconds(path: Path) -> float:
    """Wall time of a plain OpenCV loop that only decodes the file."""
    start = time.perf_counter()
    capture = cv2.VideoCapture(str(path))
    while capture.read()[0]:
        pass
    capture.release()
    return time.perf_counter() - start


def choose_ours(scan: frames.VideoScan, n: int) -> list[int]:
    """framewatch's choice, as handle_video makes it (one BLAS thread)."""
    options = VideoOptions(frames_per_video=n, frame_range=(0.0, 1.0), context_frames=CONTEXT)
    with threadpool_limits(limits=1):
        return choose_frames(scan, options)


def run_case(case: Case, seed: int) -> tuple[Results, dict[str, float]]:
    """Every method at every N on one case; plus the scan's and the choice's timings."""
    frame_count = len(case.poses)
    decode_s = plain_decode_seconds(case.path)
    start = time.perf_counter()
    frames.scan_video(case.path)
    thumbs_s = time.perf_counter() - start
    start = time.perf_counter()
    scan = frames.scan_video(case.path, reduce=FrameReducer())
    scan_s = time.perf_counter() - start
    if scan.frame_count != frame_count:
        raise RuntimeError(f"{case.name}: {scan.frame_count} frames decoded, {frame_count} poses")
    lo, hi = frame_window(frame_count, (0.0, 1.0), CONTEXT)
    window = range(lo, hi)
    small = read_small_frames(case.path)
    rng = np.random.default_rng(seed)
    methods: dict[str, Callable[[int], list[int]]] = {
        "uniform": lambda n: [round(x) for x in np.linspace(lo, hi - 1, n)],
        "random": lambda n: sorted(int(x) for x in rng.choice(window, n, replace=False)),
        "known": lambda n: known_approach(small, window, n, seed),
        "ours": lambda n: choose_ours(scan, n),
    }
    results = {}
    choose_s = 0.0
    for n in SIZES:
        for name, method in methods.items():
            start = time.perf_counter()
            chosen = method(n)
            if name == "ours":
                choose_s = max(choose_s, time.perf_counter() - start)
            results[(name, n)] = measure(case, chosen)
    timing = {"decode_s": decode_s, "thumbs_s": thumbs_s, "scan_s": scan_s, "choose_s": choose_s}
    return results, timing


def time_large_choice(case: Case) -> dict[str, float]:
    """choose_frames on a scan of MAX_SAMPLES samples (the most a scan keeps): time, memory."""
    scan = frames.scan_video(case.path, reduce=FrameReducer())
    reps = -(-frames.MAX_SAMPLES // scan.indices.size)
    total = scan.indices.size * reps
    big = replace(
        scan,
        frame_count=scan.frame_count * reps,
        indices=np.arange(total, dtype=np.int64)[: frames.MAX_SAMPLES],
        thumbs=np.tile(scan.thumbs, (reps, 1))[: frames.MAX_SAMPLES],
        motion=np.tile(scan.motion, reps)[: frames.MAX_SAMPLES],
    )
    options = VideoOptions(frames_per_video=50, frame_range=(0.0, 1.0), context_frames=CONTEXT)
    tracemalloc.start()
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        choose_frames(big, options)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"samples": float(big.indices.size), "choose_s": seconds, "peak_mb": peak / 2**20}


def summarize(per_case: dict[str, Results], cases: list[str]) -> Results:
    """Mean of each measure over ``cases``, per method and N."""
    table = {}
    for n in SIZES:
        for method in METHODS:
            rows = [per_case[c][(method, n)] for c in cases]
            table[(method, n)] = {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
    return table


def format_table(title: str, table: dict, with_distractors: bool) -> str:
    """A markdown table: one row per N and method."""
    head = "| N | method | frames | coverage mean | coverage worst | rare recall | redundancy |"
    rule = "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    if with_distractors:
        head += " distractors |"
        rule += " ---: |"
    lines = [f"**{title}**", "", head, rule]
    for n in SIZES:
        for method in METHODS:
            r = table[(method, n)]
            row = (
                f"| {n} | {method} | {r['frames']:.1f} | {r['cov_mean']:.2f} | "
                f"{r['cov_worst']:.2f} | {r['rare_recall']:.2f} | {r['redundancy']:.2f} |"
            )
            if with_distractors:
                row += f" {r['distractors']:.2f} |"
            lines.append(row)
    return "\n".join(lines)


def goal_check(table: dict) -> list[str]:
    """Where ours does not beat the known approach (coverage, rare recall, distractors)."""
    misses = []
    for n in SIZES:
        ours, known = table[("ours", n)], table[("known", n)]
        for key, better in (("cov_mean", -1), ("cov_worst", -1), ("rare_recall", 1)):
            if better * (ours[key] - known[key]) <= 0:
                misses.append(f"N={n} {key}: ours {ours[key]:.2f} vs known {known[key]:.2f}")
        if ours["distractors"] > known["distractors"] or (
            known["distractors"] > 0 and ours["distractors"] >= known["distractors"]
        ):
            misses.append(
                f"N={n} distractors: ours {ours['distractors']:.2f} vs known "
                f"{known['distractors']:.2f}"
            )
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="synthetic videos (one per seed)")
    parser.add_argument("--out", type=Path, help="keep videos and results.json here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        per_case, timings = {}, {}
        synthetic = []
        for seed in range(args.seeds):
            case = synthetic_case(folder, seed)
            per_case[case.name], timings[case.name] = run_case(case, seed)
            synthetic.append(case.name)
            print(f"{case.name}: done", flush=True)
        real = ensemble_case()
        if real is not None:
            per_case[real.name], timings[real.name] = run_case(real, 0)
        large = time_large_choice(synthetic_case(folder, 0))
        print()
        syn_table = summarize(per_case, synthetic)
        print(
            format_table(
                f"Synthetic pose videos, mean over {len(synthetic)} seeds (2400 frames, 320x240)",
                syn_table,
                True,
            )
        )
        real_table = None
        if real is not None:
            real_table = summarize(per_case, [real.name])
            print()
            print(format_table(f"{real.name}, 1000 frames, 8 paws", real_table, False))
        print()
        print(
            "| video | plain decode s | scan, 32x32 thumbnails only s | scan, FrameReducer s "
            "| scan / decode | choose s (max over N) |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, t in timings.items():
            print(
                f"| {name} | {t['decode_s']:.2f} | {t['thumbs_s']:.2f} | {t['scan_s']:.2f} | "
                f"{t['scan_s'] / t['decode_s']:.2f} | {t['choose_s']:.2f} |"
            )
        print(
            f"\nchoose_frames on {large['samples']:.0f} samples (N=50): "
            f"{large['choose_s']:.2f} s, peak {large['peak_mb']:.0f} MB allocated by Python"
        )
        misses = goal_check(syn_table)
        if real_table is not None:
            misses += [f"real: {m}" for m in goal_check(real_table)]
        print(
            "\ngoal (ours beats known on coverage mean/worst and rare recall at every N, "
            "fewer distractors):",
            "met" if not misses else "missed at",
        )
        for miss in misses:
            print("  -", miss)
        if args.out:
            out = {
                name: {f"{m}@{n}": r for (m, n), r in res.items()} for name, res in per_case.items()
            }
            (folder / "results.json").write_text(
                json.dumps({"cases": out, "timings": timings, "large": large}, indent=1)
            )


if __name__ == "__main__":
    main()
