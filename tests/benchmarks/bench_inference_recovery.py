"""How well the frames chosen from a model's output point at its errors: ours, the known approach
and random frames, on synthetic error processes and on the real drops.

    python -m tests.benchmarks.bench_inference_recovery                 # held-out seeds
    python -m tests.benchmarks.bench_inference_recovery --dev           # development seeds
    python -m tests.benchmarks.bench_inference_recovery --part real
    python -m tests.benchmarks.bench_inference_recovery --part timing
    python -m tests.benchmarks.bench_inference_recovery --part daemon

Methods, each on the same arrays in one process: ``ours`` (handlers/inference/hardness.py
with the default config, given the keypoint names as the handler is); the known approach
(tests/active_learning.py: likelihood and temporal-norm / pose-PCA flags, frames above the
median motion, k-means on poses, highest score per cluster) with the app's default
likelihood threshold 0 and with 0.9; and random frames.

1. ``families``: synthetic recordings (tests/synthetic_predictions.py ``make_episodes``),
   3000 frames with 8 error episodes of 5-200 frames each, per family: identity swaps,
   left/right swaps, head/tail swaps, slow drift, occlusion (low likelihood, wandering), and
   all processes mixed under uncalibrated likelihoods (always low, always high, above 1).
   Printed per family and N: episodes with a chosen frame inside / possible, and the share of
   chosen frames that lie in an error. Development seeds (0, 1: tuned against) are separate
   from held-out seeds (100-104: reported).
2. ``real``: the real drops in ../shared/data, judged by what can be known without labels.
   - mirror-mouse-ensemble: each of the five models alone, judged against the median of the
     other four (a stand-in for the truth): mean stand-in error of the chosen frames (px) and
     the share of them among the 10% of frames with the largest stand-in error.
   - fly-pair, openfield, the four multiview-mouse views (no labels, one model): the share of
     chosen frames where a body is implausible (a keypoint's distance to a body partner more
     than 1.5 x or less than 0.5 x its median: a keypoint off its animal), and the mean
     largest such stretch. Ours uses limb lengths among its signals, so this measure favours
     ours; it says where the chosen frames lie, not how wrong they are.
3. ``timing``: an hour of predictions (108,000 rows, 16 keypoints, 5 models) read, checked,
   scored and chosen (N = 20) by the handler's own steps, beside reading the five CSVs with
   pandas alone; each in a fresh child process: wall and CPU time (the imports and the
   reading shown apart) and the child's own peak resident memory (VmHWM; the resident
   memory right after the imports shown apart).

4. ``daemon``: each real drop (the ensemble as one folder, every single model with its video)
   dropped into a real daemon (tests/harness.py ``Framewatch``, ``framewatch once``) with N =
   20; the frames of the bundle it wrote (``selected_frames.csv``) judged by the same
   label-free measures, the in-process choice on the same predictions beside them (the
   two must agree), and the episodes ``selection.json`` reports.

Nothing is written into the repository; the numbers go to stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from handlers.inference import hardness
from handlers.inference.predictions import load_predictions
from tests.active_learning import FloatArray, lightning_pose_app, ours, random_frames
from tests.harness import SHARED_DATA, Framewatch
from tests.synthetic_predictions import KEYPOINTS, PROCESSES, SyntheticEpisodes, make_episodes

Chooser = Callable[[FloatArray, FloatArray, int, Sequence[str]], list[int]]
METHODS: dict[str, Chooser] = {
    "ours": lambda xy, lik, n, names: ours(xy, lik, n, keypoints=names),
    "known approach, threshold 0": lambda xy, lik, n, names: lightning_pose_app(xy, lik, n),
    "known approach, threshold 0.9": lambda xy, lik, n, names: lightning_pose_app(xy, lik, n, 0.9),
    "random": lambda xy, lik, n, names: random_frames(xy, lik, n),
}
SIZES = (10, 20, 50)
DEV_SEEDS = (0, 1)
HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    **{process: ((process,), "calibrated") for process in PROCESSES},
    "mixed, always-low likelihood": (PROCESSES, "always_low"),
    "mixed, always-high likelihood": (PROCESSES, "always_high"),
    "mixed, scores above 1": (PROCESSES, "score_above_1"),
}
STRETCH = 0.5
"""A body partner distance off its median by more than this share counts as implausible."""


def families(seeds: Sequence[int], frames: int) -> None:
    """Measure 1: per family, episodes recovered and the share of chosen frames in error."""
    print(
        f"1. families: seeds {list(seeds)}, {frames} frames, 8 episodes of 5-200 frames each; "
        "cells: episodes recovered / possible, share of chosen frames in an error"
    )
    print(f"   {'family':<30} {'method':<30}" + "".join(f"{f'N={n}':>16}" for n in SIZES))
    for family, (processes, calibration) in FAMILIES.items():
        data = [make_episodes(processes, calibration, frames=frames, seed=seed) for seed in seeds]
        for name, choose in METHODS.items():
            cells = [family_cell(data, choose, n) for n in SIZES]
            print(f"   {family:<30} {name:<30}" + "".join(f"{c:>16}" for c in cells))


def family_cell(data: Sequence[SyntheticEpisodes], choose: Chooser, n: int) -> str:
    found = possible = in_error = returned = 0
    for recording in data:
        chosen = choose(recording.xy, recording.likelihood, n, KEYPOINTS)
        found += recording.recovered(chosen)
        possible += len(recording.episodes)
        in_error += recording.in_error(chosen)
        returned += len(chosen)
    share = in_error / returned if returned else 0.0
    return f"{found:>3}/{possible} {share:>4.0%}"


# ----- the real drops --------------------------------------------------------------------------


def implausible(xy: FloatArray, names: Sequence[str]) -> FloatArray:
    """Per frame, the largest relative stretch of a body partner distance (see STRETCH)."""
    return np.nanmax(hardness.limb_deviation(xy, names), axis=1)


def real_ensemble() -> None:
    """Stand-in error of the chosen frames on the real five-model ensemble."""
    folder = SHARED_DATA / "mirror-mouse-ensemble"
    paths = sorted(folder.glob("180607_004.rng*.csv"))
    if not paths:
        print(f"   mirror-mouse-ensemble: skipped, {folder} is absent")
        return
    members = [load_predictions(path) for path in paths]
    xy = np.stack([m.xy for m in members])
    print(
        f"   mirror-mouse-ensemble ({len(members)} models x {xy.shape[1]} frames), each model "
        "against the median of the others: mean stand-in error (px) of the chosen frames / "
        "share of them among the 10% worst frames"
    )
    errors = []
    for m in range(len(members)):
        stand_in = np.nanmedian(np.delete(xy, m, axis=0), axis=0)
        errors.append(np.nanmean(np.linalg.norm(xy[m] - stand_in, axis=-1), axis=1))
    every = np.mean([float(np.nanmean(e)) for e in errors])
    print(f"   {'(every frame)':<32}{every:>7.1f}")
    for name, choose in METHODS.items():
        cells = []
        for n in SIZES:
            means, shares = [], []
            for m, member in enumerate(members):
                chosen = choose(member.xy, member.likelihood, n, member.keypoints)
                worst = errors[m] >= np.nanquantile(errors[m], 0.9)
                means.append(float(np.nanmean(errors[m][chosen])) if chosen else np.nan)
                shares.append(float(np.mean(worst[chosen])) if chosen else np.nan)
            cells.append(f"{np.mean(means):>6.1f} / {np.mean(shares):>4.0%}")
        print(
            f"   {name:<32}"
            + "".join(f"{f'N={n} ' + c:>22}" for n, c in zip(SIZES, cells, strict=True))
        )


REAL_SINGLE = {
    "fly-pair": "fly-pair/clip.csv",
    "openfield": "openfield/m3v1mp4.csv",
    **{
        f"multiview-mouse {v}": f"multiview-mouse/minimal_{v}.csv"
        for v in ("back", "mid", "side", "top")
    },
}


def real_single() -> None:
    """Label-free measures on the real single-model drops."""
    print(
        f"   single models, no labels: share of chosen frames with an implausible body "
        f"(a partner distance off its median by > {STRETCH:.0%}) / mean largest stretch"
    )
    for drop, relative in REAL_SINGLE.items():
        path = SHARED_DATA / relative
        if not path.is_file():
            print(f"   {drop}: skipped, {path} is absent")
            continue
        model = load_predictions(path)
        stretch = implausible(model.xy, model.keypoints)
        share_all = float(np.mean(stretch > STRETCH))
        print(f"   {drop} ({model.frame_count} frames; every frame {share_all:.0%})")
        sizes = [n for n in SIZES if n <= model.frame_count // 4]
        for name, choose in METHODS.items():
            cells = []
            for n in sizes:
                chosen = choose(model.xy, model.likelihood, n, model.keypoints)
                if not chosen:
                    cells.append(f"N={n} none chosen")
                    continue
                picked = stretch[chosen]
                cells.append(
                    f"N={n} {np.mean(picked > STRETCH):>4.0%} / {np.nanmean(picked):>4.2f}"
                )
            print(f"     {name:<30}" + "".join(f"{c:>22}" for c in cells))


# ----- timing ----------------------------------------------------------------------------------

CHILD = """
import resource, sys, time, json
from pathlib import Path
paths = sorted(Path(sys.argv[2]).glob("hour.rng*.csv"))
def rss(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start, cpu = time.perf_counter(), time.process_time()
if sys.argv[1] == "pandas":
    import pandas as pd
    imported, imported_mb = time.process_time() - cpu, rss("VmRSS")
    frames = [pd.read_csv(p, header=[0, 1, 2], index_col=0) for p in paths]
    chosen, loaded = [], time.process_time() - cpu - imported
else:
    import numpy as np
    from handlers.inference import handler, hardness
    from handlers.inference.predictions import load_predictions
    imported, imported_mb = time.process_time() - cpu, rss("VmRSS")
    # The handler's own steps, minus the video: members as load_drop reads them, combined,
    # scored and chosen as handle_inference does.
    dtype = np.float32 if len(paths) > 1 else np.float64
    members = [load_predictions(p, dtype) for p in paths]
    loaded = time.process_time() - cpu - imported
    options = handler.InferenceOptions(
        frames_per_video=20, frame_range=(0.0, 1.0), context_frames=2,
        likelihood_threshold=0.9, z_threshold=3.0, pca_variance=0.99, min_spacing_frames=4,
        stem="hour",
    )
    output = handler.ModelOutput(Path("hour.mp4"), members, {}, [])
    del members
    combined = handler.combined_predictions(output)
    spread = handler.member_spread(output, combined.xy)
    output = output.without_member_arrays()
    scores, weights, factor = handler.scored_frames(output, combined, options, spread)
    del spread
    chosen = hardness.choose_hard_frames(
        scores, hardness.pose_features(combined.xy), options.frames_per_video,
        handler.chosen_window(output.frame_count, options),
        spacing=options.min_spacing_frames, factor=factor,
    )
# ru_maxrss survives exec: a child started by vfork reports its parent's peak (the bench
# that wrote the CSVs). VmHWM is this process's own.
print(json.dumps({
    "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
    "import_cpu_s": imported, "load_cpu_s": loaded, "peak_mb": rss("VmHWM"),
    "import_mb": imported_mb, "chosen": len(chosen),
}))
"""


def hour_of_predictions(folder: Path, rows: int, keypoints: int, models: int) -> None:
    """Members' CSVs of ``rows`` frames (two animals of ``keypoints / 2`` keypoints), each
    member the same motion with its own noise, in the three-header-row layout."""
    rng = np.random.default_rng(0)
    names = [f"{animal}_p{k}" for animal in ("a", "b") for k in range(keypoints // 2)]
    t = np.arange(rows)[:, None]
    base = 300 + 200 * np.sin(t / 500 + np.arange(keypoints)[None] * 0.3)
    xy = np.stack([base, np.roll(base, 1, axis=1)], axis=-1)
    header = "\n".join(
        [
            ",".join(["scorer", *["bench"] * (3 * keypoints)]),
            ",".join(["bodyparts", *[k for k in names for _ in range(3)]]),
            ",".join(["coords", *["x", "y", "likelihood"] * keypoints]),
        ]
    )
    for member in range(models):
        noisy = xy + rng.normal(0, 1.0, xy.shape)
        likelihood = rng.uniform(0.8, 1.0, (rows, keypoints, 1))
        cells = np.concatenate([noisy, likelihood], axis=-1).reshape(rows, 3 * keypoints)
        table = np.column_stack([np.arange(rows), cells])
        path = folder / f"hour.rng{member}.csv"
        fmt = ["%d", *["%.3f"] * (3 * keypoints)]
        np.savetxt(path, table, fmt=fmt, delimiter=",", header=header, comments="")


def timing(rows: int, keypoints: int, models: int) -> None:
    """Measure 3: ours against pandas reading the same files, each in a fresh process."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        hour_of_predictions(folder, rows, keypoints, models)
        print(
            f"3. timing: {models} models x {rows} rows x {keypoints} keypoints "
            f"(CSV {sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.0f} MB in all)"
        )
        for what in ("pandas", "ours"):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, what, str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            label = (
                "pandas read_csv of the 5 files"
                if what == "pandas"
                else "ours: load, score, choose"
            )
            r = result
            print(
                f"   {label:<31} wall {r['wall_s']:>5.1f} s   cpu {r['cpu_s']:>5.1f} s"
                f" (imports {r['import_cpu_s']:>3.1f} s, reading {r['load_cpu_s']:>4.1f} s)"
                f"   peak {r['peak_mb']:>4.0f} MB (after imports {r['import_mb']:>3.0f} MB)"
            )


# ----- through a real daemon -------------------------------------------------------------------

DAEMON_N = 20


def daemon_bundle(files: Sequence[Path], stem: str, n: int) -> tuple[list[int], dict[str, object]]:
    """Drop ``files`` as the folder ``inbox/inference/STEM/`` into a fresh daemon, run
    ``framewatch once``, and read back the frames its bundle holds and its selection.json."""
    with tempfile.TemporaryDirectory() as scratch:
        fw = Framewatch(Path(scratch) / "fw")
        drop = fw.inbox("inference") / stem
        drop.mkdir(parents=True)
        for path in files:
            shutil.copy(path, drop / path.name)
        (drop / f"{stem}.json").write_text(json.dumps({"frames_per_video": n}))
        done = fw.once(timeout=900)
        status = fw.status("inference", stem) or {}
        if done.returncode != 0 or status.get("state") != "complete":
            raise RuntimeError(f"{stem}: daemon ended {done.returncode}, {status}")
        bundle = fw.bundle(stem)
        lines = (bundle / "selected_frames.csv").read_text().split()
        report = json.loads((bundle / "selection.json").read_text())
        return sorted(int(line[3:11]) for line in lines), report


def daemon_part(n: int) -> None:
    """Measure 4: the real drops through a real daemon, judged from the bundle it wrote."""
    print(
        f"4. real drops through a real daemon (framewatch once, N = {n}): frames of the bundle; "
        "same as in-process; label-free measures of those frames; episodes in selection.json"
    )
    folder = SHARED_DATA / "mirror-mouse-ensemble"
    paths = sorted(folder.glob("180607_004.rng*.csv"))
    if paths:
        chosen, report = daemon_bundle([*paths, folder / "180607_004.mp4"], "180607_004", n)
        members = [load_predictions(path) for path in paths]
        xy = np.stack([m.xy for m in members])
        # Each model's distance from the others' median, averaged over models: how much the
        # ensemble disagrees in a frame (the stand-in error of measure 2, per frame).
        disagree = np.nanmean(
            [
                np.nanmean(np.linalg.norm(xy[m] - np.nanmedian(np.delete(xy, m, 0), 0), axis=-1), 1)
                for m in range(len(members))
            ],
            axis=0,
        )
        mean = hardness.mean_of([m.xy for m in members])
        likelihood = hardness.mean_of([m.likelihood for m in members])
        known = lightning_pose_app(mean, likelihood, n)
        worst = disagree >= np.nanquantile(disagree, 0.9)
        for name, frames in (("daemon (ours)", chosen), ("known, threshold 0", known)):
            print(
                f"   mirror-mouse-ensemble {name:<20} {len(frames)} frames: models' disagreement "
                f"{np.nanmean(disagree[frames]):.1f} px (every frame {np.nanmean(disagree):.1f}), "
                f"{np.mean(worst[frames]):.0%} among the 10% worst"
            )
        print(f"     episodes in selection.json: {episode_summary(report)}")
    for drop, relative in REAL_SINGLE.items():
        path = SHARED_DATA / relative
        if not path.is_file():
            print(f"   {drop}: skipped, {path} is absent")
            continue
        model = load_predictions(path)
        size = min(n, model.frame_count // 4)
        chosen, report = daemon_bundle([path, path.with_suffix(".mp4")], path.stem, size)
        in_process = ours(model.xy, model.likelihood, size, keypoints=model.keypoints)
        stretch = implausible(model.xy, model.keypoints)
        known = lightning_pose_app(model.xy, model.likelihood, size)
        cells = []
        for name, frames in (("daemon", chosen), ("known, threshold 0", known)):
            picked = stretch[frames] if frames else np.array([np.nan])
            cells.append(
                f"{name} {len(frames)}: {np.mean(picked > STRETCH):.0%} / {np.nanmean(picked):.2f}"
            )
        same = "same as in-process" if chosen == in_process else f"in-process {in_process}"
        print(f"   {drop:<24} N={size}  " + "   ".join(cells) + f"   ({same})")
        print(f"     frames {chosen}; episodes {episode_summary(report)}")


def episode_summary(report: dict[str, object]) -> str:
    """The episodes selection.json names, each with how many chosen frames lie in it."""
    counts: dict[str, int] = {}
    frames = report.get("frames", [])
    assert isinstance(frames, list)
    for frame in frames:
        bounds = frame.get("episode")
        key = f"{bounds[0]}-{bounds[1]}" if bounds else "none"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--part", choices=("families", "real", "timing", "daemon", "all"), default="all"
    )
    parser.add_argument("--dev", action="store_true", help="development seeds, not held-out")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=108_000)
    args = parser.parse_args()
    if args.part in ("families", "all"):
        families(DEV_SEEDS if args.dev else HELD_OUT_SEEDS, args.frames)
        print()
    if args.part in ("real", "all"):
        print("2. real drops")
        real_ensemble()
        real_single()
        print()
    if args.part in ("daemon", "all"):
        daemon_part(DAEMON_N)
        print()
    if args.part in ("timing", "all"):
        timing(args.rows, 16, 5)


if __name__ == "__main__":
    main()
