"""Label Studio ([label_studio] url = ...) against a real server (label-studio from PyPI, in
.venv-labelstudio: .ci/run makes it), started once for this module on 127.0.0.1 with its own
SQLite database: every selected frame becomes exactly one task whose image the server serves;
a server that is stopped leaves the bundle complete with a warning, and the frames are sent
once it is back; a wrong token is refused in words."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from daemon.config import LabelStudio, Settings
from daemon.labelers import PublishedBundle
from daemon.labelers import label_studio as ls
from handlers.bundle import frame_index
from tests.harness import REPO, Framewatch
from tests.media import read_barcode, write_barcode_video
from tests.synthetic_predictions import KEYPOINTS, make_predictions, write_csv


def server_program() -> Path | None:
    named = os.environ.get("LABEL_STUDIO_PROGRAM")
    path = Path(named) if named else REPO / ".venv-labelstudio" / "bin" / "label-studio"
    return path if path.is_file() else None


def migrated_data(program: Path) -> Path | None:
    """A data folder whose database .ci/run migrated beside the program's venv while the other
    installs ran (``label-studio version --data-dir <venv>/migrated-data``): copied, it spares
    every first start the migrations (minutes under load). None where it was not made."""
    folder = program.parent.parent / MIGRATED_DATA
    return folder if (folder / "label_studio.sqlite3").is_file() else None


pytestmark = pytest.mark.skipif(
    server_program() is None,
    reason="label-studio is not installed: .ci/run makes .venv-labelstudio "
    "(or set LABEL_STUDIO_PROGRAM to its label-studio program)",
)

LEGACY_TOKEN = "framewatch-legacy-key-0001"
MIGRATED_DATA = "migrated-data"  # in .venv-labelstudio; .ci/run makes it


@dataclass
class Server:
    """One Label Studio server: its data, the document root it serves files from, its user."""

    base: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    access_token: str = ""
    log: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docroot(self) -> Path:
        return self.base / "docroot"

    def start(self, timeout: float = 900) -> None:
        program = server_program()
        assert program is not None
        self.docroot.mkdir(parents=True, exist_ok=True)
        migrated = migrated_data(program)
        if migrated is not None and not (self.base / "data").exists():
            shutil.copytree(migrated, self.base / "data")
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.base / "data"),
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(self.docroot),
        }
        log = self.base / f"server{len(self.log)}.log"
        self.log.append(log)
        self.process = subprocess.Popen(
            [str(program), "start", "--no-browser", "--port", str(self.port),
             "--data-dir", str(self.base / "data"), "--username", "fw@example.com",
             "--password", "framewatch-pw", "--user-token", LEGACY_TOKEN,
             "--enable-legacy-api-token"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=5).read()
                return
            except OSError:
                time.sleep(1)
        raise AssertionError(
            f"Label Studio did not start in {timeout} s: {log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def api(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """A call with the legacy key (the test's own view of the server)."""
        return ls.call(self.url, method, path, body, f"Token {LEGACY_TOKEN}", 30, query)

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Token {LEGACY_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data: bytes = response.read()
            return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's one server; the personal access token made once (one per user)."""
    instance = Server(tmp_path_factory.mktemp("label-studio"), free_port())
    instance.start()
    try:
        instance.access_token = instance.api("POST", "/api/token/")["token"]
        yield instance
    finally:
        instance.stop()


KEYPOINT_CONFIG = (
    '<View><Image name="img" value="$img"/><KeyPointLabels name="kp" toName="img">'
    + "".join(f'<Label value="{name}"/>' for name in KEYPOINTS)
    + "</KeyPointLabels></View>"
)


def tasks(server: Server, project: int) -> list[dict[str, Any]]:
    answer = server.api("GET", "/api/tasks", project=project, page_size=1000)
    found: list[dict[str, Any]] = answer["tasks"]
    return found


def test_bundles_become_tasks_once_even_with_the_server_down(server: Server) -> None:
    """Personal access token (Bearer); a project given by id whose image field is $img."""
    project = server.api(
        "POST", "/api/projects", {"title": "daemon test", "label_config": KEYPOINT_CONFIG}
    )["id"]
    root = server.docroot / "fw"
    root.mkdir()
    (root / "token").write_text(server.access_token)
    config = (
        f'[label_studio]\nurl = "{server.url}"\nproject_id = {project}\n'
        f'token_file = "token"\ndocument_root = "{server.docroot}"\n'
    )
    with Framewatch(root, extra_config=config) as fw:
        fw.start()
        (fw.root / "src").mkdir()
        video = write_barcode_video(fw.root / "src" / "mouse1.mp4", 200)
        os.replace(video, fw.inbox("videos") / "mouse1.mp4")
        status = fw.wait_state("videos", "mouse1")
        assert "complete" == status["state"] and not status.get("warnings"), status
        made = tasks(server, project)
        selected = (fw.bundle("mouse1") / "selected_frames.csv").read_text().split()
        assert sorted(f"labeled-data/mouse1/{n}" for n in selected) == sorted(
            t["data"]["frame_path"] for t in made
        )
        for task in made:  # the server itself serves each frame, the right one
            png = cv2.imdecode(np.frombuffer(server.get(task["data"]["img"]), np.uint8), 1)
            assert frame_index(Path(task["data"]["frame_path"]).name) == read_barcode(png)

        server.stop()
        video = write_barcode_video(fw.root / "src" / "mouse2.mp4", 200)
        os.replace(video, fw.inbox("videos") / "mouse2.mp4")
        status = fw.wait_state("videos", "mouse2")
        assert "complete" == status["state"], status
        (warning,) = status["warnings"]
        assert "did not answer" in warning and "mouse2" in warning, warning
        pending = fw.project / ".framewatch" / "label-studio"
        assert ["mouse2.json"] == [p.name for p in pending.iterdir()]
        # as a crash right after mouse1's import would have left it: sent again, never twice
        frames = [t["data"]["frame_path"] for t in made]
        (pending / "mouse1.json").write_text(json.dumps({"frames": frames, "guesses": {}}))

        server.start()
        data = make_predictions(frames=200, errors_per_kind=1, seed=9)
        inbox = fw.inbox("inference")
        write_csv(inbox / ".mouse3.csv", data.xy, data.likelihood, scorer="lp-model")
        write_barcode_video(inbox / "mouse3", 200, width=320, height=240)
        os.replace(inbox / ".mouse3.csv", inbox / "mouse3.csv")
        status = fw.wait_state("inference", "mouse3")
        assert "complete" == status["state"] and not status.get("warnings"), status

    made = tasks(server, project)
    paths = [t["data"]["frame_path"] for t in made]
    assert 60 == len(paths) == len(set(paths))
    assert {p.split("/")[1] for p in paths} == {"mouse1", "mouse2", "mouse3"}
    assert [] == list(pending.iterdir())
    guessed = [t for t in made if t["data"]["frame_path"].startswith("labeled-data/mouse3/")]
    for task in guessed:
        (prediction,) = server.api("GET", "/api/predictions", task=task["id"])
        frame = frame_index(Path(task["data"]["frame_path"]).name)
        points = {r["value"]["keypointlabels"][0]: r["value"] for r in prediction["result"]}
        assert set(KEYPOINTS) == set(points)
        for k, name in enumerate(KEYPOINTS):  # percent of the 320x240 frame
            x, y = data.xy[frame, k]
            assert abs(points[name]["x"] - 100 * x / 320) < 1e-3
            assert abs(points[name]["y"] - 100 * y / 240) < 1e-3


def test_legacy_key_finds_or_makes_the_project_and_a_wrong_token_is_refused(
    server: Server,
) -> None:
    """Called directly (no daemon): the same push the daemon makes."""
    root = server.docroot / "direct"
    project = root / "project"
    frames = project / "labeled-data" / "cage7"
    frames.mkdir(parents=True)
    for index in (3, 8):
        cv2.imwrite(str(frames / f"img{index:08d}.png"), np.zeros((40, 60, 3), np.uint8))
    bundle = PublishedBundle("cage7", [3, 8], ["img00000003.png"], frames, [])

    def settings(token: str) -> Settings:
        (root / "token").write_text(token)
        options = LabelStudio(
            url=server.url,
            token_file="token",
            project_title="found by title",
            document_root=str(server.docroot),
        )
        return Settings(root=root, label_studio=options)

    (warning,) = ls.TARGET.publish(project, bundle, settings("not-a-real-key"))
    assert "refused the token" in warning and "cage7" in warning, warning
    assert [] == ls.TARGET.publish(project, bundle, settings(LEGACY_TOKEN))
    assert [] == ls.TARGET.publish(project, bundle, settings(LEGACY_TOKEN))  # sent again
    found = server.api("GET", "/api/projects", title="found by title")["results"]
    assert 1 == len(found)
    made = tasks(server, found[0]["id"])
    assert ["labeled-data/cage7/img00000003.png", "labeled-data/cage7/img00000008.png"] == sorted(
        t["data"]["frame_path"] for t in made
    )
