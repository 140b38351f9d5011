"""One choice of frames for a multi-view session: from all views together, or from one view.

    python -m tests.benchmarks.bench_sessions [--n 10 20] [--seeds 2 3]

First on rendered two-camera sessions (multiview_render.py: known 3-D poses, rare poses that
only one camera sees; rare recall over all eight visits), then on the four real views of
../shared/data/multiview-mouse (120 frames each, a SLEAP model's predictions for every frame
of every view as the pose, in the animal's own frame as in bench_families). Every method
chooses N common frames, and each view's pose coverage is measured (mean distance in px from
every frame's pose to the nearest chosen pose; lower is
better). Methods:

- ``uniform``: evenly spaced;
- ``first view, known``: the Lightning Pose app's way (bench_diversity.known_approach) on
  one view, its frames used for all (what the app does); averaged over which view is first;
- ``first view, ours``: framewatch's single-video choice on one view, used for all; averaged
  over which view is first;
- ``joint (ours)``: handlers.video.session, every view's features side by side.
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
from tests.benchmarks.bench_families import real_cases
from tests.benchmarks.multiview_render import render_session

VIEWS = ("top", "side", "back", "mid")


def view_cases() -> dict[str, Case]:
    """The four multiview-mouse views with their poses (bench_families' real cases)."""
    cases = {c.name.split()[1]: c for c in real_cases() if c.name.startswith("multiview")}
    return {view: cases[view] for view in VIEWS if view in cases}


def coverage(cases: dict[str, Case], chosen: list[int]) -> dict[str, float]:
    """Each view's coverage mean for one set of common frames."""
    return {view: measure(case, chosen)["cov_mean"] for view, case in cases.items()}


def synthetic_rows(seeds: list[int], n: int) -> list[tuple[str, float, float, float]]:
    """Per method: coverage mean of each view (top, side) and rare recall, over ``seeds``."""
    found: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            session = render_session(Path(tmp), seed)
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
            scans = {v: frames.scan_video(c.path, reduce=FrameReducer()) for v, c in cases.items()}
            small = {view: read_small_frames(case.path) for view, case in cases.items()}
            length = min(scan.frame_count for scan in scans.values())
            lo, hi = frame_window(length, (0.0, 1.0), CONTEXT)
            options = SessionOptions(
                session="synth",
                files={v: c.path.name for v, c in cases.items()},
                frames_per_video=n,
                frame_range=(0.0, 1.0),
                context_frames=CONTEXT,
            )
            with threadpool_limits(limits=1):
                picks = {
                    "uniform": [[round(x) for x in np.linspace(lo, hi - 1, n)]],
                    "first view, known": [
                        known_approach(small[v], range(lo, hi), n, 0) for v in cases
                    ],
                    "first view, ours": [choose_ours(scans[v], n) for v in cases],
                    "joint (ours)": [choose_session_frames(scans, options, length).frames],
                }
            for method, runs in picks.items():
                for chosen in runs:
                    top, side = (measure(cases[v], chosen) for v in ("top", "side"))
                    found.setdefault(method, []).append(
                        (top["cov_mean"], side["cov_mean"], top["rare_recall"])
                    )
    return [
        (method, *(statistics.mean(r[i] for r in rows) for i in range(3)))  # type: ignore[misc]
        for method, rows in found.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3])  # 0-1: development
    args = parser.parse_args()
    print("Rendered two-camera sessions (600 frames; coverage mean in px; rare recall of 8 visits)")
    print("| N | method | top | side | mean of views | rare recall |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in args.n:
        for method, top, side, recall in synthetic_rows(args.seeds, n):
            mean = (top + side) / 2
            print(f"| {n} | {method} | {top:.2f} | {side:.2f} | {mean:.2f} | {recall:.2f} |")
    print()
    cases = view_cases()
    if len(cases) < 2:
        raise SystemExit("../shared/data/multiview-mouse is absent")
    scans = {
        view: frames.scan_video(case.path, reduce=FrameReducer()) for view, case in cases.items()
    }
    small = {view: read_small_frames(case.path) for view, case in cases.items()}
    length = min(scan.frame_count for scan in scans.values())
    lo, hi = frame_window(length, (0.0, 1.0), CONTEXT)
    rows = []
    for n in args.n:
        options = SessionOptions(
            session="minimal",
            files={view: case.path.name for view, case in cases.items()},
            frames_per_video=n,
            frame_range=(0.0, 1.0),
            context_frames=CONTEXT,
        )
        with threadpool_limits(limits=1):
            picks: dict[str, list[dict[str, float]]] = {
                "uniform": [coverage(cases, [round(x) for x in np.linspace(lo, hi - 1, n)])],
                "first view, known": [
                    coverage(cases, known_approach(small[v], range(lo, hi), n, 0)) for v in cases
                ],
                "first view, ours": [coverage(cases, choose_ours(scans[v], n)) for v in cases],
                "joint (ours)": [
                    coverage(cases, choose_session_frames(scans, options, length).frames)
                ],
            }
        for method, runs in picks.items():
            per_view = {view: statistics.mean(run[view] for run in runs) for view in cases}
            worst = statistics.mean(max(run.values()) for run in runs)
            rows.append((n, method, per_view, statistics.mean(per_view.values()), worst))
    views = list(cases)
    print("| N | method | " + " | ".join(views) + " | mean of views | worst view |")
    print("| ---: | --- | " + " | ".join("---:" for _ in views) + " | ---: | ---: |")
    for n, method, per_view, mean, worst in rows:
        cells = " | ".join(f"{per_view[v]:.2f}" for v in views)
        print(f"| {n} | {method} | {cells} | {mean:.2f} | {worst:.2f} |")


if __name__ == "__main__":
    main()
