"""Items on a Dask cluster: the same bundles as locally, and a lost worker or scheduler is survived.

The clusters run on 127.0.0.1: an in-process ``LocalCluster``, or a scheduler and worker
processes started by the test (tests/dask_cluster.py) so that one can be killed mid-item.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest

from daemon.executor import WorkerCannotImport, WorkerDied, WorkerNotStarted
from daemon.worker import HandlerCrash, Job, WorkerCannotSee, run_job
from handlers.outcome import InputError
from handlers.video import VideoOptions
from tests.dask_cluster import LoopbackCluster
from tests.harness import REPO, Framewatch
from tests.media import read_barcode, write_barcode_video


def distributed_importable() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


HAS_DASK = distributed_importable()
needs_dask = pytest.mark.skipif(
    not HAS_DASK, reason="distributed is not installed (pip install -e '.[dask]'; .ci/run does)"
)
LONG_FRAMES = 5000  # at 320x240 several seconds of work: long enough to kill a worker mid-item


def dask_env(address: str) -> dict[str, str]:
    """The environment that points a daemon at the Dask scheduler at ``address``."""
    return {
        "FRAMEWATCH_WORKERS__EXECUTOR": "dask",
        "FRAMEWATCH_WORKERS__SCHEDULER_ADDRESS": address,
    }


def bundle_bytes(fw: Framewatch) -> dict[str, bytes]:
    """Every file of every bundle under labeled-data/, by its path there."""
    root = fw.project / "labeled-data"
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_exact_frames(bundle: Path) -> None:
    """Every PNG of ``bundle`` holds the frame its name says."""
    pngs = sorted(bundle.glob("img*.png"))
    assert [] != pngs
    assert [int(png.stem[3:]) for png in pngs] == [
        read_barcode(cv2.imread(str(png))) for png in pngs
    ]


def events(fw: Framewatch, name: str, event: str) -> list[dict[str, object]]:
    return [e for e in fw.log_events() if e.get("name") == name and e.get("event") == event]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barcode video that takes a worker several seconds, written once for the module."""
    return write_barcode_video(
        tmp_path_factory.mktemp("media") / "long", LONG_FRAMES, width=320, height=240
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    """A scheduler and two single-threaded workers on 127.0.0.1; killed after the test."""
    with LoopbackCluster(tmp_path / "cluster") as running:
        yield running.start(workers=2)


def drop(fw: Framewatch, video: Path, stem: str) -> Path:
    """Copy ``video`` into the inbox as ``stem`` (written aside, then renamed in)."""
    aside = fw.root / f".{stem}{video.suffix}"
    shutil.copyfile(video, aside)
    return aside.rename(fw.inbox("videos") / f"{stem}{video.suffix}")


# ----- configuration: no cluster needed ---------------------------------------------------


def test_dask_without_address_is_a_config_error(fw: Framewatch) -> None:
    """executor = "dask" without scheduler_address exits 2 naming the key."""
    fw.env = {"FRAMEWATCH_WORKERS__EXECUTOR": "dask"}
    result = fw.cli("check-config")
    assert 2 == result.returncode, result.stderr
    assert "workers.scheduler_address" in result.stderr


def test_dask_without_the_extra_says_what_to_install(fw: Framewatch, tmp_path: Path) -> None:
    """Asking for dask where distributed cannot be imported exits 2 naming the extra to install."""
    fake = tmp_path / "no-dask"
    (fake / "distributed").mkdir(parents=True)
    (fake / "distributed" / "__init__.py").write_text(
        "raise ImportError('No module named distributed')\n"
    )
    fw.env = {
        **dask_env("tcp://127.0.0.1:9"),
        "PYTHONPATH": f"{fake}:{fw.environment()['PYTHONPATH']}",
    }
    result = fw.cli("run")
    assert 2 == result.returncode, result.stderr
    assert "workers.executor" in result.stderr
    assert "pip install 'framewatch[dask]'" in result.stderr


def test_worker_that_cannot_see_the_file_names_path_and_worker(tmp_path: Path) -> None:
    """run_job where the claimed file is missing fails naming the path and the worker."""
    folder = tmp_path / "claims" / "mouse1.mp4"
    folder.mkdir(parents=True)
    missing = folder / "input" / "mouse1.mp4"
    options = VideoOptions(frames_per_video=5, frame_range=(0.0, 1.0), context_frames=0)
    job = Job(
        "videos",
        "mouse1",
        "handlers.video.handler:handle_video",
        (missing,),
        options,
        folder,
        folder / "progress.json",
    )
    with pytest.raises(WorkerCannotSee, match=re.escape(str(missing))) as caught:
        run_job(job)
    assert re.search(r"The worker \S+ pid \d+ cannot see", caught.value.problems[0])
    assert [] == list(folder.glob("staging-*"))


@needs_dask
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param("killed", WorkerDied, id="all-workers-died-is-WorkerDied"),
        pytest.param("input", InputError, id="input-error-passes-through"),
        pytest.param("import", WorkerNotStarted, id="framewatch-not-importable-is-not-started"),
        pytest.param("handler", WorkerNotStarted, id="handler-not-importable-is-not-started"),
        pytest.param("crash", HandlerCrash, id="handler-crash-passes-through"),
    ],
)
def test_task_errors_become_the_daemons(error: str, expected: type[Exception]) -> None:
    """A task whose workers all died reads as WorkerDied, one whose worker cannot import
    framewatch as WorkerNotStarted; other errors pass through unchanged."""
    import distributed

    from daemon.dask_pool import translate_task_error

    raised = {
        "killed": distributed.KilledWorker(
            "run_job-1",
            SimpleNamespace(address="tcp://127.0.0.1:1"),  # type: ignore[arg-type]
            3,
        ),
        "input": InputError(["Expected a video, but got a text file"]),
        "import": ImportError("half replaced by pip install --upgrade"),
        "handler": WorkerCannotImport("handlers.video:handle_video cannot be imported"),
        "crash": HandlerCrash("ImportError: a module the handler needs"),
    }[error]
    assert expected is type(translate_task_error(raised))


