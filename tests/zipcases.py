"""Every test zip, built on the spot: the seed's example, each failure, hostile archives.

A ``ZipCase`` builds ``NAME.zip`` (and maybe a sidecar) in a folder and says what the daemon
must make of it: the final state, words the status message must hold, words the warnings
must hold, and the bundle it must publish. PNG frames are barcode frames (tests/media.py),
so every frame's content carries its own index.
"""

from __future__ import annotations

import functools
import json
import struct
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tests.media import barcode_frame

SEED_SELECTED = (143, 1156, 34567)
SEED_CSV = "img00000143.png\nimg00001156.png\nimg00034567.png\n"
LOCAL_HEADER = b"PK\x03\x04"
CENTRAL_HEADER = b"PK\x01\x02"

Member = tuple[str, bytes]


@functools.cache
def png(index: int, width: int = 160, height: int = 120) -> bytes:
    """The PNG bytes of barcode frame ``index``."""
    ok, encoded = cv2.imencode(".png", barcode_frame(index, width, height))
    assert ok
    return encoded.tobytes()


def noise_png(seed: int, width: int = 160, height: int = 120) -> bytes:
    """A PNG that does not compress: random pixels."""
    rng = np.random.default_rng(seed)
    ok, encoded = cv2.imencode(".png", rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    assert ok
    return encoded.tobytes()


def name(index: int) -> str:
    return f"img{index:08d}.png"


def with_context(selected: Sequence[int], context: int = 2) -> list[int]:
    return sorted({n for s in selected for n in range(s - context, s + context + 1) if n >= 0})


def frames(indices: Sequence[int], folder: str = "") -> list[Member]:
    return [(folder + name(i), png(i)) for i in indices]


def seed_members(folder: str = "") -> list[Member]:
    """The seed's example: frames 143, 1156 and 34567 with context, 15 PNGs plus the CSV."""
    return [
        *frames(with_context(SEED_SELECTED), folder),
        (folder + "selected_frames.csv", SEED_CSV.encode()),
    ]


def write_zip(
    path: Path,
    members: Sequence[Member | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> None:
    """Write ``members`` (name and bytes, or a ZipInfo with bytes) into the zip ``path``."""
    with zipfile.ZipFile(path, "w", compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": some cases want one
        for member in members:
            entry, data = member if isinstance(member, tuple) else (member, b"")
            archive.writestr(entry, data)


def patch_entries(path: Path, entry: str, patch: Callable[[bytearray, int, bool], None]) -> None:
    """Apply ``patch(data, header_offset, is_central)`` to both headers of ``entry``."""
    data = bytearray(path.read_bytes())
    target = entry.encode()
    for signature, name_at, central in ((LOCAL_HEADER, 30, False), (CENTRAL_HEADER, 46, True)):
        at = data.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", data, at + (26 if not central else 28))[0]
            if bytes(data[at + name_at : at + name_at + length]) == target:
                patch(data, at, central)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def mark_encrypted(path: Path, entry: str) -> None:
    """Set the 'encrypted' flag of ``entry`` (Python cannot write encrypted zips)."""

    def patch(data: bytearray, at: int, central: bool) -> None:
        flags_at = at + (8 if central else 6)
        struct.pack_into("<H", data, flags_at, struct.unpack_from("<H", data, flags_at)[0] | 1)

    patch_entries(path, entry, patch)


def understate_size(path: Path, entry: str, size: int) -> None:
    """Make both headers of ``entry`` claim an uncompressed size of ``size`` (a lying header)."""

    def patch(data: bytearray, at: int, central: bool) -> None:
        struct.pack_into("<I", data, at + (24 if central else 22), size)

    patch_entries(path, entry, patch)


def flip_byte_in(path: Path, needle: bytes) -> None:
    """Damage stored data in place: one byte inside ``needle`` changes, so its CRC fails."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    data[at + len(needle) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def symlink_info(entry: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info


def zeros_member(entry: str, size: int) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(entry)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, bytes(size)


# ----- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipCase:
    """One zip dropped into the inbox, and what must become of it.

    Attributes:
        id: the test id and the zip's stem.
        build: writes ``<folder>/<id>.zip`` (and a sidecar if the case has one).
        state: ``complete`` or ``failed``.
        message: words the status message must hold (every problem, for a failure).
        warnings: words the status warnings must hold, together.
        bundle: frames the published bundle must hold (complete cases).
        selected: frames its selected_frames.csv must list.
        existing: frames already in labeled-data/<id>/ before the zip arrives, by index ->
            bytes, plus the earlier CSV text under "csv".
    """

    id: str
    build: Callable[[Path, str], None]
    state: str
    message: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    bundle: tuple[int, ...] = ()
    selected: tuple[int, ...] = ()
    existing: dict[int, bytes] = field(default_factory=dict)
    existing_csv: str | None = None


def members_case(
    members: Callable[[], Sequence[Member | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> Callable[[Path, str], None]:
    def build(folder: Path, stem: str) -> None:
        write_zip(folder / f"{stem}.zip", members(), compression)

    return build


def then(
    build: Callable[[Path, str], None], change: Callable[[Path], None]
) -> Callable[[Path, str], None]:
    def built(folder: Path, stem: str) -> None:
        build(folder, stem)
        change(folder / f"{stem}.zip")

    return built


def not_a_zip(folder: Path, stem: str) -> None:
    (folder / f"{stem}.zip").write_text("these are not the frames you are looking for\n")


def truncated(folder: Path, stem: str) -> None:
    path = folder / f"{stem}.zip"
    write_zip(path, seed_members())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def with_bad_sidecar(folder: Path, stem: str) -> None:
    write_zip(folder / f"{stem}.zip", seed_members())
    (folder / f"{stem}.json").write_text(json.dumps({"frames_per_video": 3}))


def with_sidecar_context(folder: Path, stem: str) -> None:
    write_zip(
        folder / f"{stem}.zip",
        [*frames([10, 11, 12]), ("selected_frames.csv", b"img00000011.png\n")],
    )
    (folder / f"{stem}.json").write_text(json.dumps({"context_frames": 1}))


SEED = frozenset(with_context(SEED_SELECTED))
WINDOWS_CSV = "\ufeffimg00000143.png\r\n\r\n  img00001156.png \r\n\r\nimg00034567.png"


def daemon_cases() -> list[ZipCase]:
    """Cases for one running daemon on default limits."""
    seed = tuple(sorted(SEED))
    return [
        ZipCase(
            "seed_example",
            members_case(seed_members),
            "complete",
            bundle=seed,
            selected=SEED_SELECTED,
        ),
        ZipCase(
            "folder_zipped",
            members_case(
                lambda: [
                    zipfile.ZipInfo("subject023_session0/"),
                    *seed_members("subject023_session0/"),
                    ("subject023_session0/.DS_Store", b"\x00\x00\x00\x01Bud1"),
                    ("subject023_session0/Thumbs.db", b"\xd0\xcf\x11\xe0"),
                    ("__MACOSX/subject023_session0/._img00000143.png", b"\x00\x05\x16\x07"),
                    ("__MACOSX/._subject023_session0", b"\x00\x05\x16\x07"),
                ]
            ),
            "complete",
            bundle=seed,
            selected=SEED_SELECTED,
        ),
        ZipCase(
            "windows_csv",
            members_case(lambda: [*frames(seed), ("selected_frames.csv", WINDOWS_CSV.encode())]),
            "complete",
            bundle=seed,
            selected=SEED_SELECTED,
        ),
        ZipCase(
            "no_context",
            members_case(
                lambda: [
                    *frames([1, 0, 2, 3, 10, 500, 501]),
                    ("selected_frames.csv", b"img00000001.png\nimg00000010.png\nimg00000500.png\n"),
                ]
            ),
            "complete",
            warnings=(
                "img00000010.png comes without its context frames img00000008.png, "
                "img00000009.png, img00000011.png, img00000012.png",
                "img00000500.png comes without its context frames img00000498.png, "
                "img00000499.png, img00000502.png",
            ),
            bundle=(0, 1, 2, 3, 10, 500, 501),
            selected=(1, 10, 500),
        ),
        ZipCase(
            "sidecar_context", with_sidecar_context, "complete", bundle=(10, 11, 12), selected=(11,)
        ),
        ZipCase(
            "existing_same",
            members_case(seed_members),
            "complete",
            bundle=(*seed, 7),
            selected=SEED_SELECTED,
            existing={143: png(143), 7: png(7)},
            existing_csv="img00000007.png\n",
        ),
        ZipCase(
            "existing_different",
            members_case(seed_members),
            "failed",
            message=(
                "img00000143.png is already in labeled-data/existing_different/ with different",
                "never replaces a frame",
            ),
            existing={143: png(9999), 145: png(145)},
            existing_csv="img00009999.png\n",
        ),
        ZipCase("not_a_zip", not_a_zip, "failed", message=("not_a_zip.zip is not a zip archive",)),
        ZipCase(
            "truncated",
            truncated,
            "failed",
            message=("truncated.zip is not a zip archive, or it is damaged or cut short",),
        ),
        ZipCase(
            "bad_crc",
            then(
                members_case(seed_members, zipfile.ZIP_STORED),
                lambda p: flip_byte_in(p, png(1156)[100:200]),
            ),
            "failed",
            message=("img00001156.png is damaged: its checksum does not match (bad CRC)",),
        ),
        ZipCase(
            "encrypted",
            then(members_case(seed_members), lambda p: mark_encrypted(p, "img00000144.png")),
            "failed",
            message=("img00000144.png is encrypted (password-protected)",),
        ),
        ZipCase(
            "misnamed",
            members_case(
                lambda: [
                    ("img143.png", png(143)),
                    ("IMG00001156.PNG", png(1156)),
                    ("frame_34567.png", png(34567)),
                    ("img00000145.jpg", b"\xff\xd8\xff\xe0JFIF"),
                    ("mouse.png", png(1)),
                    ("notes.txt", b"camera 2"),
                    ("selected_frames.csv", b"img00000144.png\n"),
                    *frames([144]),
                ]
            ),
            "failed",
            message=(
                "img143.png should be named img00000143.png",
                "IMG00001156.PNG should be named img00001156.png",
                "frame_34567.png should be named img00034567.png",
                "img00000145.jpg is a JPEG image; expected PNG frames",
                "mouse.png is not named like a frame",
                "notes.txt is not part of a frames zip",
            ),
        ),
        ZipCase(
            "no_csv",
            members_case(lambda: frames(seed)),
            "failed",
            message=("the zip has no selected_frames.csv",),
        ),
        ZipCase(
            "csv_lines",
            members_case(
                lambda: [
                    *frames(seed),
                    (
                        "selected_frames.csv",
                        (
                            b"filename\nimg00000143.png\nimg00000143.png\nimg00009999.png\nimg1156.png\n"
                            b"labeled-data/x/img00034567.png\n"
                        ),
                    ),
                ]
            ),
            "failed",
            message=(
                "selected_frames.csv line 1: expected a frame file name like img00000143.png, "
                "but got 'filename'",
                "selected_frames.csv line 3 repeats img00000143.png (already on line 2)",
                "selected_frames.csv line 4 names img00009999.png, but the zip has no "
                "img00009999.png",
                "selected_frames.csv line 5: 'img1156.png' should be img00001156.png",
                "line 6: expected just the file name img00034567.png",
            ),
        ),
        ZipCase(
            "empty_csv",
            members_case(lambda: [*frames(seed), ("selected_frames.csv", b"\r\n\r\n")]),
            "failed",
            message=("selected_frames.csv lists no frames",),
        ),
        ZipCase(
            "bad_pngs",
            members_case(
                lambda: [
                    *frames([i for i in seed if i not in (144, 145, 1155)]),
                    ("img00000144.png", png(144)[: len(png(144)) // 2]),
                    ("img00000145.png", png(145, 80, 60)),
                    ("img00001155.png", b"GIF89a this is not a png"),
                    ("selected_frames.csv", SEED_CSV.encode()),
                ]
            ),
            "failed",
            message=(
                "img00000144.png does not decode as a PNG image",
                "img00000145.png is 80x60 pixels, but the other frames are 160x120",
                "img00001155.png is not a PNG image",
            ),
        ),
        ZipCase(
            "two_levels",
            members_case(lambda: seed_members("outer/inner/")),
            "failed",
            message=(
                "outer/inner/ is 2 folders deep (16 files, e.g. outer/inner/img00000141.png)",
            ),
        ),
        ZipCase(
            "two_folders",
            members_case(
                lambda: [
                    *frames([141, 142, 143], "cam1/"),
                    *frames([144, 145], "cam2/"),
                    ("cam1/selected_frames.csv", b"img00000143.png\n"),
                ]
            ),
            "failed",
            message=("the files are in 2 places (cam1/, cam2/)",),
        ),
        ZipCase(
            "zip_slip",
            members_case(lambda: [*seed_members(), ("../../evil.png", png(1))]),
            "failed",
            message=("../../evil.png points outside the zip's folder",),
        ),
        ZipCase(
            "absolute_path",
            members_case(lambda: [*seed_members(), ("/tmp/evil_abs.png", png(1))]),
            "failed",
            message=("/tmp/evil_abs.png has an absolute path",),
        ),
        ZipCase(
            "symlink",
            members_case(
                lambda: [*seed_members(), (symlink_info("img00000001.png"), b"/etc/passwd")]
            ),
            "failed",
            message=("img00000001.png is a symbolic link",),
        ),
        ZipCase(
            "zip_bomb",
            members_case(lambda: [*seed_members(), zeros_member("img00000007.png", 50_000_000)]),
            "failed",
            message=("img00000007.png unpacks 50,000,000 bytes from", "marks a zip bomb"),
        ),
        ZipCase(
            "lying_sizes",
            then(
                members_case(
                    lambda: [*seed_members(), zeros_member("img00000007.png", 50_000_000)]
                ),
                lambda p: understate_size(p, "img00000007.png", 1000),
            ),
            "failed",
            message=("img00000007.png is damaged",),
        ),
        ZipCase(
            "everything_wrong",
            members_case(
                lambda: [
                    ("img143.png", png(143)),
                    ("img00000144.jpg", b"\xff\xd8"),
                    ("img00000145.png", png(145)[:200]),
                ]
            ),
            "failed",
            message=(
                "img143.png should be named img00000143.png",
                "img00000144.jpg is a JPEG image",
                "the zip has no selected_frames.csv",
                "img00000145.png does not decode",
            ),
        ),
        ZipCase(
            "backslash_folder",
            members_case(lambda: seed_members("subject023_session0\\")),
            "complete",
            bundle=seed,
            selected=SEED_SELECTED,
        ),
        ZipCase(
            "duplicate_entry",
            members_case(lambda: [*seed_members(), ("img00000143.png", png(9))]),
            "failed",
            message=("img00000143.png is in the zip 2 times; expected it once",),
        ),
        ZipCase(
            "empty_zip",
            members_case(lambda: []),
            "failed",
            message=("the zip has no selected_frames.csv", "the zip holds no frames"),
        ),
        ZipCase(
            "bad_sidecar",
            with_bad_sidecar,
            "failed",
            message=("sidecar key 'frames_per_video' is not an option here",),
        ),
    ]


ONCE_LIMITS = """
[zips]
max_uncompressed_bytes = 1000000
max_files = 30
"""


def once_cases() -> list[ZipCase]:
    """Cases for ``framewatch once`` with small limits (ONCE_LIMITS)."""
    return [
        ZipCase(
            "once_seed",
            members_case(seed_members),
            "complete",
            bundle=tuple(sorted(SEED)),
            selected=SEED_SELECTED,
        ),
        ZipCase(
            "too_big",
            members_case(
                lambda: [
                    *[(name(i), noise_png(i)) for i in range(20)],
                    ("selected_frames.csv", b"img00000002.png\n"),
                ]
            ),
            "failed",
            message=("more than the limit of 1,000,000 bytes ([zips] max_uncompressed_bytes)",),
        ),
        ZipCase(
            "too_many_files",
            members_case(
                lambda: [*frames(range(40)), ("selected_frames.csv", b"img00000002.png\n")]
            ),
            "failed",
            message=("the zip holds 41 entries, more than the limit of 30 ([zips] max_files)",),
        ),
    ]
