"""Pose coverage per family of recordings: a choice must hold on recordings it was not tuned on.

    python -m tests.benchmarks.bench_families [--seeds 2 3 4] [--n 20] [--out DIR]
    python -m tests.benchmarks.bench_families --novelty [--families walk still pair] [--clean]
        [--distract]

Synthetic families (tests/benchmarks/posevideo.py, 1200 frames at 320x240, one video per
seed), each ``clean`` (slow lighting drift only) and ``distract`` (a hand at the start and the
end, 6 flicker frames, the lights dimming to 55% for a tenth of the video, a box moved
mid-video):

- ``walk``: today's figure, freely moving, seen from above (pose in its own frame);
- ``still``: the body stays in place, only its pose changes (head-fixed or sitting; pose in
  image coordinates);
- ``pair``: two figures walking (pose = both; rare poses visited by one of them);
- ``small``: a figure half the size (a small animal in a large arena);
- ``large``: a figure 2.5 times the size (it fills most of the frame).

Real clips from ../shared/data with model predictions as the pose: ``openfield`` (DeepLabCut,
pose in the animal's own frame: centred on the keypoints' mean, snout-to-tailbase along +x),
``mirror-mouse-ensemble`` (mean of five models, image coordinates: the mouse is head-fixed),
and each view of ``multiview-mouse`` (own frame, Nose to TTI). Rare visits of real clips are
runs of frames among the 5% farthest from their 10 nearest poses.

Methods: uniform, random, known (bench_diversity.known_approach: motion energy, PCA,
k-means), ours (scan_video + choose_frames as the handler runs them), keep to one (ours on a
scan whose crop keeps to one of two animals, features.KEEP_TO_ONE; off by default) and an
oracle (k-means with N/5 centres on the true poses, then farthest points on
them). An ablation table switches each part off on its own. Measures as in
bench_diversity. Develop on seeds 0-1, report on seeds 2-4 (the default).

``--novelty`` measures labeling one recording twice instead: a first bundle of N, then a
second of N with the first's frames taken, the way it was (only excluded: NOVELTY off) and
now (counted as covering their poses), against one bundle of 2N, all in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from threadpoolctl import threadpool_limits

import handlers.video.features as features
import handlers.video.selection as selection
from handlers import frames
from handlers.options import frame_window
from handlers.video import VideoOptions, choose_frames
from handlers.video.selection import farthest_point_fill, nearest_to_centres
from tests.benchmarks.bench_diversity import (
    CONTEXT,
    Case,
    choose_ours,
    known_approach,
    measure,
    rare_visits_by_density,
    read_pose_csv,
    read_small_frames,
)
from tests.benchmarks.posevideo import render_pose_video

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FAMILIES: dict[str, dict[str, object]] = {
    "walk": {},
    "still": {"stationary": True},
    "pair": {"animals": 2},
    "small": {"scale": 0.5},
    "large": {"scale": 2.5},
}
METHODS = ("uniform", "random", "known", "keep to one", "ours", "oracle")
ABLATIONS: dict[str, dict[str, float]] = {
    "keep to one": {"features.KEEP_TO_ONE": True},
    "no coherence": {"COHERENCE_POWER": 0},
    "no smoothing": {"SMOOTH_FRAMES": 0},
    "no running intrusion": {"LOCAL_SPREADS": float("inf")},
    "kmeans 1/3": {"KMEANS_SHARE": 1 / 3},
    "kmeans 1/4": {"KMEANS_SHARE": 1 / 4},
    "none of these": {
        "features.KEEP_TO_ONE": False,
        "COHERENCE_POWER": 0,
        "SMOOTH_FRAMES": 0,
        "LOCAL_SPREADS": float("inf"),
    },
}
"""Parts of the choice switched off, or on (selection.py constants; ``features.`` ones are the
scan's, features.py, and need a scan of their own): ``keep to one`` is the crop that keeps to
one of two animals (off by default: it lost on real clips), ``none of these`` the choice
before issue 11."""
MEASURES = ("cov_mean", "cov_worst", "rare_recall", "redundancy", "distractors")


def synthetic(folder: Path, family: str, distract: bool, seed: int, length: int = 1200) -> Case:
    """One rendered video of ``family``, with or without distractors."""
    name = f"{family}-{'distract' if distract else 'clean'}"
    video = render_pose_video(
        folder / f"{name}-{seed}.mp4",
        seed=seed,
        frames=length,
        flickers=6 if distract else 0,
        hand=distract,
        dimming=distract,
        moved_object=distract,
        **FAMILIES[family],  # type: ignore[arg-type]
    )
    return Case(name, video.path, video.poses, video.distractor, video.rare_visit)


LONG_FRAMES = 6000


def long_still(folder: Path, seed: int, length: int = LONG_FRAMES) -> Case:
    """A long recording of a still animal (head-fixed-like), as a lab's first drop might be:
    16 brief rare visits (8-16 frames), a hand at the start and the end, 12 flickers. Window
    lengths and sampling that depend on the video's length are exercised here."""
    video = render_pose_video(
        folder / f"still-long-{seed}.mp4",
        seed=seed,
        frames=length,
        flickers=12,
        rare_visits=4,
        stationary=True,
    )
    return Case(
        f"still-long ({length})", video.path, video.poses, video.distractor, video.rare_visit
    )


def filled(poses: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Missing predictions taken from the nearest earlier (else later) frame."""
    return pd.DataFrame(poses).ffill().bfill().fillna(0.0).to_numpy()


def own_frame(poses: npt.NDArray[np.float64], front: int, back: int) -> npt.NDArray[np.float64]:
    """Keypoints centred on their mean and turned so keypoint ``back`` -> ``front`` is +x."""
    xy = poses.reshape(len(poses), -1, 2)
    centred = xy - xy.mean(axis=1, keepdims=True)
    axis = centred[:, front] - centred[:, back]
    angle = np.arctan2(axis[:, 1], axis[:, 0])
    c, s = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
    x, y = centred[..., 0], centred[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1).reshape(len(poses), -1)


def real_cases() -> list[Case]:
    """The real clips with model predictions, those that are present."""
    cases = []

    def add(name: str, video: Path, poses: npt.NDArray[np.float64]) -> None:
        cases.append(
            Case(name, video, poses, np.zeros(len(poses), bool), rare_visits_by_density(poses))
        )

    openfield = DATA / "openfield" / "m3v1mp4.csv"
    if openfield.exists():
        table = pd.read_csv(openfield, header=[0, 1, 2], index_col=0)
        parts = list(dict.fromkeys(table.columns.get_level_values(1)))
        poses = filled(read_pose_csv(openfield))
        add(
            "openfield (real)",
            openfield.with_suffix(".mp4"),
            own_frame(poses, parts.index("snout"), parts.index("tailbase")),
        )
    ensemble = sorted((DATA / "mirror-mouse-ensemble").glob("180607_004.rng*.csv"))
    if ensemble:
        poses = np.mean([filled(read_pose_csv(p)) for p in ensemble], axis=0)
        add("mirror-mouse (real)", DATA / "mirror-mouse-ensemble" / "180607_004.mp4", poses)
    for view in ("top", "side", "back", "mid"):
        csv = DATA / "multiview-mouse" / f"minimal_{view}.csv"
        if csv.exists():
            table = pd.read_csv(csv, header=[0, 1, 2], index_col=0)
            parts = list(dict.fromkeys(table.columns.get_level_values(1)))
            poses = own_frame(filled(read_pose_csv(csv)), parts.index("Nose"), parts.index("TTI"))
            add(f"multiview {view} (real)", csv.with_suffix(".mp4"), poses)
    return cases


def oracle(case: Case, window: range, n: int) -> list[int]:
    """k-means with N/5 centres on the true (clean) poses, then farthest points on them."""
    rows = np.array([i for i in window if not case.distractor[i]], dtype=np.int64)
    poses = case.poses[rows].astype(np.float32)
    with threadpool_limits(limits=1):
        picked = farthest_point_fill(poses, nearest_to_centres(poses, max(1, n // 5)), n)
    return sorted(int(rows[p]) for p in picked)


@contextlib.contextmanager
def switched(constants: dict[str, float]) -> Iterator[None]:
    """selection.py's (or, named ``features.X``, features.py's) ``constants`` set for the
    duration, then restored."""

    def where(name: str) -> tuple[object, str]:
        module, _, constant = name.rpartition(".")
        return (features if module == "features" else selection), constant

    saved = {name: getattr(*where(name)) for name in constants}
    try:
        for name, value in constants.items():
            setattr(*where(name), value)
        yield
    finally:
        for name, value in saved.items():
            setattr(*where(name), value)


def scan_as(path: Path, constants: dict[str, float]) -> frames.VideoScan:
    """The scan with the features.py constants among ``constants`` set."""
    scan_parts = {k: v for k, v in constants.items() if k.startswith("features.")}
    with switched(scan_parts):
        return frames.scan_video(path, reduce=features.FrameReducer())


def ablated(
    case: Case, scan: frames.VideoScan, n: int, names: list[str] | None = None
) -> dict[str, list[int]]:
    """Our choice with each of ABLATIONS (or those ``names``) switched off (a scan of its own
    where it needs one)."""
    picks = {}
    scans: dict[tuple[tuple[str, float], ...], frames.VideoScan] = {(): scan}
    for name, constants in ABLATIONS.items():
        if names is not None and name not in names:
            continue
        key = tuple(sorted((k, v) for k, v in constants.items() if k.startswith("features.")))
        if key not in scans:
            scans[key] = scan_as(case.path, constants)
        with switched(constants):
            picks[name] = choose_ours(scans[key], n)
    return picks


def run(
    case: Case, n: int, seed: int, ablations: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Every method and ablation (or those ``ablations``; ``keep to one`` always) on one case."""
    scan = frames.scan_video(case.path, reduce=features.FrameReducer())
    lo, hi = frame_window(len(case.poses), (0.0, 1.0), CONTEXT)
    window = range(lo, hi)
    n = min(n, len(window) // 3)
    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1):
        picks = {
            "uniform": [round(x) for x in np.linspace(lo, hi - 1, n)],
            "random": sorted(int(x) for x in rng.choice(window, n, replace=False)),
            "known": known_approach(read_small_frames(case.path), window, n, seed),
            "ours": choose_ours(scan, n),
            "oracle": oracle(case, window, n),
            **ablated(case, scan, n, None if ablations is None else ["keep to one", *ablations]),
        }
    return {method: measure(case, chosen) for method, chosen in picks.items()}


def table(results: dict[str, list[dict[str, dict[str, float]]]]) -> str:
    """One markdown row per case group and method: the mean over its runs."""
    lines = [
        "| family | method | coverage mean | coverage worst | rare recall | redundancy "
        "| distractors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in results.items():
        for method in METHODS:
            mean = {k: statistics.fmean(r[method][k] for r in runs) for k in MEASURES}
            lines.append(
                f"| {name} | {method} | {mean['cov_mean']:.2f} | {mean['cov_worst']:.2f} | "
                f"{mean['rare_recall']:.2f} | {mean['redundancy']:.2f} | "
                f"{mean['distractors']:.2f} |"
            )
    return "\n".join(lines)


def ablation_table(results: dict[str, list[dict[str, dict[str, float]]]]) -> str:
    """Rare recall / coverage mean / distractors of ours and each ablation, per case group."""
    names = ["ours", *ABLATIONS]
    lines = ["| family | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for case, runs in results.items():
        cells = []
        for name in names:
            if name not in runs[0]:
                cells.append("-")  # not run (--ablations)
                continue
            mean = {k: statistics.fmean(r[name][k] for r in runs) for k in MEASURES}
            cells.append(
                f"{mean['rare_recall']:.2f} / {mean['cov_mean']:.2f} / {mean['distractors']:.1f}"
            )
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(results: dict[str, list[dict[str, dict[str, float]]]], n: int) -> list[str]:
    """Where ours misses a target: rare recall >= 2/3 oracle, coverage <= known, distractors."""
    misses = []
    for name, runs in results.items():
        mean = {m: {k: statistics.fmean(r[m][k] for r in runs) for k in MEASURES} for m in METHODS}
        ours, known, best = mean["ours"], mean["known"], mean["oracle"]
        if "real" not in name and ours["rare_recall"] < 2 / 3 * best["rare_recall"]:
            misses.append(
                f"{name}: rare recall {ours['rare_recall']:.2f} < 2/3 of oracle "
                f"{best['rare_recall']:.2f}"
            )
        if ours["cov_mean"] > known["cov_mean"]:
            worse = ours["cov_mean"] / known["cov_mean"] - 1
            misses.append(
                f"{name}: coverage {ours['cov_mean']:.2f} px vs known "
                f"{known['cov_mean']:.2f} (+{worse:.0%})"
            )
        if ours["distractors"] > n / 20:
            misses.append(f"{name}: {ours['distractors']:.2f} distractor frames in {n}")
    return misses


NOVELTY_COLUMNS = ("first N", "2 x N, exclude only", "2 x N, novelty", "one 2N")


def choose_after(scan: frames.VideoScan, n: int, taken: list[int]) -> list[int]:
    """The handler's choice of ``n`` frames with ``taken`` already labeled (one BLAS thread)."""
    options = VideoOptions(
        frames_per_video=n,
        frame_range=(0.0, 1.0),
        context_frames=CONTEXT,
        exclude_frames=frozenset(taken),
    )
    with threadpool_limits(limits=1):
        return choose_frames(scan, options)


def novelty_run(case: Case, n: int) -> dict[str, dict[str, float]]:
    """Two bundles of ``n`` (the second exclude-only, and with novelty) against one of 2n."""
    scan = frames.scan_video(case.path, reduce=features.FrameReducer())
    first = choose_after(scan, n, [])
    with switched({"NOVELTY": False}):
        old = choose_after(scan, n, first)
    new = choose_after(scan, n, first)
    for second in (old, new):
        if len(set(second)) != n or set(second) & set(first):
            raise RuntimeError(f"{case.name}: the second bundle is not {n} new frames")
    picks = dict(
        zip(
            NOVELTY_COLUMNS,
            (first, first + old, first + new, choose_after(scan, 2 * n, [])),
            strict=True,
        )
    )
    return {name: measure(case, chosen) for name, chosen in picks.items()}


def novelty_table(results: dict[str, list[dict[str, dict[str, float]]]]) -> str:
    """Coverage mean / worst / rare recall of each column, per case group (mean over seeds)."""
    lines = [
        "| family | " + " | ".join(NOVELTY_COLUMNS) + " |",
        "| --- |" + " ---: |" * len(NOVELTY_COLUMNS),
    ]
    for case, runs in results.items():
        cells = []
        for name in NOVELTY_COLUMNS:
            mean = {k: statistics.fmean(r[name][k] for r in runs) for k in MEASURES}
            cells.append(
                f"{mean['cov_mean']:.2f} / {mean['cov_worst']:.2f} / {mean['rare_recall']:.2f}"
            )
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dump(path: Path | None, results: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    """The results so far, as JSON, when ``path`` is given (a long run can be read midway)."""
    if path is not None:
        path.write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--no-long", action="store_true", help="skip the 6000-frame still case")
    parser.add_argument("--long-seeds", type=int, nargs="*", help="seeds of the long case")
    parser.add_argument(
        "--ablations", nargs="*", choices=list(ABLATIONS), help="only these (and keep to one)"
    )
    parser.add_argument("--out", type=Path, help="keep the videos here")
    parser.add_argument("--dump", type=Path, help="write the results so far here (JSON)")
    parser.add_argument("--novelty", action="store_true", help="two bundles against one of 2N")
    parser.add_argument("--clean", action="store_true", help="only the clean variants")
    parser.add_argument("--distract", action="store_true", help="only the distract variants")
    parser.add_argument("--frames", type=int, default=1200, help="length of rendered videos")
    args = parser.parse_args()
    if args.novelty:
        novelty_main(args)
        return
    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for family in args.families:
            for distract in (False, True):
                for seed in args.seeds:
                    case = synthetic(folder, family, distract, seed, args.frames)
                    results.setdefault(case.name, []).append(
                        run(case, args.n, seed, args.ablations)
                    )
                    case.path.unlink()
                    dump(args.dump, results)
                print(f"{family} {'distract' if distract else 'clean'}: done", flush=True)
        long_seeds = args.seeds if args.long_seeds is None else args.long_seeds
        for seed in [] if args.no_long else long_seeds:
            case = long_still(folder, seed)
            results.setdefault(case.name, []).append(run(case, args.n, seed, args.ablations))
            case.path.unlink()
    if not args.no_real:
        for case in real_cases():
            results[case.name] = [run(case, args.n, 0, args.ablations)]
            dump(args.dump, results)
    print(f"\nN = {args.n}, seeds {args.seeds}\n")
    print(table(results))
    print("\nablation (rare recall / coverage mean px / distractors):\n")
    print(ablation_table(results))
    misses = targets(results, args.n)
    print("\ntargets:", "met" if not misses else "missed at")
    for miss in misses:
        print("  -", miss)


def novelty_main(args: argparse.Namespace) -> None:
    """``--novelty``: the synthetic families asked for, rendered, chosen from twice and once."""
    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for family in args.families:
            for distract in (False,) if args.clean else (True,) if args.distract else (False, True):
                for seed in args.seeds:
                    case = synthetic(folder, family, distract, seed, args.frames)
                    results.setdefault(case.name, []).append(novelty_run(case, args.n))
                    case.path.unlink()
                    dump(args.dump, results)
                print(f"{family} {'distract' if distract else 'clean'}: done", flush=True)
    print(f"\nN = {args.n}, seeds {args.seeds}, {args.frames} frames")
    print("coverage mean px / coverage worst px / rare recall:\n")
    print(novelty_table(results))


if __name__ == "__main__":
    main()
