"""Video drops: choose the frames that maximize the diversity of poses, and export them.

features  -- what each frame is reduced to for choosing: thumbnail + the animal, turned.
selection -- choosing frames: pure functions over arrays of per-frame features.
report    -- selection.json, contact sheet and timeline: how the frames were chosen.
handler   -- the handler: scan, choose, export, report.
joint     -- choosing one set of frames from several synchronized views' features.
session   -- the multi-view session handler: sync check, joint choice, export per view.
"""

from handlers.video.handler import VideoOptions, choose_frames, handle_video

__all__ = ["VideoOptions", "choose_frames", "handle_video"]
