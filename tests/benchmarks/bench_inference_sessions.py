"""Model outputs of a multi-view session: is an error that one camera's model makes found?

    python -m tests.benchmarks.bench_inference_sessions [--n 6 10] [--seeds 20] [--shift 0.1]

The four real views of ../shared/data/multiview-mouse (120 frames, a SLEAP model's predictions
for every frame of every view). Per seed, one view chosen at random gets three error episodes
of 3-6 frames (the first three keypoints, Nose and both ears, moved off the body by
``--shift`` times the body's length, in a random direction) at random places; the other views
are left as the model wrote them. Each method chooses N session frames with the single-view
hard-frame choice (``hardness.choose_hard_frames``, window less 2 context frames); the measure
is how many of the injected episodes hold a chosen frame. Methods:

- ``session, worst view`` (ours, handlers/inference/session.py): a frame's score is its worst
  view's, poses of all views side by side;
- ``session, mean of views``: the views' mean score instead (the alternative rejected);
- ``one view alone``: scoring one camera only and using its frames for all (what choosing from
  the first view does), averaged over the four views as the one;
- ``random``: N frames at random in the window.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import handlers.inference.hardness as hardness
from handlers.inference.handler import ModelOutput, score_frames
from handlers.inference.predictions import Predictions, load_predictions
from handlers.inference.session import InferenceSessionOptions, session_poses, session_scores
from handlers.options import frame_window
from tests.harness import shared_file

VIEWS = ("back", "mid", "side", "top")
EPISODES = 3
CONTEXT = 2


def options(n: int) -> InferenceSessionOptions:
    return InferenceSessionOptions(
        session="minimal", views=list(VIEWS), frames_per_video=n, frame_range=(0.0, 1.0),
        context_frames=CONTEXT, likelihood_threshold=0.9, z_threshold=3.0, pca_variance=0.99,
        min_spacing_frames=4,
    )  # fmt: skip


def inject(
    pred: Predictions, rng: np.random.Generator, length: int, shift: float
) -> tuple[Predictions, list[range]]:
    """The predictions with EPISODES head-off-body episodes at random, and where they are."""
    xy = pred.xy.copy()
    body = float(
        np.nanmedian(np.linalg.norm(np.nanmax(xy, axis=1) - np.nanmin(xy, axis=1), axis=1))
    )
    episodes: list[range] = []
    window = frame_window(length, (0.0, 1.0), CONTEXT)
    while len(episodes) < EPISODES:
        size = int(rng.integers(3, 7))
        start = int(rng.integers(window[0], window[1] - size))
        span = range(start, start + size)
        if any(abs(start - e.start) < 12 for e in episodes):
            continue
        angle = rng.uniform(0, 2 * np.pi)
        xy[span.start : span.stop, :3] += shift * body * np.array([np.cos(angle), np.sin(angle)])
        episodes.append(span)
    return Predictions(pred.path, pred.scorer, pred.keypoints, xy, pred.likelihood), episodes


def view_scores(pred: Predictions, n: int, view: str) -> np.ndarray:
    output = ModelOutput(pred.path, [pred], {}, [])
    scores, _ = score_frames(output, pred, options(n).for_view(view))
    return scores


def hits(chosen: list[int], episodes: list[range]) -> int:
    return sum(any(f in e for f in chosen) for e in episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[6, 10])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--shift", type=float, default=0.1, help="head moved, x body length")
    args = parser.parse_args()
    clean = {v: load_predictions(shared_file(f"multiview-mouse/minimal_{v}.csv")) for v in VIEWS}
    length = clean["top"].frame_count
    window = frame_window(length, (0.0, 1.0), CONTEXT)
    for n in args.n:
        found: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            wrong = VIEWS[int(rng.integers(len(VIEWS)))]
            preds = dict(clean)
            preds[wrong], episodes = inject(clean[wrong], rng, length, args.shift)
            scores = {v: view_scores(preds[v], n, v) for v in VIEWS}
            poses = {v: hardness.pose_features(preds[v].xy) for v in VIEWS}
            zero = [0] * len(VIEWS)
            joint_poses = session_poses([poses[v] for v in VIEWS], zero, length)
            worst = session_scores([scores[v] for v in VIEWS], zero, length)
            mean = np.mean([scores[v] for v in VIEWS], axis=0)

            def choose(s: np.ndarray, p: np.ndarray, n: int = n) -> list[int]:
                return hardness.choose_hard_frames(s, p, n, window, spacing=4)

            found.setdefault("session, worst view (ours)", []).append(
                hits(choose(worst, joint_poses), episodes)
            )
            found.setdefault("session, mean of views", []).append(
                hits(choose(mean, joint_poses), episodes)
            )
            alone = [hits(choose(scores[v], poses[v]), episodes) for v in VIEWS]
            found.setdefault("one view alone (mean over which)", []).append(statistics.mean(alone))
            picks = sorted(rng.choice(np.arange(*window), n, replace=False).tolist())
            found.setdefault("random", []).append(hits(picks, episodes))
        total = EPISODES * args.seeds
        for method, counts in found.items():
            print(f"N = {n:2d}  {method:34s} {sum(counts):5.1f} / {total} episodes found")


if __name__ == "__main__":
    main()
