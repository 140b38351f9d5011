"""SLEAP files ([sleap] enabled = true): sleap-io reads back each video's .slp with the selected
frames of the right video as suggestions, and the model's guess where the model put it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from tests.harness import Framewatch
from tests.media import write_barcode_video
from tests.synthetic_predictions import KEYPOINTS, make_predictions, write_csv

sio = pytest.importorskip("sleap_io", reason="sleap-io is not installed (the labelers extra)")


def selected(bundle: Path) -> list[int]:
    return [int(name[3:11]) for name in (bundle / "selected_frames.csv").read_text().split()]


def test_each_video_gets_a_slp_with_its_frames_as_suggestions(tmp_path: Path) -> None:
    with Framewatch(tmp_path / "fw", extra_config="[sleap]\nenabled = true\n") as fw:
        fw.start()
        (fw.root / "src").mkdir()
        video = write_barcode_video(fw.root / "src" / "mouse1.mp4", 200)
        os.replace(video, fw.inbox("videos") / "mouse1.mp4")
        data = make_predictions(frames=200, errors_per_kind=1, seed=9)
        inbox = fw.inbox("inference")
        write_csv(inbox / ".mouse2.csv", data.xy, data.likelihood, scorer="lp-model")
        write_barcode_video(inbox / "mouse2", 200)
        os.replace(inbox / ".mouse2.csv", inbox / "mouse2.csv")
        for kind, name in (("videos", "mouse1"), ("inference", "mouse2")):
            status = fw.wait_state(kind, name)
            assert "complete" == status["state"], status
            assert not status.get("warnings"), status

        labels = sio.load_slp(str(fw.project / "sleap" / "mouse1.slp"), open_videos=False)
        assert [str(fw.project / "videos" / "mouse1.mp4")] == [v.filename for v in labels.videos]
        frames = [s.frame_idx for s in labels.suggestions]
        assert selected(fw.bundle("mouse1")) == sorted(frames)
        assert 20 == len(set(frames))
        assert [] == list(labels.labeled_frames)

        labels = sio.load_slp(str(fw.project / "sleap" / "mouse2.slp"), open_videos=False)
        assert [str(fw.project / "videos" / "mouse2.mp4")] == [v.filename for v in labels.videos]
        chosen = selected(fw.bundle("mouse2"))
        assert chosen == sorted(s.frame_idx for s in labels.suggestions)
        assert list(KEYPOINTS) == [node.name for node in labels.skeletons[0].nodes]
        with (fw.bundle("mouse2") / "predictions.csv").open() as handle:
            rows = {int(row[0][-12:-4]): row for row in list(csv.reader(handle))[3:]}
        assert sorted(chosen) == sorted(lf.frame_idx for lf in labels.labeled_frames)
        for frame in labels.labeled_frames:
            (instance,) = frame.instances
            assert isinstance(instance, sio.PredictedInstance)
            row = rows[frame.frame_idx]
            expected = np.array(
                [[float(row[1 + 3 * k]), float(row[2 + 3 * k])] for k in range(len(KEYPOINTS))]
            )
            np.testing.assert_allclose(expected, instance.numpy(), atol=1e-3)
