"""Configuration: built-in defaults, then a TOML file, then ``FRAMEWATCH_*`` variables.

Every section forbids unknown keys so that a typo (``setle_s``) is an error that names the
key instead of a silently ignored line.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from daemon.cron import crontab_trigger
from handlers.options import FrameRange

CONFIG_ENV = "FRAMEWATCH_CONFIG"
LOCAL_CONFIG = Path("framewatch.toml")
DEFAULT_ROOT = Path("./framewatch-data")


class ConfigError(Exception):
    """A configuration that cannot be used; the CLI turns it into exit status 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Folders(_Section):
    """Where things live; relative paths are under ``root``."""

    videos: Path = Path("inbox/videos")
    zips: Path = Path("inbox/zips")
    inference: Path = Path("inbox/inference")
    framelists: Path = Path("inbox/framelists")
    project: Path = Path("project")
    status: Path = Path("status")
    failed: Path = Path("failed")
    work: Path = Path("work")
    archive: Path = Path("archive")


class Watch(_Section):
    mode: Literal["auto", "native", "polling"] = "auto"
    poll_interval_s: float = Field(10.0, gt=0)
    settle_s: float = Field(30.0, ge=0)


class Extract(_Section):
    frames_per_video: int = Field(20, ge=1)
    frame_range: FrameRange = (0.0, 1.0)
    context_frames: int = Field(2, ge=0)


class Inference(_Section):
    """How model outputs are judged: which keypoints count as uncertain or as outliers."""

    likelihood_threshold: float = Field(0.9, ge=0)
    z_threshold: float = Field(3.0, gt=0)
    pca_variance: float = Field(0.99, gt=0, le=1)
    min_spacing_frames: int = Field(4, ge=0)


class Zips(_Section):
    """Limits for one zip of frames, enforced on the bytes really unpacked (headers can lie).

    The defaults fit a few thousand full-HD PNGs (2-4 MB each); a zip bomb passes them by far.
    """

    max_uncompressed_bytes: int = Field(20_000_000_000, gt=0)
    max_files: int = Field(10_000, gt=0)
    max_ratio: float = Field(100.0, gt=1)


