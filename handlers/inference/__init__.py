"""Model-output drops: a model's predictions for a video, and the frames it finds hardest.

predictions -- loading and checking DeepLabCut / Lightning Pose prediction and metric CSVs.
hardness    -- pure functions: model-error signals, flags, frame scores, the choice.
handler     -- the handler: which file is what, load, score, choose, export.
session     -- a multi-view session's outputs: every view scored as above, one choice for all.
"""

from handlers.inference.handler import (
    InferenceOptions,
    belongs_to,
    file_role,
    handle_inference,
    member_stem,
)

__all__ = ["InferenceOptions", "belongs_to", "file_role", "handle_inference", "member_stem"]
