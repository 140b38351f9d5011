"""Handlers: one module per kind of arrival, each a plain function of its inputs.

A handler is called as ``handle(files, options, staging, progress)`` in a worker process:
``files`` are the claimed input files, ``options`` the validated per-item options, ``staging``
an empty private folder that becomes ``labeled-data/<name>/`` once the daemon publishes it,
and ``progress(fraction, message)`` reports how far it got. It returns a ``HandlerResult`` or
raises ``InputError`` listing everything wrong with the input. It knows nothing of watching,
status files, retries or the project layout; the daemon owns those.

Shared by every kind:
    outcome  -- HandlerResult, InputError and the progress callback type.
    options  -- option types (FrameRange) and the window of frames that may be chosen.
    frames   -- reading frames: one streaming pass that reduces each frame, exact export.
    bundle   -- the bundle's files: PNG names, selected_frames.csv, the PNG writer.

One subpackage per kind of arrival, each with a ``handler`` module holding its handler:
    video      -- video drops: frames that maximize the diversity of poses.
    zips       -- zip drops: a lab's own frames, checked in full and unpacked.
    inference  -- model-output drops: the frames a trained model finds hardest.
"""
