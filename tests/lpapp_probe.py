"""Ask the real Lightning Pose app about a project; run by the app's own Python, prints JSON.

tests/test_labeler_lightning_pose.py runs this with the interpreter of the venv that holds
``lightning-pose-app`` (kept apart from framewatch's: the app pins OpenCV and NumPy builds that
framewatch's exact-frame tests must not share). Everything here goes through the app's HTTP
routes (FastAPI's TestClient, no port) or the startup migrations the app runs itself.

    python lpapp_probe.py check DATA_DIR SYSTEM_DIR
    python lpapp_probe.py save DATA_DIR SYSTEM_DIR FRAME_PATH
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

PROJECT_KEY = "framewatch"


def temporal_paths(frame_path: str) -> list[str]:
    """The frames the app's labeler shows around ``frame_path``.

    A port of the app's ``temporalImgPaths`` (its browser code): the number is rewritten to
    n-2 ... n+2, same prefix, extension and digit width, negative numbers left out.
    """
    match = re.match(r"^(.+?)(\d+)(\.[^.]+)$", frame_path)
    if not match:
        return []
    prefix, digits, extension = match.groups()
    current = int(digits)
    return [
        f"{prefix}{str(current + offset).zfill(len(digits))}{extension}"
        for offset in range(-2, 3)
        if current + offset >= 0
    ]


def strict_json(line: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity as the browser's ``JSON.parse`` does."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(line, parse_constant=refuse)


def main() -> None:
    command, data_dir, system_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    os.environ["LP_SYSTEM_DIR"] = str(system_dir)
    os.environ["DO_NOT_TRACK"] = "1"
    system_dir.mkdir(parents=True, exist_ok=True)
    (system_dir / "projects.toml").write_text(
        f"[{PROJECT_KEY}]\ndata_dir = {json.dumps(str(data_dir))}\n"
    )
    from fastapi.testclient import TestClient
    from litpose_app import deps
    from litpose_app.main import app
    from litpose_app.migrations import run_migrations_for_all_projects
    from litpose_app.utils.mv_label_file import LabelingQueueEntry

    client = TestClient(app)

    def rpc(name: str, body: dict[str, Any]) -> Any:
        response = client.post(f"/app/v0/rpc/{name}", json=body)
        if response.status_code != 200:
            raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text}")
        return response.json()

    def served(rel: str) -> bool:
        return client.get(f"/app/v0/files/{data_dir / rel}").status_code == 200

    if command == "save":
        frame_path = sys.argv[4]
        info = rpc("getProjectInfo", {"projectKey": PROJECT_KEY})
        keypoints = info["projectInfo"]["keypoint_names"]
        view = {
            "csvPath": str(data_dir / "CollectedData.csv"),
            "indexToChange": frame_path,
            "changedKeypoints": [{"name": k, "x": 10.0, "y": 20.0} for k in keypoints],
        }
        rpc("save_mvframe", {"projectKey": PROJECT_KEY, "views": [view]})
        print(json.dumps({"saved": frame_path}))
        return

    run_migrations_for_all_projects(deps.root_config())  # what the app does on start
    issues = {}
    for sector in ("labels", "labeled-data"):
        for item in rpc("validateProjectFiles", {"projectKey": PROJECT_KEY, "sector": sector})[
            "items"
        ]:
            if item["issues"] or item["warnings"]:
                issues[item["path"]] = item["issues"] + item["warnings"]
    label_files = rpc("findLabelFiles", {"projectKey": PROJECT_KEY})["labelFiles"]
    queue_text = client.get(f"/app/v0/files/{data_dir / 'CollectedData.unlabeled.jsonl'}").text
    queue = []
    missing = []
    for line in queue_text.splitlines():
        if not line.strip():
            continue
        entry = LabelingQueueEntry.model_validate(strict_json(line))
        queue.append(entry.model_dump())
        missing += [p for p in temporal_paths(entry.frame_path) if not served(p)]
    info = rpc("getProjectInfo", {"projectKey": PROJECT_KEY})
    print(
        json.dumps(
            {
                "issues": issues,
                "label_files": label_files,
                "queue": queue,
                "missing_frames": missing,
                "keypoint_names": info["projectInfo"]["keypoint_names"],
            }
        )
    )


if __name__ == "__main__":
    main()
