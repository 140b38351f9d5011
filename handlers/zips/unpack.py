"""Reading an untrusted zip: every byte counted as it is decompressed, every frame decoded.

A zip's table of contents can lie about sizes, so the limits are enforced on the bytes that
really come out of the decompressor, chunk by chunk, before each chunk is written. Entry
names are never used as paths: the caller says where each entry goes (a name it made).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handlers.zips.checks import (
    RATIO_GRACE_BYTES,
    ratio_message,
    too_big_message,
    too_many_files_message,
)

CHUNK_BYTES = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_BYTES = 24  # signature, IHDR length and type, width, height
MAX_FRAME_PIXELS = 64_000_000  # 8K video is 33 Mpx; more is a decompression bomb, not a frame
END_OF_DIRECTORY = b"PK\x05\x06"
END_OF_DIRECTORY_BYTES = 22
MAX_COMMENT_BYTES = 0xFFFF


class ZipLimitError(Exception):
    """The zip passed a limit while it was being read; the message says which, for a user."""


class DamagedEntryError(Exception):
    """An entry could not be read back intact (bad checksum, cut short, unknown compression)."""


@dataclass(frozen=True)
class Limits:
    """How much one zip may unpack to.

    Attributes:
        max_bytes: real uncompressed bytes over all entries.
        max_files: entries in the zip.
        max_ratio: uncompressed over compressed bytes, per entry and for the whole zip.
    """

    max_bytes: int
    max_files: int
    max_ratio: float


@dataclass
class ByteBudget:
    """Counts the bytes really unpacked so far and stops at the first one over a limit."""

    limits: Limits
    archive_bytes: int
    used: int = 0

    def spend(self, name: str, chunk: int, entry_so_far: int, entry_compressed: int) -> None:
        """Account for ``chunk`` more bytes of entry ``name`` before they are written.

        Raises:
            ZipLimitError: the total, the entry's ratio or the zip's ratio would pass a limit.
        """
        self.used += chunk
        limits = self.limits
        if self.used > limits.max_bytes:
            raise ZipLimitError(too_big_message(None, limits.max_bytes))
        if entry_so_far > RATIO_GRACE_BYTES and entry_so_far > limits.max_ratio * max(
            entry_compressed, 1
        ):
            raise ZipLimitError(
                ratio_message(name, entry_so_far, entry_compressed, limits.max_ratio)
            )
        if self.used > RATIO_GRACE_BYTES and self.used > limits.max_ratio * max(
            self.archive_bytes, 1
        ):
            raise ZipLimitError(
                ratio_message("the zip", self.used, self.archive_bytes, limits.max_ratio)
            )


def declared_entry_count(path: Path) -> int | None:
    """The entry count in the zip's end record, read before the whole directory is parsed.

    None when there is no end record or it defers to a ZIP64 record (zipfile then counts).
    """
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - END_OF_DIRECTORY_BYTES - MAX_COMMENT_BYTES))
        tail = handle.read()
    at = tail.rfind(END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < END_OF_DIRECTORY_BYTES:
        return None
    (count,) = struct.unpack_from("<H", tail, at + 10)
    return None if count == 0xFFFF else int(count)


def check_entry_count(path: Path, limits: Limits) -> str | None:
    """A problem when the end record already declares more entries than allowed."""
    count = declared_entry_count(path)
    if count is not None and count > limits.max_files:
        return too_many_files_message(count, limits.max_files)
    return None


def copy_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: ByteBudget
) -> bytes:
    """Unpack one entry into the new file ``target``, counting real bytes; its first bytes.

    Raises:
        ZipLimitError: a limit was passed (nothing past the limit was written).
        DamagedEntryError: the entry is damaged; the message says how.
    """
    head = b""
    written = 0
    try:
        with archive.open(info) as source, target.open("xb") as out:
            while chunk := source.read(CHUNK_BYTES):
                budget.spend(info.filename, len(chunk), written + len(chunk), info.compress_size)
                out.write(chunk)
                if len(head) < PNG_HEADER_BYTES:
                    head += chunk[: PNG_HEADER_BYTES - len(head)]
                written += len(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DamagedEntryError(describe_damage(info.filename, exc)) from exc
    return head


def read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ByteBudget, max_bytes: int
) -> bytes:
    """An entry's bytes in memory (for the small CSV), counted like ``copy_entry``.

    Raises:
        ZipLimitError: the entry or the zip passed a limit.
        DamagedEntryError: the entry is damaged.
    """
    parts: list[bytes] = []
    got = 0
    try:
        with archive.open(info) as source:
            while chunk := source.read(CHUNK_BYTES):
                got += len(chunk)
                budget.spend(info.filename, len(chunk), got, info.compress_size)
                if got > max_bytes:
                    raise ZipLimitError(
                        f"{info.filename} is over {max_bytes:,} bytes; a list of frame names "
                        "is never that long"
                    )
                parts.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DamagedEntryError(describe_damage(info.filename, exc)) from exc
    return b"".join(parts)


def describe_damage(name: str, exc: BaseException) -> str:
    """A user's sentence for why an entry could not be read."""
    text = str(exc)
    if "CRC" in text:
        return (
            f"{name} is damaged: its checksum does not match (bad CRC); the zip was corrupted "
            "or cut short on the way. Make the zip again and copy it once more"
        )
    if isinstance(exc, NotImplementedError):
        return (
            f"{name} uses a compression method framewatch cannot read ({text}); "
            "make the zip with plain zip (deflate)"
        )
    if "encrypted" in text or "password" in text:
        return f"{name} is encrypted (password-protected); make the zip without a password"
    return (
        f"{name} could not be unpacked ({text}); the zip is damaged. "
        "Make it again and copy it once more"
    )


def png_dimensions(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None when the bytes do not start a PNG."""
    if len(head) < PNG_HEADER_BYTES or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def check_png(path: Path, shown: str, head: bytes) -> tuple[tuple[int, int] | None, str | None]:
    """Decode an unpacked PNG in full: its (width, height), or a problem naming it ``shown``."""
    declared = png_dimensions(head)
    if declared is None:
        return (
            None,
            f"{shown} is not a PNG image (its content does not start like one); "
            "expected PNG frames",
        )
    if declared[0] * declared[1] > MAX_FRAME_PIXELS:
        return None, (
            f"{shown} says it is {declared[0]}x{declared[1]} pixels, more than any video frame "
            f"({MAX_FRAME_PIXELS:,} pixels); refused"
        )
    # Decoded from bytes read by Python: OpenCV cannot open a path that is not valid UTF-8.
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return (
            None,
            f"{shown} does not decode as a PNG image (damaged or cut short); export it again",
        )
    return (int(image.shape[1]), int(image.shape[0])), None
