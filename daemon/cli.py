"""The ``framewatch`` command: run, once, status, check-config."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from daemon.config import ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framewatch",
        description=(
            "Turn videos, frame zips and model outputs dropped in folders into labeling bundles."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "run": "run the daemon in the foreground until SIGTERM/SIGINT",
        "once": "process everything settled in the inboxes, then exit (1 if an item failed)",
        "status": "show a table of items and their state",
        "check-config": "validate and print the effective configuration",
    }
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("-c", "--config", metavar="CONFIG", help="TOML config file")
        if name == "status":
            sub.add_argument(
                "item", nargs="?", metavar="ITEM", help="show one item in full: NAME or KIND/NAME"
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings, source = load_settings(args.config)
    except ConfigError as exc:
        print(f"framewatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "status" and args.item:
        return show_item(settings, args.item)
    command = {"run": run, "once": once, "status": show_status, "check-config": check_config}
    return command[args.command](settings, source)


def run(settings: Settings, source: Path | None) -> int:
    daemon = _make_daemon(settings, source)

    # No logging in a signal handler: the log's write lock is not reentrant, and the signal
    # may land while the main thread holds it. The loop logs what the handler noted.
    def stop(signum: int, frame: FrameType | None) -> None:
        daemon.request_stop(signal.Signals(signum).name)

    def sweep_now(signum: int, frame: FrameType | None) -> None:
        daemon.request_sweep()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A closed terminal or a stray `kill -HUP` must not end the daemon: noted, logged, ignored.
    signal.signal(signal.SIGHUP, lambda signum, frame: daemon.note_hangup())
    signal.signal(signal.SIGUSR1, sweep_now)  # `systemctl kill -s USR1 framewatch`: sweep now
    daemon.run_forever()
    return EXIT_OK


def once(settings: Settings, source: Path | None) -> int:
    daemon = _make_daemon(settings, source)
    signal.signal(signal.SIGTERM, lambda signum, frame: daemon.request_stop())
    signal.signal(signal.SIGINT, lambda signum, frame: daemon.request_stop())
    return daemon.run_once()


def _make_daemon(settings: Settings, source: Path | None) -> Any:
    from daemon.logs import configure_logging
    from daemon.service import Daemon  # heavy imports (OpenCV) only for commands that work

    configure_logging()
    daemon = Daemon(settings)
    daemon.log.info(
        "config",
        file=str(source) if source else "built-in defaults",
        root=str(settings.root.absolute()),
    )
    return daemon


def show_status(settings: Settings, source: Path | None) -> int:
    from daemon.status import StatusStore

    rows = [
        [
            str(item.get("kind", "")),
            str(item.get("name", "")),
            str(item.get("state", "")),
            f"{float(item.get('progress', 0.0)):.0%}",
            str(item.get("message", "")),
        ]
        for item in StatusStore(settings.folder("status")).all()
    ]
    if not rows:
        print(f"no items yet (status folder {settings.folder('status')})")
        return EXIT_OK
    print(format_table(["KIND", "NAME", "STATE", "PROGRESS", "MESSAGE"], rows))
    return EXIT_OK


def show_item(settings: Settings, spec: str) -> int:
    """``framewatch status ITEM``: every status named ITEM (or KIND/NAME), in full."""
    from daemon.status import StatusStore

    store = StatusStore(settings.folder("status"))
    kind, _, name = spec.rpartition("/")
    kinds = [kind] if kind else sorted(p.name for p in store.folder.glob("*") if p.is_dir())
    found = [(store.path(k, name), status) for k in kinds if (status := store.read(k, name))]
    if not found:
        print(f"framewatch: no item named {spec!r} (status folder {store.folder})", file=sys.stderr)
        return EXIT_FAILED
    project = settings.folder("project")
    print("\n\n".join(describe_item(path, status, project) for path, status in found))
    return EXIT_OK


def describe_item(path: Path, status: dict[str, Any], project: Path) -> str:
    """One item's status for a person: state, the whole message, problems, warnings, and
    where its files are."""
    lines = [
        f"{status.get('kind')}/{status.get('name')}: {status.get('state')} "
        f"({float(status.get('progress', 0.0)):.0%}), updated {status.get('updated')}",
        "message:",
        textwrap.indent(textwrap.fill(str(status.get("message", "")), 96), "  "),
    ]
    for key in ("problems", "warnings"):
        entries = status.get(key) or []
        if entries:
            lines.append(f"{key}:")
            lines += [
                textwrap.fill(str(e), 96, initial_indent="  - ", subsequent_indent="    ")
                for e in entries
            ]
    lines.append("files:")
    kept = [str(k.get("path")) if isinstance(k, dict) else str(k) for k in status.get("kept") or []]
    where = {
        "status file": [str(path)],
        "arriving": status.get("files") if status.get("state") == "arriving" else None,
        "bundle": [project / status["bundle"]] if status.get("state") == "complete" else None,
        "reports": [status["reports_folder"]] if status.get("reports_folder") else None,
        "pictures": [project / picture for picture in status.get("pictures") or []],
        "inputs": status.get("inputs"),
        "kept as": kept,
    }
    for label, paths in where.items():
        for value in paths or []:
            lines.append(f"  {label + ':':13} {value}")
    for key in (
        "bytes",
        "arriving_since",
        "last_change",
        "settles_at",
        "attempts",
        "passing_error",
    ):
        if key in status:
            lines.append(f"{key}: {status[key]}")
    if status.get("report"):
        lines.append("report: " + json.dumps(status["report"], sort_keys=True))
    return "\n".join(lines)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns; the last column (the message) is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] + [
            row[-1]
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def check_config(settings: Settings, source: Path | None) -> int:
    print(f"# configuration from {source if source else 'built-in defaults'}")
    print(to_toml(settings.model_dump(mode="json")))
    print(f"# root resolves to {settings.root.absolute()}")
    return EXIT_OK


def to_toml(data: dict[str, Any]) -> str:
    """The effective settings as TOML (scalars first, then one table per section)."""
    top = [
        f"{key} = {json.dumps(value)}" for key, value in data.items() if not isinstance(value, dict)
    ]
    tables = [
        f"\n[{key}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
        for key, value in data.items()
        if isinstance(value, dict)
    ]
    return "\n".join(top) + "\n" + "\n".join(tables)


if __name__ == "__main__":
    sys.exit(main())
