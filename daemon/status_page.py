"""The status page: ``<status>/index.html``, what came in and what became of it, at a glance.

One self-contained HTML file (inline CSS, no script, nothing fetched from the network) that a
lab manager opens from the share: the daemon (host, version, since when, last turn of its
loop, the queue, the last nightly summary), every item by state, newest first (arriving,
queued with the reason, processing with a progress bar, failed with the whole message and
where the input was kept, complete with a link to the bundle), and the recent bundles'
contact sheets and timelines, shown by relative links to the PNGs on the share.

However many items there are, the front page stays small: it shows FRONT_LIMIT items a
state; finished items (complete, failed) are also listed on ``<status>/pages/N.html``,
PAGE_SIZE each, oldest first, so a new item rewrites only the last page.

Fed from the status files: a status folder is read again only when its mtime changed (every
status write is a rename into it), a file only when its inode, size or mtime changed.
Pages are written atomically with the umask's mode, only when their text changed, at most
every ``min_gap_s``.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from daemon.atomic import read_json, write_text_atomic
from daemon.status import ARRIVING, COMPLETE, FAILED, PROCESSING, QUEUED, utc_now
from daemon.sweep import SUMMARY_PREFIX
from handlers.bundle import frame_index

INDEX = "index.html"
PAGES = "pages"
FRONT_LIMIT = 50
PAGE_SIZE = 500
RECENT_PICTURES = 6
MIN_GAP_S = 3.0
QUIET_REWRITE_S = 60.0  # with nothing changed, the page still shows the loop is alive
PICTURE_NAMES = ("contact_sheet.png", "timeline.png")
ORDER = (ARRIVING, QUEUED, PROCESSING, FAILED, COMPLETE)
TITLES = {
    ARRIVING: "Arriving (still being copied)",
    QUEUED: "Queued",
    PROCESSING: "Processing",
    FAILED: "Failed",
    COMPLETE: "Complete",
}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em;
border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}td,th{text-align:left;vertical-align:top;
padding:3px 8px;border-bottom:1px solid #e4e4e4}th{background:#eee}
.facts td:first-child{width:12em;color:#555}
.counts span{display:inline-block;margin-right:1.2em;padding:2px 8px;border-radius:4px}
.arriving{background:#e6f0ff}.queued{background:#fff6d6}.processing{background:#e7f7e7}
.failed{background:#fde4e4}.complete{background:#eef}
.bar{display:inline-block;width:10em;height:.9em;background:#ddd;border-radius:3px;
vertical-align:middle}.bar span{display:block;height:100%;background:#3a3;border-radius:3px}
.msg{white-space:pre-wrap;word-break:break-word}.small{color:#666;font-size:.9em}
figure{display:inline-block;vertical-align:top;margin:0 1em 1em 0;max-width:46%}
figure img{max-width:100%;border:1px solid #ccc;background:#fff}
figcaption{font-weight:600}
"""


@dataclass(frozen=True)
class DaemonFacts:
    """What the page says about the daemon itself."""

    host: str
    started: str
    last_turn: str
    queue: str
    running: bool = True


