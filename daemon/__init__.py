"""framewatch's daemon: everything about files arriving. Handlers do the work on them.

One item's path, and the module for each step:
    1. arrival   inbox.py   -- a file (or folder) appears in an inbox; temporary names ignored
    2. wake      watch.py   -- a watchdog event makes the next scan come sooner
    3. settle    settle.py  -- size, m/ctime unchanged, no holes, for settle_s = copy complete
    4. claim     claim.py   -- renamed into this process's private claims folder
                 sessions.py -- <session>_<view> videos (or model outputs) settle, claim and
                               publish as one item
    5. options   kinds.py   -- config [extract] + STEM.json sidecar, checked; the handler to run
    6. work      pool.py, worker.py -- the handler runs in its own process, into staging-<id>/
                 (dask_pool.py instead: a task on a Dask cluster, by [workers] executor)
    7. publish   publish.py -- staging/ becomes labeled-data/STEM/ in one rename (or a merge
                               that never replaces a file); the input moves to its place
                 labelers/  -- each labeling tool the project uses learns of the bundle
    8. record    status.py  -- status/<kind>/<name>.json, rewritten atomically at every change
service.py is the loop that walks every item through these steps, and lifecycle.py how one
item ends (complete, retried, waiting for the rest, put back, requeued or failed); cli.py
the commands; config.py the settings (cron.py reads the sweep's cron line); logs.py the logs.
Unattended operation: notify.py speaks systemd's notify protocol (ready, status, watchdog);
sweep.py the nightly sweep and the retry policy for passing errors; watch.py also supervises
the observers through share outages.
"""
