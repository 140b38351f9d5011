"""The kinds of arrival: where each comes in, how its files group, which handler runs it.

Adding a kind means adding one ``Kind`` to ``KINDS``; the daemon has no other list of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon.config import Settings
from daemon.inbox import Arrival, visible_files, visible_folders
from daemon.labelers import taken_frames
from handlers.framelists import FRAMELIST_SUFFIXES, FrameListOptions
from handlers.frames import VIDEO_SUFFIXES
from handlers.inference import InferenceOptions, belongs_to, file_role, member_stem
from handlers.outcome import InputError
from handlers.video import VideoOptions
from handlers.zips import ZIP_SUFFIXES, ZipOptions

SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 64 * 1024  # options fit in a few hundred bytes; more is not a sidecar
MAX_SIDECAR_NESTING = 16  # options nest a level or two; deeper is no sidecar (and breaks parsers)
MAX_QUOTED_CHARS = 80  # a value quoted in a message, so a huge one cannot flood status and log


def quote(value: Any) -> str:
    """``repr(value)``, cut to MAX_QUOTED_CHARS with an ellipsis."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


@dataclass(frozen=True)
class Kind:
    """One kind of arrival.

    Attributes:
        name: its inbox key in ``[folders]`` and its folder under status/ and failed/.
        find_arrivals: groups the files of its inbox into arrivals.
        handler: ``module:function`` of the handler, imported in the worker process.
        build_options: the handler's options from the config, the sidecar and the bundle
            folder as it is now.
        keep_folder: where the input files go once the bundle is published.
    """

    name: str
    find_arrivals: Callable[[str, Path], list[Arrival]]
    handler: str
    build_options: Callable[[Settings, dict[str, Any], Path], BaseModel]
    keep_folder: Callable[[Settings, Path], Path]


def arrivals_by_suffix(suffixes: frozenset[str]) -> Callable[[str, Path], list[Arrival]]:
    """Arrivals made of one file with one of ``suffixes`` plus its ``STEM.json`` sidecar."""

    def find(kind: str, inbox: Path) -> list[Arrival]:
        files = visible_files(inbox)
        found = []
        for path in files:
            if path.suffix.lower() in suffixes:
                # STEM.json, or STEM.JSON beside STEM.MP4 (a Windows rig's upper case)
                extra = [
                    p for p in files if p.stem == path.stem and p.suffix.lower() == SIDECAR_SUFFIX
                ]
                found.append(Arrival(kind, path.stem, (path, *extra[:1])))
        return found

    return find


def arrivals_with_video(suffixes: frozenset[str]) -> Callable[[str, Path], list[Arrival]]:
    """Like ``arrivals_by_suffix``, and the video named after the file when dropped beside it
    (a zip's frames are checked against it; a frame list's frames are exported from it). A
    video that comes while the file settles joins the arrival, which then settles again with
    it."""

    def find(kind: str, inbox: Path) -> list[Arrival]:
        files = visible_files(inbox)
        found = []
        for path in files:
            if path.suffix.lower() in suffixes:
                extra = [
                    other
                    for other in files
                    if other.stem == path.stem
                    and other != path
                    and other.suffix.lower() in (*VIDEO_SUFFIXES, SIDECAR_SUFFIX)
                ]
                found.append(Arrival(kind, path.stem, (path, *extra)))
        return found

    return find