# ----- on a cluster ------------------------------------------------------------------------


@needs_dask
def test_local_and_dask_give_byte_identical_bundles(tmp_path: Path) -> None:
    """The same drops through `once` give byte-identical bundles locally and on a LocalCluster."""
    from distributed import LocalCluster

    sources = tmp_path / "src"
    sources.mkdir()
    videos = [
        write_barcode_video(sources / "mouse1", 400),
        write_barcode_video(sources / "mouse2", 300, codec="mjpg-avi"),
    ]
    (sources / "mouse2.json").write_text('{"frames_per_video": 8, "frame_range": [0.2, 0.9]}')
    bundles = {}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local_cluster:
        for executor, env in [("local", {}), ("dask", dask_env(local_cluster.scheduler_address))]:
            with Framewatch(tmp_path / executor, env=env) as fw:
                for path in [*videos, sources / "mouse2.json"]:
                    shutil.copy(path, fw.inbox("videos") / path.name)
                result = fw.once(timeout=240)
                assert 0 == result.returncode, result.stdout[-3000:] + result.stderr[-3000:]
                assert "complete" == (fw.status("videos", "mouse2") or {}).get("state")
                assert (executor == "dask") == ("(Dask worker tcp://127.0.0.1:" in result.stdout)
                bundles[executor] = bundle_bytes(fw)
    assert 2 * 20 < len(bundles["local"])
    assert sorted(bundles["local"]) == sorted(bundles["dask"])
    assert bundles["local"] == bundles["dask"]


@needs_dask
def test_worker_killed_mid_item_still_completes_once(
    tmp_path: Path, cluster: LoopbackCluster, long_video: Path
) -> None:
    """A worker killed in the middle of an item: Dask runs it again and one bundle is published."""
    with Framewatch(tmp_path / "fw", env=dask_env(cluster.address)) as fw:
        fw.start()
        drop(fw, long_video, "mouse1")

        def running_worker_pid() -> int | None:
            for progress in (fw.root / "work" / "claims").glob("*/videos/*/progress.json"):
                found = re.search(r"pid (\d+) \(Dask worker", progress.read_text(errors="replace"))
                if found and '"progress": 1.0' not in progress.read_text(errors="replace"):
                    return int(found.group(1))
            return None

        pid = fw.wait_for(running_worker_pid, 120, "a Dask worker to report progress on mouse1")
        subprocess.run(["kill", "-9", str(pid)], check=True)
        status = fw.wait_state("videos", "mouse1", timeout=180)
        assert "complete" == status["state"], status
        results = events(fw, "mouse1", "result")
        assert 1 == len(results), results
        assert f"pid {pid} " not in str(results[0]["worker"])
        assert 1 == len(events(fw, "mouse1", "started"))
        assert 1 == len(events(fw, "mouse1", "complete"))
        bundle = fw.bundle("mouse1")
        assert_exact_frames(bundle)
        assert ["selected_frames.csv"] == sorted(
            p.name for p in bundle.glob("selected_frames*.csv")
        )
        assert 20 == len((bundle / "selected_frames.csv").read_text().split())
        assert [] == list((fw.root / "work").rglob("staging-*"))
        assert 0 == fw.stop()


