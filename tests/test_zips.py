"""Zip drops through a real daemon: the strict frames-zip format, checked in full and unpacked.

Every case of tests/zipcases.py is dropped into one running daemon (``framewatch run``) and
checked on its own; the size and file-count limits go through ``framewatch once`` with small
limits. The byte budget that enforces the limits while unpacking is also tested on its own.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handlers.bundle import frame_index
from handlers.zips.checks import suggest_frame_name
from handlers.zips.unpack import CHUNK_BYTES, ByteBudget, Limits, ZipLimitError, copy_entry
from tests.harness import Framewatch
from tests.zipcases import ONCE_LIMITS, ZipCase, daemon_cases, noise_png, once_cases, png, write_zip

DONE_MESSAGE = "Proceed to the next tab to label frames."


@dataclass
class Run:
    """A daemon root after every case went through it."""

    fw: Framewatch
    statuses: dict[str, dict[str, Any]]
    originals: dict[str, bytes]
    once_codes: tuple[int, ...] = ()


def plant_existing_bundle(fw: Framewatch, case: ZipCase) -> None:
    """What labeled-data/<id>/ holds before the zip arrives, for cases about existing frames."""
    if not case.existing and case.existing_csv is None:
        return
    bundle = fw.bundle(case.id)
    bundle.mkdir(parents=True)
    for index, data in case.existing.items():
        (bundle / f"img{index:08d}.png").write_bytes(data)
    if case.existing_csv is not None:
        (bundle / "selected_frames.csv").write_text(case.existing_csv)


def build_all(cases: list[ZipCase], folder: Path) -> dict[str, bytes]:
    """Build every case's files in ``folder``; the zips' bytes by case id."""
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        case.build(folder, case.id)
    return {case.id: (folder / f"{case.id}.zip").read_bytes() for case in cases}


def drop(folder: Path, inbox: Path, stem: str) -> None:
    """Move a case's files into the inbox, sidecar first, as a finished copy would appear."""
    for suffix in (".json", ".zip"):
        source = folder / f"{stem}{suffix}"
        if source.exists():
            source.rename(inbox / source.name)


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Every daemon case dropped into one ``framewatch run``, waited for to the end."""
    cases = daemon_cases()
    with Framewatch(tmp_path_factory.mktemp("zips") / "fw") as fw:
        for case in cases:
            plant_existing_bundle(fw, case)
        source = fw.root.parent / "built"
        originals = build_all(cases, source)
        fw.start()
        for case in cases:
            drop(source, fw.inbox("zips"), case.id)
        statuses = {case.id: fw.wait_state("zips", case.id, timeout=240) for case in cases}
        assert 0 == fw.stop()
        yield Run(fw, statuses, originals)


@pytest.fixture(scope="module")
def once_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """``framewatch once`` on the seed example alone, then again on zips over the limits."""
    cases = once_cases()
    with Framewatch(tmp_path_factory.mktemp("zips-once") / "fw", extra_config=ONCE_LIMITS) as fw:
        source = fw.root.parent / "built"
        originals = build_all(cases, source)
        codes = []
        for batch in (cases[:1], cases[1:]):
            for case in batch:
                drop(source, fw.inbox("zips"), case.id)
            result = fw.once()
            codes.append(result.returncode)
        statuses = {case.id: fw.status("zips", case.id) or {} for case in cases}
        yield Run(fw, statuses, originals, tuple(codes))


def bundle_files(folder: Path) -> dict[str, bytes]:
    return (
        {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
        if folder.is_dir()
        else {}
    )


def check_case(run: Run, case: ZipCase) -> None:
    """The status, the kept zip and labeled-data/<id>/ are what ``case`` says."""
    fw, status = run.fw, run.statuses[case.id]
    assert case.state == status["state"], status
    for words in case.message:
        assert words in status["message"], status["message"]
    bundle = fw.bundle(case.id)
    if case.state == "complete":
        assert DONE_MESSAGE == status["message"]
        assert (
            run.originals[case.id] == (fw.root / "archive" / "zips" / f"{case.id}.zip").read_bytes()
        )
        assert not (fw.failed("zips") / f"{case.id}.zip").exists()
        *warnings, no_video = status["warnings"]
        # No recording is in project/videos/, so the frames could not be compared with one.
        assert no_video.startswith("the frames could not be checked against a video"), no_video
        assert len(case.warnings) == len(warnings), status["warnings"]
        for words, warning in zip(case.warnings, warnings, strict=True):
            assert warning.startswith(words), warning
        frames = {f"img{i:08d}.png": case.existing.get(i, png(i)) for i in case.bundle}
        published = bundle_files(bundle)
        assert frames == {
            name: data for name, data in published.items() if frame_index(name) is not None
        }
        sheets = [name for name in published if name.startswith("contact_sheet")]
        assert (1 if case.selected else 0) == len(sheets), sorted(published)
        expected_csv = "".join(f"img{i:08d}.png\n" for i in case.selected)
        assert expected_csv == published["selected_frames.csv"].decode()
        earlier = [
            name
            for name in published
            if name.startswith("selected_frames.") and name != "selected_frames.csv"
        ]
        assert (1 if case.existing_csv else 0) == len(earlier)
        if case.existing_csv:
            assert case.existing_csv.encode() == published[earlier[0]]
    else:
        assert run.originals[case.id] == (fw.failed("zips") / f"{case.id}.zip").read_bytes()
        before = {f"img{i:08d}.png": data for i, data in case.existing.items()}
        if case.existing_csv is not None:
            before["selected_frames.csv"] = case.existing_csv.encode()
        assert before == bundle_files(bundle)


@pytest.mark.parametrize("case", daemon_cases(), ids=lambda case: case.id)
def test_zip_drop_through_running_daemon(daemon_run: Run, case: ZipCase) -> None:
    """A zip dropped into ``framewatch run`` ends as the case says: bundle, status, kept zip."""
    check_case(daemon_run, case)


def test_nothing_unpacked_outside_staging(daemon_run: Run) -> None:
    """Zip-slip and absolute entries leave no file anywhere outside the daemon's own folders."""
    planted = [path for path in daemon_run.fw.root.parent.rglob("*evil*")]
    assert [] == planted
    assert not Path("/tmp/evil_abs.png").exists()


