"""One choice of frames for a multi-view session: from all views together, or from one view.

    python -m tests.benchmarks.bench_sessions [--n 10 20] [--seeds 2 3]

First on rendered two-camera sessions (multiview_render.py: known 3-D poses, rare poses that
only one camera sees), in three setups: ``one-sided`` (both views clean), ``clutter`` (the
side view also shows rolling objects and a drifting light patch), ``occluded`` (a board hides
the animal from the side camera over part of the arena); then on the four real views of
../shared/data/multiview-mouse (120 frames each, a SLEAP model's predictions for every frame
of every view as the pose, in the animal's own frame as in bench_families). Every method
chooses N common frames, and each view's pose coverage is measured (mean distance in px from
every frame's pose to the nearest chosen pose; lower is better), with rare recall (share of
rare-pose visits with a chosen frame; on the real clip the low-density visits of each view,
as bench_families). Methods:

- ``uniform``: evenly spaced; ``random``: the mean of five random draws;
- ``first view, app``: the Lightning Pose app's way (bench_diversity.known_approach) on the
  first view, its frames used for all views (what the app does);
- ``first view, ours``: framewatch's single-video choice on the first view, used for all;
- ``joint (ours)``: handlers.video.session, every view's features together;
- ``oracle``: bench_families' oracle on the true poses of all views side by side.

Seeds 0, 1, 4 and 5 were used while developing the joint choice; report others.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from handlers import frames
from handlers.options import frame_window
from handlers.video.features import FrameReducer
from handlers.video.session import SessionOptions, choose_session_frames
from tests.benchmarks.bench_diversity import (
    CONTEXT,
    Case,
    choose_ours,
    known_approach,
    measure,
    read_small_frames,
)
from tests.benchmarks.bench_families import oracle, real_cases
from tests.benchmarks.multiview_render import SETUPS, render_session

VIEWS = ("top", "side", "back", "mid")
METHODS = ("uniform", "random", "first view, app", "first view, ours", "joint (ours)", "oracle")
Scores = dict[str, tuple[dict[str, float], float]]


def view_cases() -> dict[str, Case]:
    """The four multiview-mouse views with their poses (bench_families' real cases)."""
    cases = {c.name.split()[1]: c for c in real_cases() if c.name.startswith("multiview")}
    return {view: cases[view] for view in VIEWS if view in cases}


def joint_oracle(cases: dict[str, Case], window: range, n: int) -> list[int]:
    """The oracle on every view's true pose side by side."""
    poses = np.hstack([case.poses for case in cases.values()])
    first = next(iter(cases.values()))
    return oracle(
        Case("all views", first.path, poses, first.distractor, first.rare_visit), window, n
    )


def score_session(cases: dict[str, Case], n: int) -> Scores:
    """Per method: each view's coverage mean, and rare recall averaged over the views."""
    scans = {v: frames.scan_video(c.path, reduce=FrameReducer()) for v, c in cases.items()}
    first = next(iter(cases))
    length = min(scan.frame_count for scan in scans.values())
    lo, hi = frame_window(length, (0.0, 1.0), CONTEXT)
    options = SessionOptions(
        session="bench",
        files={v: c.path.name for v, c in cases.items()},
        frames_per_video=n,
        frame_range=(0.0, 1.0),
        context_frames=CONTEXT,
    )
    rng = np.random.default_rng(n)
    with threadpool_limits(limits=1):
        picks = {
            "uniform": [[round(x) for x in np.linspace(lo, hi - 1, n)]],
            "random": [
                sorted(rng.choice(range(lo, hi), n, replace=False).tolist()) for _ in range(5)
            ],
            "first view, app": [
                known_approach(read_small_frames(cases[first].path), range(lo, hi), n, 0)
            ],
            "first view, ours": [choose_ours(scans[first], n)],
            "joint (ours)": [choose_session_frames(scans, options, length).frames],
            "oracle": [joint_oracle(cases, range(lo, hi), n)],
        }
    scores: Scores = {}
    for method, runs in picks.items():
        found = [{v: measure(c, chosen) for v, c in cases.items()} for chosen in runs]
        per_view = {v: statistics.mean(f[v]["cov_mean"] for f in found) for v in cases}
        recall = statistics.mean(
            statistics.mean(m["rare_recall"] for m in f.values()) for f in found
        )
        scores[method] = (per_view, recall)
    return scores


def mean_scores(runs: list[Scores]) -> Scores:
    """The mean over sessions of every measure."""
    return {
        method: (
            {v: statistics.mean(r[method][0][v] for r in runs) for v in runs[0][method][0]},
            statistics.mean(r[method][1] for r in runs),
        )
        for method in runs[0]
    }


def print_table(title: str, n_scores: list[tuple[str, int, Scores]]) -> None:
    """One markdown table: a row per setup, N and method."""
    views = list(n_scores[0][2]["uniform"][0])
    print(title)
    print("| setup | N | method | " + " | ".join(views) + " | mean of views | rare recall |")
    print("| --- | ---: | --- | " + " | ".join("---:" for _ in views) + " | ---: | ---: |")
    for setup, n, scores in n_scores:
        for method in METHODS:
            per_view, recall = scores[method]
            cells = " | ".join(f"{per_view[v]:.2f}" for v in views)
            mean = statistics.mean(per_view.values())
            print(f"| {setup} | {n} | {method} | {cells} | {mean:.2f} | {recall:.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    args = parser.parse_args()
    rows: list[tuple[str, int, Scores]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for setup in args.setups:
            runs: dict[int, list[Scores]] = {n: [] for n in args.n}
            for seed in args.seeds:
                session = render_session(Path(tmp), seed, setup=setup)
                cases = {
                    view: Case(
                        view,
                        path,
                        session.poses[view],
                        np.zeros(len(session.rare_visit), bool),
                        session.rare_visit,
                    )
                    for view, path in session.paths.items()
                }
                for n in args.n:
                    runs[n].append(score_session(cases, n))
            rows += [(setup, n, mean_scores(runs[n])) for n in args.n]
    print_table(
        f"Rendered two-camera sessions, seeds {args.seeds} (600 frames; coverage mean in px)", rows
    )
    cases = view_cases()
    if len(cases) < 2:
        raise SystemExit("../shared/data/multiview-mouse is absent")
    real = [("real", n, score_session(cases, n)) for n in args.n]
    print_table(
        "The real four-view session multiview-mouse (120 frames; coverage mean in px)", real
    )


if __name__ == "__main__":
    main()