@needs_dask
def test_scheduler_lost_and_back_items_complete(
    tmp_path: Path, cluster: LoopbackCluster, long_video: Path
) -> None:
    """The scheduler killed mid-item: items are queued again; the daemon waits, then ends them."""
    with Framewatch(tmp_path / "fw", env=dask_env(cluster.address)) as fw:
        fw.start()
        drop(fw, long_video, "mouse1")
        fw.wait_for(
            lambda: 0 < float((fw.status("videos", "mouse1") or {}).get("progress", 0)) < 1,
            120,
            "mouse1 to be under way on a Dask worker",
        )
        cluster.stop_scheduler()
        cluster.stop_workers()  # they exit without their scheduler; a supervisor restarts them
        lost = fw.wait_state("videos", "mouse1", ("queued",), timeout=60)
        assert "Dask scheduler" in lost["message"], lost
        drop(fw, long_video, "mouse2")
        waiting = fw.wait_for(
            lambda: "cannot be reached" in (fw.status("videos", "mouse2") or {}).get("message", ""),
            60,
            "mouse2's status to say the scheduler cannot be reached",
        )
        assert waiting
        assert fw.process is not None and None is fw.process.poll()
        cluster.start(workers=2)
        for name in ("mouse1", "mouse2"):
            status = fw.wait_state("videos", name, timeout=180)
            assert "complete" == status["state"], status
            assert_exact_frames(fw.bundle(name))
        assert 1 == len(events(fw, "mouse1", "complete"))
        assert 0 == fw.stop()


@needs_dask
def test_dask_worker_that_cannot_import_framewatch_fails_no_file(tmp_path: Path) -> None:
    """A Dask worker whose framewatch is half replaced: the file is not failed, the status and
    the log say workers cannot start, and once the package is whole the item completes."""
    copy = tmp_path / "code"
    for package in ("daemon", "handlers"):
        shutil.copytree(REPO / package, copy / package)
    worker = copy / "daemon" / "worker.py"
    whole = worker.read_text()
    worker.write_text("raise ImportError('half replaced by pip install --upgrade')\n")
    with LoopbackCluster(tmp_path / "cluster") as cluster, Framewatch(tmp_path / "fw") as fw:
        cluster.start_scheduler()
        cluster.start_worker("half", ["env", f"PYTHONPATH={copy}"])
        cluster.wait_for_workers(1)
        fw.env = dask_env(cluster.address)
        fw.extra_config = "\n[extract]\nframes_per_video = 4\ncontext_frames = 1\n"
        fw.write_config()
        fw.start()
        drop(fw, write_barcode_video(tmp_path / "good", 60), "good")
        fw.wait_for(
            lambda: "Workers cannot start" in str(fw.status("videos", "good")),
            120,
            "the status to say workers cannot start",
        )
        assert "queued" == fw.status("videos", "good")["state"]  # type: ignore[index]
        assert "cannot load framewatch" in fw.log_text()
        worker.write_text(whole)
        status = fw.wait_state("videos", "good", timeout=180)
        assert "complete" == status["state"], status
        assert not (fw.root / "failed").exists() or not list((fw.root / "failed").rglob("good*"))
        assert 0 == fw.stop()


@needs_dask
def test_worker_without_the_share_fails_the_item_naming_it(tmp_path: Path) -> None:
    """A worker that does not see the share fails the item naming the path and the worker."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("needs unshare -m (root, mount namespaces) to hide the share from a worker")
    with LoopbackCluster(tmp_path / "cluster") as cluster, Framewatch(tmp_path / "fw") as fw:
        cluster.start_scheduler()
        hide = f'mount -t tmpfs tmpfs {fw.root} && exec "$@"'
        cluster.start_worker("blind", ["unshare", "-m", "sh", "-c", hide, "sh"])
        cluster.wait_for_workers(1)
        fw.env = dask_env(cluster.address)
        fw.start()
        video = write_barcode_video(tmp_path / "mouse1", 100)
        drop(fw, video, "mouse1")
        status = fw.wait_state("videos", "mouse1", timeout=120)
        assert "failed" == status["state"], status
        claimed = re.search(r"cannot see (\S+/input/mouse1\.mp4)", status["message"])
        assert claimed, status["message"]
        assert re.search(r"Dask worker tcp://127\.0\.0\.1:\d+", status["message"]), status[
            "message"
        ]
        assert (fw.failed("videos") / "mouse1.mp4").exists()
        assert 0 == fw.stop()


@needs_dask
def test_once_with_no_reachable_scheduler_gives_up_and_keeps_the_file(fw: Framewatch) -> None:
    """`once` against a scheduler nobody runs exits 1 after cluster_wait_s; the file stays put."""
    import socket

    with socket.socket() as probe:  # a loopback port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fw.env = {**dask_env(f"tcp://127.0.0.1:{port}"), "FRAMEWATCH_WORKERS__CLUSTER_WAIT_S": "3"}
    (fw.root / "src").mkdir()
    video = write_barcode_video(fw.root / "src" / "waiting", 60)
    target = fw.inbox("videos") / video.name
    video.rename(target)
    result = fw.once(timeout=120)
    assert 1 == result.returncode, result.stdout[-3000:]
    assert target.exists()
    status = fw.status("videos", "waiting")
    assert status is not None and "queued" == status["state"], status
    assert re.search(r"Not processed in this pass: .*Dask scheduler.*next pass", status["message"])
    assert not list(fw.root.glob("failed/*/*"))
