"""Label Studio: each published bundle's selected frames become tasks of one project.

A bundle's frames are first written to a pending file (``<project>/.framewatch/label-studio/
STEM.json``), then pushed; the file goes only once the server took them. A server that is down
or refuses the token leaves the file there, and every later bundle and the nightly sweep push
it again. Exactly one task per frame: before importing, the project's tasks are listed and a
frame whose image URL is already a task is left out, so a push that was cut off after the
import (a crash, a lost answer) or a bundle sent again adds nothing twice.

Images are served by Label Studio's local-files serving (``LOCAL_FILES_SERVING_ENABLED``,
``LOCAL_FILES_DOCUMENT_ROOT``); the project gets a local storage on ``labeled-data/`` (never
synced: it only grants the right to serve those files), and each task's image is
``/data/local-files/?d=<path under the document root>``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import struct
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from daemon.atomic import read_json, write_json_atomic
from daemon.config import LabelStudio as Options
from daemon.config import Settings
from daemon.labelers import lightning_pose

PENDING_DIR = Path(".framewatch") / "label-studio"
TOKEN_ENV = "LABEL_STUDIO_API_KEY"
PAGE_SIZE = 100


class LabelStudioError(Exception):
    """Label Studio could not take the frames; the message says why in words a user can act on."""


# ----- the server ---------------------------------------------------------------------------


@dataclass
class Client:
    """Calls to one server with one ``Authorization`` header."""

    url: str
    authorization: str
    timeout_s: float

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """One JSON request; its decoded answer (None when empty)."""
        return call(self.url, method, path, body, self.authorization, self.timeout_s, query)


def call(
    url: str,
    method: str,
    path: str,
    body: Any,
    authorization: str,
    timeout_s: float,
    query: dict[str, Any] | None = None,
) -> Any:
    """One JSON request to the server.

    Raises:
        LabelStudioError: the server did not answer, refused the token, or answered an error.
    """
    address = url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(address, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        if exc.code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {url} refused the token (HTTP {exc.code}: {detail}); put a "
                f"valid access token or legacy API key in token_file or ${TOKEN_ENV}"
            ) from None
        raise LabelStudioError(
            f"Label Studio at {url} answered HTTP {exc.code} to {method} {path}: {detail}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LabelStudioError(f"Label Studio at {url} did not answer ({reason})") from None
    return json.loads(text) if text.strip() else None


def read_token(options: Options, root: Path) -> str:
    """The API token: ``token_file`` (relative to ``root``), else ``$LABEL_STUDIO_API_KEY``."""
    if options.token_file:
        path = root / options.token_file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LabelStudioError(
                f"cannot read the Label Studio token_file {path} ({exc.strerror}); "
                "create it with the token, readable by the daemon's user"
            ) from None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise LabelStudioError(
            f"no Label Studio token: set token_file in [label_studio] or ${TOKEN_ENV}"
        )
    return token


def is_jwt(token: str) -> bool:
    """A personal access token (a JWT refresh token: three dot-separated parts), not a key."""
    return token.count(".") == 2 and token.startswith("eyJ")


def connect(options: Options, root: Path) -> Client:
    """A client with a working header.

    A personal access token is exchanged at ``/api/token/refresh/`` for a short-lived access
    token sent as ``Bearer``; a legacy key is sent as ``Token`` (new organizations turn those
    off; the server's refusal then says so).
    """
    token = read_token(options, root)
    if not is_jwt(token):
        return Client(options.url, f"Token {token}", options.timeout_s)
    answer = call(
        options.url, "POST", "/api/token/refresh/", {"refresh": token}, "", options.timeout_s
    )
    return Client(options.url, f"Bearer {answer['access']}", options.timeout_s)


# ----- the project --------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """What a push needs of the Label Studio project."""

    id: int
    data_key: str  # the task field the image is read from ($image)
    control: str  # the KeyPointLabels tag that predictions fill, "" when there is none
    to_name: str
    labels: tuple[str, ...]


def label_config(keypoints: list[str]) -> str:
    """A keypoint labeling interface for a new project."""
    labels = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in keypoints)
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true" zoomControl="true"/>\n'
        '  <KeyPointLabels name="keypoints" toName="image" strokeWidth="2">\n'
        f"{labels}"
        "  </KeyPointLabels>\n"
        "</View>\n"
    )


def find_project(client: Client, options: Options, keypoints: list[str]) -> Project:
    """``project_id``'s project, else the one titled ``project_title``, made when missing."""
    if options.project_id:
        return describe(client.call("GET", f"/api/projects/{options.project_id}"))
    found = client.call("GET", "/api/projects", title=options.project_title, page_size=1000)
    for entry in found.get("results", []) if isinstance(found, dict) else found:
        if entry.get("title") == options.project_title:
            return describe(client.call("GET", f"/api/projects/{entry['id']}"))
    made = client.call(
        "POST",
        "/api/projects",
        {"title": options.project_title, "label_config": label_config(keypoints or ["point"])},
    )
    return describe(made)


def describe(project: dict[str, Any]) -> Project:
    """The image field and keypoint control of a project, from its parsed labeling config."""
    parsed = project.get("parsed_label_config") or {}
    for name, control in parsed.items():
        if control.get("type") == "KeyPointLabels":
            inputs = control.get("inputs") or [{}]
            return Project(
                int(project["id"]),
                inputs[0].get("value", "image"),
                name,
                (control.get("to_name") or ["image"])[0],
                tuple(control.get("labels") or ()),
            )
    images = [c for c in parsed.values() if c.get("inputs")]
    key = images[0]["inputs"][0].get("value", "image") if images else "image"
    return Project(int(project["id"]), key, "", "", ())


def ensure_storage(client: Client, project: Project, folder: Path) -> None:
    """A local storage on ``folder`` in the project, so the server may serve its files."""
    storages = client.call("GET", "/api/storages/localfiles", project=project.id)
    if any(Path(s.get("path", "")) == folder for s in storages or []):
        return
    client.call(
        "POST",
        "/api/storages/localfiles",
        {
            "project": project.id,
            "title": "framewatch frames",
            "path": str(folder),
            "use_blob_urls": True,
            "regex_filter": "",
        },
    )


def task_images(client: Client, project: Project) -> set[str]:
    """The image URL of every task of the project."""
    images: set[str] = set()
    page = 1
    while True:
        try:
            answer = client.call(
                "GET", "/api/tasks", project=project.id, page=page, page_size=PAGE_SIZE
            )
        except LabelStudioError as exc:
            if "HTTP 404" in str(exc):  # past the last page
                return images
            raise
        tasks = answer.get("tasks", []) if isinstance(answer, dict) else answer
        images |= {str(t.get("data", {}).get(project.data_key)) for t in tasks}
        if len(tasks) < PAGE_SIZE:
            return images
        page += 1


# ----- tasks --------------------------------------------------------------------------------


def image_url(frame: Path, document_root: Path) -> str:
    """The URL Label Studio serves ``frame`` at (its path under the document root)."""
    relative = frame.resolve().relative_to(document_root.resolve()).as_posix()
    return f"/data/local-files/?d={urllib.parse.quote(relative)}"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header, without decoding it."""
    with path.open("rb") as handle:
        head = handle.read(24)
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def prediction(
    project: Project, guess: dict[str, Any], size: tuple[int, int]
) -> dict[str, Any] | None:
    """The model's guess as a Label Studio prediction (percent coordinates), when it fits."""
    if not project.control:
        return None
    names = {label.lower(): label for label in project.labels}
    width, height = size
    result = []
    for number, point in enumerate(guess["predictions"]):
        label = names.get(point["keypoint_name"].lower())
        if label is None:
            continue
        result.append(
            {
                "id": f"fw{number}",
                "from_name": project.control,
                "to_name": project.to_name,
                "type": "keypointlabels",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {
                    "x": 100.0 * point["x"] / width,
                    "y": 100.0 * point["y"] / height,
                    "width": 0.5,
                    "keypointlabels": [label],
                },
            }
        )
    return {"model_version": guess["model_name"], "result": result} if result else None


def make_tasks(
    pending: dict[str, Any], project: Project, root: Path, document_root: Path, known: set[str]
) -> list[dict[str, Any]]:
    """Tasks for the pending frames whose image is not a task yet."""
    tasks = []
    for frame in pending["frames"]:
        path = root / frame
        url = image_url(path, document_root)
        if url in known:
            continue
        task: dict[str, Any] = {"data": {project.data_key: url, "frame_path": frame}}
        guess = pending.get("guesses", {}).get(frame)
        if guess and (made := prediction(project, guess, png_size(path))):
            task["predictions"] = [made]
        tasks.append(task)
        known.add(url)
    return tasks


# ----- pending pushes -----------------------------------------------------------------------


def csv_keypoints(path: Path) -> list[str]:
    """The bodyparts of a three-header-row predictions CSV, in order."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(2), csv.reader(handle), strict=False)]
    return list(dict.fromkeys(rows[1][1:])) if len(rows) == 2 else []


def add_pending(project: Path, bundle: Any) -> Path:
    """Write (or extend) the bundle's pending file; its path."""
    path = project / PENDING_DIR / f"{bundle.stem}.json"
    pending = read_json(path) or {"frames": [], "guesses": {}}
    frames = [lightning_pose.frame_path(bundle.stem, index) for index in sorted(bundle.selected)]
    pending["frames"] = list(dict.fromkeys([*pending["frames"], *frames]))
    predictions = bundle.reports / lightning_pose.PREDICTIONS_CSV
    if lightning_pose.PREDICTIONS_CSV in bundle.files and predictions.is_file():
        scorer, guesses = lightning_pose.read_guesses(predictions, csv_keypoints(predictions))
        for frame, points in guesses.items():
            pending["guesses"][frame] = {"model_name": scorer, "predictions": points}
    write_json_atomic(path, pending)
    return path


def project_keypoints(project: Path, bundle_reports: list[Path]) -> list[str]:
    """Names for a new Label Studio project: project.yaml's, else a predictions CSV's."""
    if lightning_pose.is_app_project(project):
        with contextlib.suppress(ValueError, OSError):
            return lightning_pose.read_keypoints(project)
    for reports in bundle_reports:
        predictions = reports / lightning_pose.PREDICTIONS_CSV
        if predictions.is_file():
            return csv_keypoints(predictions)
    return []


def push_pending(project: Path, settings: Settings, reports: list[Path] | None = None) -> int:
    """Push every pending file; the number of tasks made.

    Raises:
        LabelStudioError: the server could not take them (the files stay for the next try).
    """
    options = settings.label_studio
    files = sorted((project / PENDING_DIR).glob("*.json"))
    if not files:
        return 0
    client = connect(options, settings.root)
    target = find_project(client, options, project_keypoints(project, reports or []))
    document_root = Path(options.document_root) if options.document_root else project
    ensure_storage(client, target, project / "labeled-data")
    known = task_images(client, target)
    made = 0
    for path in files:
        pending = read_json(path)
        if isinstance(pending, dict) and pending.get("frames"):
            tasks = make_tasks(pending, target, project, document_root, known)
            if tasks:
                client.call("POST", f"/api/projects/{target.id}/import", tasks)
                made += len(tasks)
        path.unlink(missing_ok=True)  # framewatch's own file, written above
    return made


class LabelStudioTarget:
    """Each published bundle's selected frames as tasks of one Label Studio project."""

    name = "Label Studio"

    def active(self, project: Path, settings: Settings) -> bool:
        return bool(settings.label_studio.url)

    def publish(self, project: Path, bundle: Any, settings: Settings) -> list[str]:
        pending = add_pending(project, bundle)
        try:
            push_pending(project, settings, [bundle.reports])
        except LabelStudioError as exc:
            waiting = sorted(p.stem for p in pending.parent.glob("*.json"))
            return [
                f"{exc}. The frames of {', '.join(waiting)} wait in "
                f"{pending.parent} and are sent with the next bundle or at the nightly sweep "
                "(the bundle itself is complete)"
            ]
        return []

    def retry(self, project: Path, settings: Settings) -> list[str]:
        """Push what is still pending (the nightly sweep); warnings."""
        if not self.active(project, settings):
            return []
        try:
            push_pending(project, settings)
        except LabelStudioError as exc:
            return [str(exc)]
        return []


TARGET = LabelStudioTarget()
