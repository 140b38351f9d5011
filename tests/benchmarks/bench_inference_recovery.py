"""How well the frames chosen from a model's output point at its errors: ours against the app's.

    python -m tests.benchmarks.bench_inference_recovery [--seeds 5] [--frames 3000]

Two measures, each printed side by side for our choice (handlers/hardness.py, default
config), the Lightning Pose app's approach as issue 4 describes it (tests/active_learning.py;
its default likelihood threshold 0, and 0.9), and frames spread evenly over the video:

1. Synthetic predictions (tests/synthetic_predictions.py) with single-frame errors injected at
   known frames (jumps, identity swaps, left/right swaps, low likelihood): the share of
   injected frames chosen at N = 10, 20, 50, over ``--seeds`` recordings, and per kind at N = 50.
2. The real five-model ensemble of ../shared/data/mirror-mouse-ensemble, with no ground
   truth: each model's predictions alone are judged against the median of the other four (a
   stand-in for the truth). Printed: the mean stand-in error (px) of the chosen frames, the
   share of them with an error above 10 px and how many frames came back, averaged over models.

Nothing is written anywhere; the numbers go to stdout.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from handlers.inference.predictions import load_predictions
from tests.active_learning import FloatArray, lightning_pose_app, ours
from tests.harness import SHARED_DATA
from tests.synthetic_predictions import ERROR_KINDS, make_predictions

Chooser = Callable[[FloatArray, FloatArray, int], list[int]]
METHODS: dict[str, Chooser] = {
    "ours": ours,
    "LP app, threshold 0 (its default)": lightning_pose_app,
    "LP app, threshold 0.9": lambda xy, lik, n: lightning_pose_app(xy, lik, n, 0.9),
    "evenly spread": lambda xy, lik, n: (
        np.linspace(2, xy.shape[0] - 3, n).round().astype(int).tolist()
    ),
}
BAD_PX = 10.0


def synthetic(seeds: int, frames: int) -> None:
    """Measure 1: share of injected errors recovered."""
    datasets = [make_predictions(frames=frames, errors_per_kind=10, seed=s) for s in range(seeds)]
    injected = sum(len(d.errors) for d in datasets)
    print(f"1. synthetic: {seeds} x {frames} frames, {injected} injected single-frame errors")
    print(
        f"   {'method':<36}"
        + "".join(f"{f'N={n}':>16}" for n in (10, 20, 50))
        + "   per kind at N=50"
    )
    for name, choose in METHODS.items():
        cells, kinds = [], dict.fromkeys(ERROR_KINDS, 0)
        for n in (10, 20, 50):
            found = returned = 0
            for data in datasets:
                chosen = choose(data.xy, data.likelihood, n)
                returned += len(chosen)
                hits = [data.errors[f] for f in chosen if f in data.errors]
                found += len(hits)
                if n == 50:
                    for kind in hits:
                        kinds[kind] += 1
            cells.append(f"{found:>4}/{injected} ({returned:>3} back)")
        per_kind = ", ".join(f"{kind} {count}/{injected // 4}" for kind, count in kinds.items())
        print(f"   {name:<36}" + "".join(f"{c:>16}" for c in cells) + f"   {per_kind}")


def real_ensemble() -> None:
    """Measure 2: stand-in error of the chosen frames on the real ensemble."""
    folder = SHARED_DATA / "mirror-mouse-ensemble"
    paths = sorted(folder.glob("180607_004.rng*.csv"))
    if not paths:
        print(f"2. real ensemble: skipped, {folder} is absent")
        return
    members = [load_predictions(path) for path in paths]
    xy = np.stack([m.xy for m in members])
    print(
        f"2. real ensemble ({len(members)} models x {xy.shape[1]} frames): each model judged "
        f"against the median of the others; mean error (px) of the chosen frames / share "
        f"of them above {BAD_PX:.0f} px"
    )
    print(f"   {'method':<36}" + "".join(f"{f'N={n} (back)':>22}" for n in (10, 20, 50)))
    errors = []
    for m in range(len(members)):
        stand_in = np.nanmedian(np.delete(xy, m, axis=0), axis=0)
        errors.append(np.nanmax(np.linalg.norm(xy[m] - stand_in, axis=-1), axis=1))
    overall = np.mean([float(np.mean(e)) for e in errors])
    print(f"   {'(every frame)':<36}{overall:>7.1f}")
    for name, choose in METHODS.items():
        cells = []
        for n in (10, 20, 50):
            means, shares, returned = [], [], 0
            for m, member in enumerate(members):
                chosen = choose(member.xy, member.likelihood, n)
                returned += len(chosen)
                picked = errors[m][chosen] if chosen else np.array([np.nan])
                means.append(float(np.mean(picked)))
                shares.append(float(np.mean(picked > BAD_PX)))
            back = returned / len(members)
            cells.append(f"{np.mean(means):>6.1f} / {np.mean(shares):>4.0%} ({back:>4.1f})")
        print(f"   {name:<36}" + "".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    synthetic(args.seeds, args.frames)
    print()
    real_ensemble()


if __name__ == "__main__":
    main()