def framewatch_version() -> str:
    try:
        return metadata.version("framewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def bundle_pictures(project: Path, reports: Path, files: Iterable[str]) -> list[str]:
    """The PNGs of a bundle that are not frames (contact sheet, timeline), relative to the
    project, for its status and the page."""
    return [
        (reports / name).relative_to(project).as_posix()
        for name in files
        if name.lower().endswith(".png") and frame_index(name) is None
    ]


def esc(value: Any) -> str:
    """Any value as HTML text: a file named ``<script>`` shows as text, never as markup."""
    return html.escape(str(value), quote=True)


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def newest_first(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(items, key=lambda item: str(item.get("updated", "")), reverse=True)


def by_state(items: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Items grouped by state (unknown states under their own name), newest first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        groups.setdefault(str(item.get("state", "")), []).append(item)
    return {state: newest_first(group) for state, group in groups.items()}


def size_text(size: Any) -> str:
    try:
        value = float(size)
    except (TypeError, ValueError):
        return "?"
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return "?"


def progress_bar(progress: Any) -> str:
    try:
        share = min(max(float(progress), 0.0), 1.0)
    except (TypeError, ValueError):
        share = 0.0
    percent = round(share * 100)
    return f'<span class="bar"><span style="width:{percent}%"></span></span> {percent}%'


def kept_paths(item: Mapping[str, Any]) -> list[str]:
    """Where a failed item's input was kept, from its status."""
    kept = item.get("kept") or []
    return [str(k.get("path", k)) if isinstance(k, dict) else str(k) for k in kept]


def item_detail(item: Mapping[str, Any], links: PageLinks) -> str:
    """The state-specific cell of one item's row."""
    state = item.get("state")
    message = f'<div class="msg">{esc(item.get("message", ""))}</div>'
    if state == ARRIVING:
        extra = (
            f"{esc(size_text(item.get('bytes')))} so far, seen since "
            f"{esc(item.get('arriving_since', '?'))}; settles at about "
            f"{esc(item.get('settles_at', '?'))}"
        )
        return f'<div class="small">{extra}</div>{message}'
    if state == PROCESSING:
        return progress_bar(item.get("progress", 0.0)) + message
    if state == FAILED:
        kept = "".join(f"<li>{esc(path)}</li>" for path in kept_paths(item))
        where = f'<div class="small">input kept as:<ul>{kept}</ul></div>' if kept else ""
        return message + where
    if state == COMPLETE:
        bundle = link(links.bundle(item), str(item.get("bundle", "bundle")))
        frames = esc(item.get("frames_selected", 0))
        warnings = item.get("warnings") or []
        listed = "".join(f"<li>{esc(w)}</li>" for w in warnings)
        more = (
            f"<details><summary>{len(warnings)} warning(s)</summary><ul>{listed}</ul></details>"
            if warnings
            else ""
        )
        return f"{frames} frames selected: {bundle}{more}"
    return message


def item_row(item: Mapping[str, Any], links: PageLinks) -> str:
    state = esc(item.get("state", ""))
    return (
        f'<tr class="{state}"><td>{esc(item.get("name", ""))}<div class="small">'
        f"{esc(item.get('kind', ''))}</div></td><td>{state}</td>"
        f'<td class="small">{esc(item.get("updated", ""))}</td>'
        f"<td>{item_detail(item, links)}</td></tr>"
    )


def item_table(
    items: Iterable[Mapping[str, Any]], links: PageLinks, rows: RowCache | None = None
) -> str:
    render = rows.row if rows is not None else (lambda item: item_row(item, links))
    rows_text = "".join(render(item) for item in items)
    header = "<tr><th>name</th><th>state</th><th>updated (UTC)</th><th>details</th></tr>"
    return f"<table>{header}{rows_text}</table>"


@dataclass
class RowCache:
    """Rendered rows of one page folder, kept while their item does not change: a finished
    item's row is rendered once, not at every rewrite."""

    links: PageLinks
    _rows: dict[tuple[Any, ...], str] = field(default_factory=dict)
    _used: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def row(self, item: Mapping[str, Any]) -> str:
        key = tuple(
            str(item.get(k, ""))
            for k in ("kind", "name", "updated", "state", "progress", "message")
        )
        text = self._rows.get(key)
        if text is None:
            text = item_row(item, self.links)
        self._used[key] = text
        return text

    def forget_unused(self) -> None:
        """Drop rows not rendered since the last call (items that changed or went)."""
        self._rows, self._used = self._used, {}


@dataclass(frozen=True)
class PageLinks:
    """Relative links from a page's folder to the project's files (the share keeps its
    layout, so they work wherever it is mounted)."""

    page_folder: Path
    project: Path

    def to(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.page_folder)).as_posix()

    @cached_property
    def project_link(self) -> str:
        return self.to(self.project)

    def bundle(self, item: Mapping[str, Any]) -> str:
        return f"{self.project_link}/{item.get('bundle', '')}/"

    def pictures(self, item: Mapping[str, Any]) -> list[str]:
        """The item's contact sheet and timeline as links; found beside the bundle or in the
        reports folder when its status does not list them (statuses older than the page)."""
        listed = item.get("pictures")
        if isinstance(listed, list):
            return [f"{self.project_link}/{picture}" for picture in listed]
        name = str(item.get("name", ""))
        for folder in (self.project / ".framewatch" / name, self.project / "labeled-data" / name):
            found = [folder / picture for picture in PICTURE_NAMES if (folder / picture).is_file()]
            if found:
                return [self.to(path) for path in found]
        return []


def facts_table(facts: DaemonFacts, summary: Mapping[str, Any] | None, written: str) -> str:
    rows = [
        ("host", facts.host),
        ("framewatch", framewatch_version()),
        ("running since", facts.started if facts.running else f"stopped ({facts.started})"),
        ("last loop turn", facts.last_turn),
        ("queue", facts.queue),
        ("page written", written),
        ("last nightly summary", summary_text(summary)),
    ]
    cells = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{cells}</table>'


def summary_text(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "none yet"
    completed = len(summary.get("completed_since") or [])
    failed = len(summary.get("failed_since") or [])
    return (
        f"{summary.get('written', '?')}: since {summary.get('since', '?')}, {completed} complete, "
        f"{failed} failed; now {summary.get('by_state', {})}"
    )


def counts_line(groups: Mapping[str, list[Mapping[str, Any]]]) -> str:
    states = [*ORDER, *sorted(set(groups) - set(ORDER))]
    spans = "".join(
        f'<span class="{esc(s)}">{esc(s)}: {len(groups.get(s, []))}</span>' for s in states
    )
    return f'<p class="counts">{spans}</p>'


def pictures_section(complete: list[Mapping[str, Any]], links: PageLinks) -> str:
    figures = []
    for item in complete[: RECENT_PICTURES * 3]:  # older bundles' pictures are in their folders
        pictures = links.pictures(item)
        if not pictures:
            continue
        images = "".join(
            f'<img src="{esc(src)}" alt="{esc(Path(src).name)} of {esc(item.get("name", ""))}">'
            for src in pictures
        )
        caption = f"{esc(item.get('name', ''))} ({esc(item.get('kind', ''))})"
        figures.append(f"<figure><figcaption>{caption}</figcaption>{images}</figure>")
        if len(figures) == RECENT_PICTURES:
            break
    return "<h2>Recent bundles</h2>" + ("".join(figures) or "<p>none yet</p>")


def document(title: str, body: str, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>{refresh}<style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_index(
    items: Sequence[Mapping[str, Any]],
    facts: DaemonFacts,
    summary: Mapping[str, Any] | None,
    links: PageLinks,
    page_count: int,
    written: str,
    rows: RowCache | None = None,
) -> str:
    """The front page: the daemon, the counts, each state's newest items, the pictures."""
    groups = by_state(items)
    parts = [f"<h1>framewatch on {esc(facts.host)}</h1>", facts_table(facts, summary, written)]
    parts.append(counts_line(groups))
    for state in [*ORDER, *sorted(set(groups) - set(ORDER))]:
        group = groups.get(state, [])
        if not group:
            continue
        parts.append(f"<h2>{esc(TITLES.get(state, state))} ({len(group)})</h2>")
        parts.append(item_table(group[:FRONT_LIMIT], links, rows))
        if len(group) > FRONT_LIMIT:
            parts.append(f"<p>and {len(group) - FRONT_LIMIT} older; see the pages below.</p>")
        if state == FAILED:
            parts.append(pictures_section(groups.get(COMPLETE, []), links))
    if COMPLETE in groups and FAILED not in groups:
        parts.append(pictures_section(groups[COMPLETE], links))
    if page_count:
        pages = " ".join(link(f"{PAGES}/{n}.html", f"{n}") for n in range(page_count, 0, -1))
        parts.append(f"<h2>All finished items, {PAGE_SIZE} a page (newest last)</h2><p>{pages}</p>")
    return document(f"framewatch on {facts.host}", "".join(parts), refresh_s=10)


def finished_pages(items: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Complete and failed items, oldest first, in pages of PAGE_SIZE."""
    done = [item for item in items if item.get("state") in (COMPLETE, FAILED)]
    done.sort(key=lambda item: str(item.get("updated", "")))
    return [done[start : start + PAGE_SIZE] for start in range(0, len(done), PAGE_SIZE)]


def render_page(
    number: int,
    count: int,
    items: list[Mapping[str, Any]],
    links: PageLinks,
    rows: RowCache | None = None,
) -> str:
    nav = link("../" + INDEX, "front page")
    if number > 1:
        nav += " · " + link(f"{number - 1}.html", "older")
    if number < count:
        nav += " · " + link(f"{number + 1}.html", "newer")
    body = f"<h1>Finished items, page {number} of {count}</h1><p>{nav}</p>" + item_table(
        list(reversed(items)), links, rows
    )
    return document(f"framewatch: finished items, page {number}", body)


@dataclass
class StatusReader:
    """The status files of one folder, read again only where something changed."""

    folder: Path
    _dirs: dict[str, int] = field(default_factory=dict)
    # kind -> file name -> ((inode, size, mtime_ns), content)
    _files: dict[str, dict[str, tuple[tuple[int, int, int], dict[str, Any]]]] = field(
        default_factory=dict
    )

    def changed(self, full: bool = False) -> bool:
        """Refresh from disk; True when any status changed since the last call."""
        changed = False
        seen_dirs = {}
        try:
            kinds = [entry for entry in os.scandir(self.folder) if entry.is_dir()]
        except FileNotFoundError:
            kinds = []
        for entry in kinds:
            mtime = entry.stat().st_mtime_ns
            seen_dirs[entry.name] = mtime
            if full or self._dirs.get(entry.name) != mtime:
                changed |= self._reread(entry.name)
        for gone in set(self._files) - set(seen_dirs):
            del self._files[gone]
            changed = True
        self._dirs = seen_dirs
        return changed

    def _reread(self, kind: str) -> bool:
        old = self._files.get(kind, {})
        new = {}
        changed = False
        for entry in os.scandir(self.folder / kind):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            stat = entry.stat()
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            cached = old.get(entry.name)
            if cached is not None and cached[0] == key:
                new[entry.name] = cached
                continue
            data = read_json(Path(entry.path))
            if isinstance(data, dict):
                new[entry.name] = (key, data)
                changed = True
        self._files[kind] = new
        return changed or len(new) != len(old)

    def items(self) -> list[dict[str, Any]]:
        return [data for files in self._files.values() for _, data in files.values()]


def latest_summary(status_folder: Path) -> dict[str, Any] | None:
    found = sorted(status_folder.glob(f"{SUMMARY_PREFIX}*.json"))
    data = read_json(found[-1]) if found else None
    return data if isinstance(data, dict) else None


@dataclass
class StatusPage:
    """Writes ``index.html`` and the finished items' pages of one status folder."""

    status_folder: Path
    project: Path
    min_gap_s: float = MIN_GAP_S
    quiet_rewrite_s: float = QUIET_REWRITE_S
    _reader: StatusReader | None = None
    _last_check: float = -1e9
    _last_write: float = -1e9
    _written: dict[str, str] = field(default_factory=dict)
    _rows: RowCache | None = None
    _page_rows: RowCache = field(init=False)

    def maybe_write(self, facts: Callable[[], DaemonFacts], force: bool = False) -> bool:
        """Rewrite the pages if a status changed (or a quiet minute passed); at most every
        ``min_gap_s``. True when the front page was written."""
        now = time.monotonic()
        if not force and now - self._last_check < self.min_gap_s:
            return False
        self._last_check = now
        if self._reader is None:
            self._reader = StatusReader(self.status_folder)
        quiet = now - self._last_write >= self.quiet_rewrite_s
        changed = self._reader.changed(full=quiet)
        if not (changed or quiet or force):
            return False
        self.write(self._reader.items(), facts())
        self._last_write = now
        return True

    def write(self, items: list[dict[str, Any]], facts: DaemonFacts) -> None:
        """Render every page and write those whose text changed."""
        if self._rows is None:
            self._rows = RowCache(PageLinks(self.status_folder, self.project))
            self._page_rows = RowCache(PageLinks(self.status_folder / PAGES, self.project))
        pages = finished_pages(items)
        for number, page in enumerate(pages, start=1):
            text = render_page(number, len(pages), page, self._page_rows.links, self._page_rows)
            self._write_if_changed(Path(PAGES) / f"{number}.html", text)
        summary = latest_summary(self.status_folder)
        text = render_index(
            items, facts, summary, self._rows.links, len(pages), utc_now(), self._rows
        )
        self._write_if_changed(Path(INDEX), text)
        self._rows.forget_unused()
        self._page_rows.forget_unused()

    def _write_if_changed(self, relative: Path, text: str) -> None:
        key = relative.as_posix()
        if self._written.get(key) != text:
            write_text_atomic(self.status_folder / relative, text)
            self._written[key] = text