def read_sidecar(files: list[Path]) -> dict[str, Any]:
    """The options object of a ``STEM.json`` sidecar among ``files``, or {} when there is none.

    Raises:
        InputError: the sidecar is not a JSON object.
    """
    sidecars = [path for path in files if path.suffix.lower() == SIDECAR_SUFFIX]
    # A folder drop (inference/STEM/) carries its sidecar inside: STEM/STEM.json.
    sidecars += [
        inside
        for path in files
        if path.is_dir() and (inside := path / f"{path.name}{SIDECAR_SUFFIX}").is_file()
    ]
    if not sidecars:
        return {}
    path = sidecars[0]
    size = path.stat().st_size
    if size > MAX_SIDECAR_BYTES:
        raise InputError(
            [
                f"sidecar {path.name} is {size} bytes, more than the {MAX_SIDECAR_BYTES} a "
                'sidecar may have; it should hold only options like {"frames_per_video": 50}'
            ]
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        too_deep = nesting(data) > MAX_SIDECAR_NESTING
    except (UnicodeDecodeError, ValueError) as exc:
        problem = f"sidecar {path.name} is not valid JSON ({quote(str(exc))}); fix or remove it"
        raise InputError([problem]) from None
    except RecursionError:  # nested beyond what the parser follows
        too_deep = True
    if too_deep:
        raise InputError(
            [
                f"sidecar {path.name} is nested more than {MAX_SIDECAR_NESTING} levels deep; "
                'a sidecar holds only flat options like {"frames_per_video": 50}'
            ]
        )
    if not isinstance(data, dict):
        raise InputError(
            [
                f'sidecar {path.name}: expected a JSON object like {{"frames_per_video": 50}}, '
                f"but got {type(data).__name__}"
            ]
        )
    return data


def nesting(data: Any) -> int:
    """How deeply lists and objects nest in ``data`` (0 for a plain value), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_SIDECAR_NESTING and isinstance(value, dict | list):
            children = value.values() if isinstance(value, dict) else value
            stack += [(child, depth + 1) for child in children]
    return deepest


def validate_options(
    model: type[BaseModel], defaults: dict[str, Any], sidecar: dict[str, Any], allowed: set[str]
) -> BaseModel:
    """Options from config ``defaults`` overridden by the sidecar, with every problem named.

    Raises:
        InputError: the sidecar has keys outside ``allowed`` or values the model refuses.
    """
    problems = [
        f"sidecar key {quote(key)} is not an option here; use one of {', '.join(sorted(allowed))}"
        for key in sidecar
        if key not in allowed
    ]
    merged = {**defaults, **{k: v for k, v in sidecar.items() if k in allowed}}
    try:
        options = model(**merged)
    except ValidationError as exc:
        problems += [
            f"sidecar {quote('.'.join(str(p) for p in err['loc']))} = {quote(err.get('input'))}: "
            f"{err['msg']}"
            for err in exc.errors()
        ]
    if problems:
        raise InputError(problems)
    return options


def video_options(settings: Settings, sidecar: dict[str, Any], bundle: Path) -> BaseModel:
    """Video options: [extract], then the sidecar; frames already labeled are not chosen again."""
    taken = taken_frames(bundle.parent.parent, bundle.name)
    defaults = {**settings.extract.model_dump(), "exclude_frames": taken}
    return validate_options(
        VideoOptions, defaults, sidecar, {"frames_per_video", "frame_range", "context_frames"}
    )


def keep_videos_in_project(kind: str) -> Callable[[Settings, Path], Path]:
    """Where a kind's done inputs go: a video file to ``<project>/videos/``, where labeling
    tools and later drops look for it; everything else to ``<archive>/<kind>/``."""

    def keep_folder(settings: Settings, path: Path) -> Path:
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            return settings.folder("project") / "videos"
        return settings.folder("archive") / kind

    return keep_folder


def zip_options(settings: Settings, sidecar: dict[str, Any], bundle: Path) -> BaseModel:
    """Zip options: the [zips] limits and [extract] context_frames (a sidecar may set that),
    plus the videos named after the zip in ``<project>/videos/`` to compare its frames with."""
    videos = settings.folder("project") / "videos"
    defaults = {
        **settings.zips.model_dump(),
        "context_frames": settings.extract.context_frames,
        "existing_bundle": bundle,
        "video_candidates": project_videos(videos, bundle.name),
        "video_folder": str(videos),
    }
    return validate_options(ZipOptions, defaults, sidecar, {"context_frames"})


# ----- inference: a model's outputs for one video ------------------------------------------

INFERENCE_SIDECAR_KEYS = {
    "frames_per_video",
    "frame_range",
    "context_frames",
    "likelihood_threshold",
    "z_threshold",
    "pca_variance",
    "min_spacing_frames",
}


def inference_arrivals(kind: str, inbox: Path) -> list[Arrival]:
    """Model outputs: a folder ``STEM/`` holding them, or loose files grouped by stem.

    A drop becomes an arrival only once it holds a predictions CSV; its first entry is that
    CSV (or the folder), which decides the claim, and every file of the group settles with it.
    """
    found = [folder_arrival(kind, folder) for folder in visible_folders(inbox)]
    return [a for a in found if a is not None] + loose_arrivals(kind, visible_files(inbox))


def folder_arrival(kind: str, folder: Path) -> Arrival | None:
    """The folder drop ``STEM/``, once it holds predictions for ``STEM``."""
    for path in visible_files(folder):
        role = file_role(path.name)
        if role is not None and role[0] == "predictions" and belongs_to(role[1], folder.name):
            return Arrival(kind, folder.name, (folder,))
    return None


def loose_arrivals(kind: str, files: list[Path]) -> list[Arrival]:
    """Loose files grouped by stem; a group with a predictions CSV is an arrival."""
    roles = {path: role for path in files if (role := file_role(path.name)) is not None}
    # A video or sidecar names its stem whole, so STEM.1.csv beside STEM.1.mp4 is not a member.
    whole = {base for role, base in roles.values() if role in ("video", "sidecar")}
    groups: dict[str, list[Path]] = {}
    for path, (_, base) in roles.items():
        groups.setdefault(base if base in whole else member_stem(base), []).append(path)
    found = []
    for stem, paths in sorted(groups.items()):
        predictions = [p for p in paths if roles[p][0] == "predictions"]
        if predictions:
            rest = [p for p in paths if p != predictions[0]]
            found.append(Arrival(kind, stem, (predictions[0], *rest)))
    return found


def inference_options(settings: Settings, sidecar: dict[str, Any], bundle: Path) -> BaseModel:
    """Options: [extract] and [inference], then the sidecar; plus what the handler needs
    from the project: frames already labeled and the videos already in ``<project>/videos/``."""
    stem = bundle.name
    videos = settings.folder("project") / "videos"
    extract = settings.extract
    defaults = {
        "frames_per_video": extract.frames_per_video,
        "frame_range": extract.frame_range,
        "context_frames": extract.context_frames,
        **settings.inference.model_dump(),
        "stem": stem,
        "exclude_frames": taken_frames(bundle.parent.parent, bundle.name),
        "video_candidates": project_videos(videos, stem),
        "video_folder": str(videos),
    }
    return validate_options(InferenceOptions, defaults, sidecar, INFERENCE_SIDECAR_KEYS)


def project_videos(folder: Path, stem: str) -> tuple[Path, ...]:
    """The videos named ``STEM.<video suffix>`` in ``folder`` (any case of the suffix)."""
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in VIDEO_SUFFIXES)
    )


# ----- frame lists: frames a lab picked, by number or time ------------------------------


def framelist_options(settings: Settings, sidecar: dict[str, Any], bundle: Path) -> BaseModel:
    """[extract] context_frames (a sidecar may set it) and the videos named after the list in
    ``<project>/videos/``."""
    videos = settings.folder("project") / "videos"
    defaults = {
        "context_frames": settings.extract.context_frames,
        "video_candidates": project_videos(videos, bundle.name),
        "video_folder": str(videos),
    }
    return validate_options(FrameListOptions, defaults, sidecar, {"context_frames"})


KINDS: dict[str, Kind] = {
    "videos": Kind(
        name="videos",
        find_arrivals=arrivals_by_suffix(VIDEO_SUFFIXES),
        handler="handlers.video.handler:handle_video",
        build_options=video_options,
        keep_folder=keep_videos_in_project("videos"),
    ),
    "zips": Kind(
        name="zips",
        find_arrivals=arrivals_with_video(ZIP_SUFFIXES),
        handler="handlers.zips.handler:handle_zip",
        build_options=zip_options,
        keep_folder=keep_videos_in_project("zips"),
    ),
    "inference": Kind(
        name="inference",
        find_arrivals=inference_arrivals,
        handler="handlers.inference.handler:handle_inference",
        build_options=inference_options,
        keep_folder=keep_videos_in_project("inference"),
    ),
    "framelists": Kind(
        name="framelists",
        find_arrivals=arrivals_with_video(FRAMELIST_SUFFIXES),
        handler="handlers.framelists.handler:handle_framelist",
        build_options=framelist_options,
        keep_folder=keep_videos_in_project("framelists"),
    ),
}