def test_failed_zips_are_all_in_failed_folder(daemon_run: Run) -> None:
    """Every failed zip, and only those, is kept in failed/zips/ (sidecars with their zip)."""
    failed = sorted(case.id for case in daemon_cases() if case.state == "failed")
    kept = sorted(path.stem for path in daemon_run.fw.failed("zips").glob("*.zip"))
    assert failed == kept
    assert [] == sorted(path.name for path in daemon_run.fw.inbox("zips").iterdir())


@pytest.mark.parametrize("case", once_cases(), ids=lambda case: case.id)
def test_zip_drop_through_once(once_run: Run, case: ZipCase) -> None:
    """``framewatch once`` with small [zips] limits completes or refuses each zip as expected."""
    check_case(once_run, case)


def test_once_exit_status(once_run: Run) -> None:
    """``framewatch once`` exits 0 for the seed example alone and 1 when a zip failed."""
    assert (0, 1) == once_run.once_codes


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("img143.png", "img00000143.png"),
        ("IMG00001156.PNG", "img00001156.png"),
        ("frame_34567.png", "img00034567.png"),
        ("143.png", "img00000143.png"),
        ("img123456789.png", None),
        ("mouse.png", None),
    ],
    ids=["short", "upper-case", "other-prefix", "bare-number", "too-many-digits", "no-number"],
)
def test_suggested_frame_name(name: str, suggested: str | None) -> None:
    """A misnamed PNG gets the img%08d.png name of its last number, when that fits 8 digits."""
    assert suggested == suggest_frame_name(name)


def test_budget_stops_unpacking_at_the_limit(tmp_path: Path) -> None:
    """The byte limit is enforced on real bytes while unpacking: nothing past it is written."""
    path = tmp_path / "big.zip"
    write_zip(path, [("img00000001.png", noise_png(1, 2000, 1000) * 2)])
    limit = 3 * CHUNK_BYTES + 123
    budget = ByteBudget(Limits(max_bytes=limit, max_files=10, max_ratio=100), path.stat().st_size)
    target = tmp_path / "out.png"
    with (
        zipfile.ZipFile(path) as archive,
        pytest.raises(ZipLimitError, match="max_uncompressed_bytes"),
    ):
        copy_entry(archive, archive.infolist()[0], target, budget)
    assert 3 * CHUNK_BYTES == target.stat().st_size


def test_zip_bundle_has_a_contact_sheet_of_the_picked_frames(tmp_path: Path) -> None:
    """The seed's zip gets contact_sheet.png: one 200-pixel tile per listed frame (not the
    context frames), each tile the frame it is labelled with."""
    import cv2

    from handlers.outcome import ignore_progress
    from handlers.sheet import LABEL_HEIGHT, TILE_WIDTH
    from handlers.zips import ZipOptions, handle_zip
    from tests.media import read_barcode
    from tests.zipcases import SEED_SELECTED, seed_members

    zip_path = tmp_path / "seed.zip"
    write_zip(zip_path, seed_members())
    staging = tmp_path / "staging"
    staging.mkdir()
    options = ZipOptions(
        max_uncompressed_bytes=10**8,
        max_files=100,
        max_ratio=1000,
        context_frames=2,
        existing_bundle=tmp_path / "labeled-data" / "seed",
    )
    result = handle_zip([zip_path], options, staging, ignore_progress)
    assert "contact_sheet.png" in result.files
    sheet = cv2.imread(str(staging / "contact_sheet.png"))
    tile_h = round(120 * TILE_WIDTH / 160)
    assert (tile_h + LABEL_HEIGHT, len(SEED_SELECTED) * TILE_WIDTH) == sheet.shape[:2]
    tiles = [sheet[:tile_h, n * TILE_WIDTH : (n + 1) * TILE_WIDTH] for n in range(3)]
    shown = [
        read_barcode(cv2.resize(tile, (160, 120), interpolation=cv2.INTER_NEAREST))
        for tile in tiles
    ]
    assert sorted(SEED_SELECTED) == shown
