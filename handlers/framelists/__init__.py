"""Frame-list drops: a CSV of frame numbers or times, named after its video.

listing -- pure reading of the list: header, values, lines, frames they name.
handler -- the handler: find the video, read the list, export exactly those frames.
"""

from handlers.framelists.handler import FRAMELIST_SUFFIXES, FrameListOptions, handle_framelist

__all__ = ["FRAMELIST_SUFFIXES", "FrameListOptions", "handle_framelist"]