class Workers(_Section):
    max_workers: int = Field(2, ge=1)
    stop_grace_s: float = Field(20.0, ge=0)
    # The name claims go by (work/claims/<host>.<pid>/); empty means the machine's host name.
    # Two machines on one share must differ here.
    host: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$")
    # Where items run: "local" processes on this machine, or "dask": a Dask cluster whose
    # workers see the share at the same paths (README, "Running on a Dask cluster").
    executor: Literal["local", "dask"] = "local"
    scheduler_address: str = ""
    # How long `framewatch once` waits for a cluster that takes no work (no scheduler, no
    # workers) before it leaves the rest for the next pass and exits 1; `run` waits for ever.
    cluster_wait_s: float = Field(600.0, gt=0)
    # How a local worker process starts: forked from a server that imported the libraries once
    # ("forkserver"), or a fresh interpreter that imports them for each item ("spawn", slower).
    start_method: Literal["forkserver", "spawn"] = "forkserver"

    @field_validator("executor")
    @classmethod
    def _dask_is_installed(cls, value: str) -> str:
        if value == "dask":
            try:
                import distributed  # noqa: F401
            except ImportError as exc:
                raise ValueError(
                    f"the dask executor needs the dask extra ({exc}); install it with "
                    "pip install 'framewatch[dask]'"
                ) from None
        return value

    @field_validator("scheduler_address")
    @classmethod
    def _dask_has_address(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("executor") == "dask" and not value.strip():
            raise ValueError(
                "executor = 'dask' needs the scheduler's address, e.g. 'tcp://scheduler.example:8786'"
            )
        return value


class Retry(_Section):
    """Passing errors (full disk, lost share, permissions): wait, then try the item again."""

    first_delay_s: float = Field(10.0, gt=0)
    max_delay_s: float = Field(600.0, gt=0)
    jitter: float = Field(0.25, ge=0, le=1)
    max_attempts: int = Field(8, ge=1)
    sweep_rounds: int = Field(3, ge=0)


class Sweep(_Section):
    """The nightly sweep: rescan, retry what failed for a passing reason, prune, summarize."""

    enabled: bool = True
    cron: str = "30 3 * * *"
    misfire_grace_s: float = Field(6 * 3600.0, gt=0)
    prune_after_h: float = Field(72.0, gt=0)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        crontab_trigger(value)  # raises ValueError naming what is wrong
        return value


class Sessions(_Section):
    """Multi-view sessions: ``<session>_<view>.<ext>`` files of one session are taken together."""

    # The camera names; empty = the view_names of a Lightning Pose app project's project.yaml.
    view_names: list[str] = []
    # A session still missing views this long after its first view was seen fails, naming
    # them (its files are kept in failed/videos/); 0 = wait for ever.
    max_wait_h: float = Field(24.0, ge=0)

    @field_validator("view_names")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not re.fullmatch(r"[A-Za-z0-9.-]+", name)]
        if bad:
            raise ValueError(
                f"expected view names of letters, digits, '.' and '-' (no '_', which splits "
                f"<session>_<view>), but got {bad}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"expected distinct view names, but got {value}")
        return value


class LabelStudio(_Section):
    """A Label Studio project that gets every bundle's selected frames as tasks; off unless url.

    The token is never a key: ``token_file`` names a file holding it, else
    ``$LABEL_STUDIO_API_KEY``. A legacy key and a personal access token (a JWT) both work.
    """

    url: str = Field("", pattern=r"^(https?://\S+)?$")
    project_id: int = Field(0, ge=0)  # 0: the project titled project_title, made if missing
    project_title: str = Field("framewatch", min_length=3, max_length=50)
    token_file: str = ""
    # LOCAL_FILES_DOCUMENT_ROOT of the server, as a path both see the same; empty: the project
    document_root: str = ""
    timeout_s: float = Field(10.0, gt=0)


class Sleap(_Section):
    """``<project>/sleap/STEM.slp`` per video, its frames as suggestions (the labelers extra)."""

    enabled: bool = False

    @field_validator("enabled")
    @classmethod
    def _sleap_io_is_installed(cls, value: bool) -> bool:
        if value:
            try:
                import sleap_io  # noqa: F401
            except ImportError as exc:
                raise ValueError(
                    f"the SLEAP files need sleap-io ({exc}); install it with "
                    "pip install 'framewatch[labelers]'"
                ) from None
        return value


class _DictSource(PydanticBaseSettingsSource):
    """Feeds an already parsed TOML document to pydantic-settings, below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class Settings(BaseSettings):
    """The effective configuration of one daemon."""

    model_config = SettingsConfigDict(
        env_prefix="FRAMEWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    root: Path = DEFAULT_ROOT
    folders: Folders = Folders()
    watch: Watch = Watch()
    extract: Extract = Extract()
    inference: Inference = Inference()
    zips: Zips = Zips()
    workers: Workers = Workers()
    retry: Retry = Retry()
    sweep: Sweep = Sweep()
    sessions: Sessions = Sessions()
    label_studio: LabelStudio = LabelStudio()
    sleap: Sleap = Sleap()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives through init_settings (see load_settings); the environment wins over it.
        return (env_settings, init_settings)

    def folder(self, name: str) -> Path:
        """Absolute path of the folder ``name`` of the ``[folders]`` section."""
        return (self.root / getattr(self.folders, name)).absolute()


def find_config_file(explicit: str | None) -> Path | None:
    """Pick the config file in the contract's order: -c, $FRAMEWATCH_CONFIG, ./framewatch.toml."""
    named = explicit or os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            source = "-c" if explicit else CONFIG_ENV
            raise ConfigError(f"config file {path} (from {source}) does not exist or is not a file")
        return path
    return LOCAL_CONFIG if LOCAL_CONFIG.is_file() else None


def load_settings(explicit: str | None = None) -> tuple[Settings, Path | None]:
    """Load the effective settings and say which file they came from.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown or has a bad value.
    """
    path = find_config_file(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        return Settings(**data), path
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from exc


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One line per bad key, naming it the way the user wrote it."""
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env = "FRAMEWATCH_" + "__".join(str(part).upper() for part in error["loc"][:2])
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (set in the file or as {env})")
        else:
            lines.append(f"  {key} = {error.get('input')!r}: {error['msg']} (or check {env})")
    return "\n".join(lines)
