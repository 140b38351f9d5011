"""Ask the real Lightning Pose app about a project; run by the app's own Python, prints JSON.

tests/test_labeler_lightning_pose.py runs this with the interpreter of the venv that holds
``lightning-pose-app`` (kept apart from framewatch's: the app pins OpenCV and NumPy builds that
framewatch's exact-frame tests must not share). Everything here goes through the app's HTTP
routes (FastAPI's TestClient, no port) or the startup migrations the app runs itself.

    python lpapp_probe.py check DATA_DIR SYSTEM_DIR
    python lpapp_probe.py save DATA_DIR SYSTEM_DIR FRAME_PATH
    python lpapp_probe.py mvcheck DATA_DIR SYSTEM_DIR      (a multi-view project)
    python lpapp_probe.py mvsave DATA_DIR SYSTEM_DIR LINE  (label the multi-view frame LINE)
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


def group_files_by_view(paths: list[str], views: list[str]) -> dict[str, list[tuple[str, str]]]:
    """A port of the app's ``groupFilesByView`` (its browser code, session.service.ts): label
    files grouped by the name with the first view name it contains replaced by ``*``."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        parts = path.split("/")
        view = next((v for v in views if v in parts[-1]), "unknown")
        key = (
            path if view == "unknown" else "/".join([*parts[:-1], parts[-1].replace(view, "*", 1)])
        )
        groups.setdefault(key, []).append((view, path))
    return groups


def mv_frames(queues: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A port of the app's ``loadLabelFileData`` for the queues (label-file-fetcher.service.ts):
    the i-th multi-view frame is line i of every view's queue (no frame at all when a view has
    no queue file); its key is the first view's path with the view name replaced by ``*``. Each
    frame also lists every view's key, which the app assumes equal."""
    if not queues or any(lines is None for lines in queues.values()):
        return []
    frames = []
    for i in range(max(len(lines) for lines in queues.values())):
        views = {view: lines[i] for view, lines in queues.items() if i < len(lines)}
        keys = {v: line["frame_path"].replace(v, "*", 1) for v, line in views.items()}
        frames.append(
            {
                "key": next(iter(keys.values())),
                "view_keys": keys,
                "paths": {v: line["frame_path"] for v, line in views.items()},
                "guesses": {
                    v: len((line.get("predictions") or {}).get("predictions") or [])
                    for v, line in views.items()
                },
            }
        )
    return frames


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

    if command == "mvsave":
        line = int(sys.argv[4])
        info = rpc("getProjectInfo", {"projectKey": PROJECT_KEY})["projectInfo"]
        views = []
        for view in info["views"]:
            csv_path = data_dir / f"CollectedData_{view}.csv"
            queue = csv_path.with_suffix(".unlabeled.jsonl").read_text().splitlines()
            frame_path = json.loads(queue[line])["frame_path"]
            views.append(
                {
                    "csvPath": str(csv_path),
                    "indexToChange": frame_path,
                    "changedKeypoints": [
                        {"name": k, "x": 10.0, "y": 20.0} for k in info["keypoint_names"]
                    ],
                }
            )
        rpc("save_mvframe", {"projectKey": PROJECT_KEY, "views": views})
        print(json.dumps({"saved": [v["indexToChange"] for v in views]}))
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
    if command == "mvcheck":
        info = rpc("getProjectInfo", {"projectKey": PROJECT_KEY})["projectInfo"]
        groups = group_files_by_view(label_files, info["views"])
        queues: dict[str, Any] = {}
        missing = []
        for view, path in groups.get("CollectedData_*.csv", []):
            response = client.get(
                f"/app/v0/files/{data_dir / path.replace('.csv', '.unlabeled.jsonl')}"
            )
            if response.status_code == 404:
                queues[view] = None
                continue
            lines = [
                LabelingQueueEntry.model_validate(strict_json(line)).model_dump()
                for line in response.text.splitlines()
                if line.strip()
            ]
            queues[view] = lines
            missing += [p for e in lines for p in temporal_paths(e["frame_path"]) if not served(p)]
        print(
            json.dumps(
                {
                    "issues": issues,
                    "label_files": label_files,
                    "label_file_groups": {k: [v for v, _ in g] for k, g in groups.items()},
                    "mv_frames": mv_frames(queues),
                    "missing_frames": missing,
                }
            )
        )
        return
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
