"""Handlers: one module per kind of arrival, each a plain function of its inputs.

A handler is called as ``handle(files, options, staging, progress)`` in a worker process:
``files`` are the claimed input files, ``options`` the validated per-item options, ``staging``
an empty private folder that becomes ``labeled-data/<name>/`` once the daemon publishes it,
and ``progress(fraction, message)`` reports how far it got. It returns a ``HandlerResult`` or
raises ``InputError`` listing everything wrong with the input. It knows nothing of watching,
status files, retries or the project layout; the daemon owns those.

Modules:
    outcome    -- HandlerResult, InputError and the progress callback type shared by all.
    frames     -- reading frames: one streaming pass that reduces each frame, exact export.
    features   -- what each frame is reduced to for choosing: thumbnail + the animal, turned.
    selection  -- choosing frames: pure functions over arrays of per-frame features.
    report     -- selection.json, contact sheet and timeline: how the frames were chosen.
    bundle     -- the bundle's files: PNG names, selected_frames.csv.
    video      -- the video handler: scan, choose, export, report.
    zips       -- the zip handler: a lab's own frames zip, checked in full and unpacked.
    zip_checks -- pure checks of a zip's table of contents, selected_frames.csv, context.
    zip_unpack -- unpacking an untrusted zip: real bytes counted against limits, PNGs decoded.
    inference  -- the model-output handler: a model's predictions for a video, hardest frames.
    predictions -- loading and checking DeepLabCut / Lightning Pose prediction and metric CSVs.
    hardness   -- pure functions: model-error signals, flags, frame scores, the choice.
"""
