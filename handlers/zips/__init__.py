"""Zip drops: a lab's own frames zip, checked in full before anything is unpacked.

checks  -- pure checks of a zip's table of contents, selected_frames.csv, context.
unpack  -- unpacking an untrusted zip: real bytes counted against limits, PNGs decoded.
handler -- the handler: open, check, unpack, compare with what is already labeled.
"""

from handlers.zips.handler import ZIP_SUFFIXES, ZipOptions, handle_zip

__all__ = ["ZIP_SUFFIXES", "ZipOptions", "handle_zip"]
