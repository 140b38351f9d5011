"""The status page (issue 16): what a lab manager sees in ``<status>/index.html``.

The page is checked as a person sees it: rendered by headless Chromium (Debian's
``chromium``, installed by .ci/run) from the file system while a real daemon runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from daemon.status import StatusStore
from daemon.status_page import (
    FRONT_LIMIT,
    PAGE_SIZE,
    DaemonFacts,
    PageLinks,
    StatusPage,
    render_index,
)
from tests.harness import Framewatch, copy_slowly
from tests.media import write_barcode_video

FAST = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"
HOSTILE = "<script>alert(1)<script>"  # a file name cannot hold "/", so no "</script>"
VOID = {"meta", "img", "br", "hr", "input", "link"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]
# Added to a copy of the page, beside it, only by this test: the page itself has no script.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const pre = document.createElement("pre");
  pre.id = "fw-image-check";
  pre.textContent = [...document.images].map(i => i.naturalWidth + " " + i.alt).join("\\n");
  document.body.appendChild(pre);
});
</script>"""


class TagChecker(HTMLParser):
    """Start tags seen, and whether every non-void tag closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_markup(text: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(text)
    checker.close()
    return checker


def test_page_is_well_formed_and_shows_names_as_text(tmp_path: Path) -> None:
    """Every tag closes in order, and a name or message holding markup shows as text."""
    items = [
        {
            "kind": "videos",
            "name": "<script>alert(1)</script>",
            "state": "failed",
            "message": 'bad "<b>" & <img src=x onerror=alert(1)>',
            "updated": "2026-12-01T03:00:00Z",
            "kept": [{"path": "/srv/failed/videos/<script>.mp4", "name": "x"}],
        },
        {"kind": "zips", "name": "p", "state": "processing", "progress": 0.42, "updated": "x"},
    ]
    facts = DaemonFacts("host<1>", "2026-12-01T00:00:00Z", "2026-12-01T03:00:01Z", "0 queued")
    text = render_index(items, facts, None, PageLinks(tmp_path, tmp_path / "project"), 0, "now")
    checker = check_markup(text)
    assert [] == checker.errors
    assert [] == checker.stack
    assert "script" not in checker.tags and checker.tags.count("img") == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'style="width:42%"' in text


def test_many_items_are_paged_and_only_changed_pages_rewritten(tmp_path: Path) -> None:
    """1200 finished items: the front page shows FRONT_LIMIT a state, pages/1..3 list every
    one; a progress change rewrites the front page only, its bar at the new width."""
    store = StatusStore(tmp_path / "status")
    for n in range(1200):
        store.write("videos", f"v{n:04d}", "complete" if n % 4 else "failed", f"item {n}")
    store.write("zips", "busy", "processing", "unpacking", progress=0.25)
    page = StatusPage(store.folder, tmp_path / "project", min_gap_s=0.0)
    facts = DaemonFacts("h", "s", "t", "q")
    assert page.maybe_write(lambda: facts)
    index = (store.folder / "index.html").read_text()
    assert FRONT_LIMIT == index.count('<tr class="complete">')
    pages = sorted((store.folder / "pages").glob("*.html"))
    assert ["1.html", "2.html", "3.html"] == [path.name for path in pages]
    listed = sum(path.read_text().count("<tr class=") for path in pages)
    assert 1200 == listed and PAGE_SIZE == pages[0].read_text().count("<tr class=")
    before = {path: path.stat().st_mtime_ns for path in pages}
    assert not page.maybe_write(lambda: facts)  # nothing changed: nothing rewritten
    store.write("zips", "busy", "processing", "unpacking", progress=0.75)
    assert page.maybe_write(lambda: facts)
    assert 'style="width:75%"' in (store.folder / "index.html").read_text()
    assert before == {path: path.stat().st_mtime_ns for path in pages}


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is absent (apt-get install chromium; .ci/run does)")


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(
        [*command, page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    )


def rendered_images(index: Path, profile: Path) -> list[tuple[int, str]]:
    """(natural width, alt) of every image of the page once Chromium loaded it."""
    probe = index.with_name(".fw-image-check.html")
    probe.write_text(index.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    dom = chromium(probe, profile, "--virtual-time-budget=5000", "--dump-dom").stdout
    probe.unlink()
    found = re.search(r'<pre id="fw-image-check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    lines = [line.split(" ", 1) for line in found.group(1).splitlines() if line]
    return [(int(width), alt) for width, alt in lines]


def test_page_in_chromium_shows_arriving_failed_complete_and_pictures(
    fw: Framewatch, tmp_path: Path
) -> None:
    """While a daemon runs, Chromium shows a copy in progress as arriving, a broken file
    (named with markup) failed with its message as text, a bundle complete with its contact
    sheet and timeline loaded as pictures; a screenshot is kept."""
    src = tmp_path / "src"
    src.mkdir()
    good = write_barcode_video(src / "mouse1", 60)
    slow = write_barcode_video(src / "mouse2", 60)
    fw.settle_s = 2.0
    fw.extra_config = FAST
    fw.write_config()
    fw.start()
    shutil.copyfile(good, fw.inbox("videos") / "mouse1.mp4")
    (fw.inbox("videos") / f"{HOSTILE}.mp4").write_bytes(b"not a video at all")
    assert "complete" == fw.wait_state("videos", "mouse1")["state"]
    assert "failed" == fw.wait_state("videos", HOSTILE)["state"]
    shown = fw.cli("status", HOSTILE).stdout
    assert f"videos/{HOSTILE}: failed" in shown and "problems:" in shown
    assert str(fw.failed("videos") / f"{HOSTILE}.mp4") in shown
    target = fw.inbox("videos") / "mouse2.mp4"
    copier = threading.Thread(target=copy_slowly, args=(slow, target, 30, 0.4))
    copier.start()
    index = fw.root / "status" / "index.html"
    fw.wait_for(
        lambda: (
            index.exists() and "mouse2" in index.read_text() and "Arriving" in index.read_text()
        ),
        10,
        "the page to list the copy in progress",
    )
    profile = tmp_path / "chromium-profile"
    dom = chromium(index, profile, "--dump-dom").stdout
    images = rendered_images(index, profile)

    arriving = dom[dom.index("Arriving") : dom.index("Failed")]
    assert "mouse2" in arriving and "so far" in arriving
    failed = dom[dom.index("Failed") : dom.index("Complete")]
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in failed
    assert str(fw.failed("videos")) in failed
    assert "<script" not in dom  # the hostile name stayed text
    assert "mouse1" in dom[dom.index("Complete") :]
    loaded = {alt: width for width, alt in images}
    assert loaded["contact_sheet.png of mouse1"] > 0
    assert loaded["timeline.png of mouse1"] > 0

    shot = Path(os.environ.get("FRAMEWATCH_ARTIFACTS", tmp_path)) / "status-page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    chromium(index, profile, f"--screenshot={shot}", "--window-size=1200,1400")
    assert shot.stat().st_size > 10_000
    copier.join()
