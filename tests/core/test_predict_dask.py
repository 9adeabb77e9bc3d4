"""Prediction on Dask (an external cluster of `dask scheduler` + `dask worker`
processes, `local:N`), shards for array jobs, and the merge of their manifests."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
from pathlib import Path

import pytest

from acseg_core.benchmarks.scaling import external_cluster
from acseg_core.cli import main
from acseg_core.gis.options import OutputOptions
from acseg_core.inference import cluster as cluster_module
from acseg_core.inference import collection as collection_module
from acseg_core.inference.cluster import INSTALL_HINT, parse_scheduler
from acseg_core.inference.cluster_worker import model_loads
from acseg_core.inference.collection import RUNNING, predict_collection
from acseg_core.inference.files import FileResult
from acseg_core.inference.manifest import read_manifest, read_runs
from acseg_core.inference.predict import PredictOptions
from acseg_core.inference.shards import Shard, merge_manifests, select_shard, shard_of
from acseg_core.inference.sources import iter_sources
from acseg_core.jobs import CancelToken
from tests.core.synthetic import make_regions_image, tiny_model_file

distributed = pytest.importorskip("distributed")

# the CLI's defaults: COGs with their names beside them for the GeoTIFF inputs
OPTIONS = PredictOptions(tile=64, batch=2, precision="fp32", device="cpu", outputs=OutputOptions())
CLI_OPTIONS = ["--tile", "64", "--batch", "2", "--precision", "fp32", "--device", "cpu"]
IMAGES = 8
SUFFIXES = (".tif", ".png", ".qml", ".xml")
MAPS = (".tif", ".png")


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight images, large enough that a file takes a while: GeoTIFFs and PNGs."""
    folder = tmp_path_factory.mktemp("collection")
    for i in range(IMAGES):
        name = f"img{i}.tif" if i % 2 == 0 else f"img{i}.png"
        make_regions_image(folder / name, size=(192, 160), bands=3, seed=i, crs=i % 2 == 0)
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "model.pt", smooth=0)


@pytest.fixture(scope="module")
def reference(collection: Path, model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run in this process."""
    out = tmp_path_factory.mktemp("reference")
    summary = drain(predict_collection(model_file, iter_sources([collection]), out,
                                       options=OPTIONS))  # fmt: skip
    assert (summary.ok, summary.failed) == (IMAGES, 0)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A 2-worker cluster in separate processes (`dask scheduler`, `dask worker
    --nworkers 2`), run from another folder than the tests: its address."""
    with external_cluster(2, tmp_path_factory.mktemp("cluster")) as (address, _):
        yield address


def drain(job, on_file=None):  # type: ignore[no-untyped-def]
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if progress.metrics["status"] != RUNNING and on_file is not None:
            on_file(progress)


def assert_same_bytes(out: Path, reference: Path) -> None:
    """The same outputs, byte for byte, and nothing half-written (no hidden temps)."""
    expected = sorted(p.name for p in reference.iterdir())
    found = sorted(p.name for p in out.iterdir() if p.suffix in SUFFIXES)
    assert found == expected and sum(Path(n).suffix in MAPS for n in expected) == IMAGES
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for name in expected:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def assert_each_written_once(manifest: Path, collection: Path) -> None:
    records = read_manifest(manifest)
    written = sorted(Path(r["input"]).name for r in records if r["status"] == "ok")
    assert written == sorted(p.name for p in collection.iterdir())  # each input once
    assert {r["status"] for r in records} == {"ok"}


# ------------------------------------------------------------------- Dask engines


def test_local_cluster_of_two_writes_the_bytes_of_one_process(
    collection: Path, model_file: Path, reference: Path, tmp_path: Path
) -> None:
    out, manifest = tmp_path / "out", tmp_path / "m.jsonl"
    code = main(["predict", str(model_file), str(collection), "--out", str(out), "--manifest",
                 str(manifest), "--scheduler", "local:2", *CLI_OPTIONS])  # fmt: skip
    assert code == 0
    assert_same_bytes(out, reference)
    assert_each_written_once(manifest, collection)
    [(info, _)] = read_runs(manifest)
    assert info is not None and info["scheduler"] == "local:2"


def test_nproc_is_a_local_cluster(model_file: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = []

    class Engine:
        def __init__(self, spec, *args) -> None:  # type: ignore[no-untyped-def]
            seen.append(spec)
            raise RuntimeError("stop here")

    monkeypatch.setattr(collection_module, "DaskEngine", Engine)
    with pytest.raises(RuntimeError, match="stop here"):
        drain(predict_collection(model_file, [], tmp_path / "out", nproc=3))
    assert seen == [parse_scheduler("local:3")]
    assert not (tmp_path / "out").exists()


def test_external_cluster_writes_the_same_bytes_loading_the_model_once_per_worker(
    collection: Path, model_file: Path, reference: Path, cluster: str, tmp_path: Path,
    monkeypatch, capsys,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    """Relative paths from another folder than the workers'; progress with an ETA."""
    monkeypatch.chdir(tmp_path)
    inputs = os.path.relpath(collection, tmp_path)
    code = main(["predict", str(model_file), inputs, "--out", "out", "--manifest", "m.jsonl",
                 "--scheduler", cluster, *CLI_OPTIONS])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"[1/{IMAGES}] ") and lines[0].endswith(" left")
    assert_same_bytes(tmp_path / "out", reference)
    assert_each_written_once(tmp_path / "m.jsonl", collection)
    assert all(not Path(r["input"]).is_absolute() for r in read_manifest(tmp_path / "m.jsonl"))
    # a second collection on the same cluster: still one load per worker process
    drain(predict_collection(model_file, iter_sources([collection]), tmp_path / "again",
                             options=OPTIONS, scheduler=cluster))  # fmt: skip
    with distributed.Client(cluster, set_as_default=False) as client:
        loads = client.run(model_loads)
    assert len(loads) == 2 and set(loads.values()) == {1}


def test_a_worker_killed_mid_run_still_writes_every_file_once(
    collection: Path, model_file: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    out, manifest = tmp_path / "out", tmp_path / "m.jsonl"
    client = distributed.Client(cluster, set_as_default=False)
    killed: list[str] = []
    mid_file: list[str] = []  # the task it was running when killed

    def executing(dask_worker) -> list[str]:  # type: ignore[no-untyped-def]
        """Keys of the tasks a worker runs now (defined here: sent by value)."""
        return [str(task.key) for task in dask_worker.state.executing]

    def kill_a_busy_worker(result: FileResult) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("acseg-predict") for k in keys)]  # fmt: skip
        if busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            running = client.run(executing, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(busy[0])
            mid_file.extend(k for k in running if k.startswith("acseg-predict"))

    try:
        summary = drain(predict_collection(
            model_file, iter_sources([collection]), out, options=OPTIONS, manifest=manifest,
            scheduler=cluster, on_result=kill_a_busy_worker,
        ))  # fmt: skip
        assert killed, "no worker was busy after the first file"
        assert mid_file, "the worker killed was not running a file"
        assert killed[0] not in client.nthreads()  # it did die (its nanny starts a new one)
    finally:
        client.close()
    assert (summary.ok, summary.failed, summary.cancelled) == (IMAGES, 0, False)
    assert_same_bytes(out, reference)
    assert_each_written_once(manifest, collection)


def test_cancel_drops_the_files_in_flight_and_resume_completes(
    collection: Path, model_file: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    out, manifest = tmp_path / "out", tmp_path / "m.jsonl"
    token = CancelToken()
    first = drain(
        predict_collection(model_file, iter_sources([collection]), out, options=OPTIONS,
                           manifest=manifest, scheduler=cluster, cancel=token),
        on_file=lambda progress: token.cancel(),
    )  # fmt: skip
    assert first.cancelled and 1 <= first.ok < IMAGES
    done = sorted(p.name for p in out.iterdir())
    maps = [n for n in done if Path(n).suffix in MAPS]
    assert len(maps) == first.ok and not [n for n in done if n.startswith(".")]
    second = drain(predict_collection(model_file, iter_sources([collection]), out,
                                      options=OPTIONS, manifest=manifest, scheduler=cluster,
                                      resume=True))  # fmt: skip
    assert (second.ok, second.skipped, second.cancelled) == (IMAGES - first.ok, first.ok, False)
    assert_same_bytes(out, reference)
    written = [r["input"] for r in read_manifest(manifest) if r["status"] == "ok"]
    assert len(written) == len(set(written)) == IMAGES


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["nonsense", "local:0", "tcp://nowhere.invalid:8786",
                                     "tcp://127.0.0.1:{port}"])  # fmt: skip
def test_a_bad_scheduler_address_is_one_line_and_writes_nothing(
    address: str, collection: Path, model_file: Path, tmp_path: Path, monkeypatch, capsys,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 1.0)
    address = address.format(port=_closed_port())
    out, manifest = tmp_path / "out", tmp_path / "m.jsonl"
    code = main(["predict", str(model_file), str(collection), "--out", str(out), "--manifest",
                 str(manifest), "--scheduler", address, *CLI_OPTIONS])  # fmt: skip
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1, captured.err
    assert lines[0].startswith("acseg-core predict: error: ") and address in lines[0]
    assert not out.exists() and not manifest.exists() and captured.out == ""


def test_without_dask_the_scheduler_is_one_line_naming_the_install(
    collection: Path, model_file: Path, tmp_path: Path, monkeypatch, capsys  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # import fails
    out = tmp_path / "out"
    for flag in (["--scheduler", "tcp://127.0.0.1:8786"], ["--nproc", "2"]):
        code = main(["predict", str(model_file), str(collection), "--out", str(out), *flag])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err == [f"acseg-core predict: error: {INSTALL_HINT}"]
        assert not out.exists()


# ------------------------------------------------------------ shards and merging


def test_shards_are_stable_under_shuffling_and_cover_every_input_once() -> None:
    rng = random.Random(0)
    paths = [Path(f"/data/{year}/tile_{i:04d}.tif") for year in (2020, 2021) for i in range(150)]
    for count in (1, 3, 7):
        shards = [Shard(i, count) for i in range(count)]
        first = [set(select_shard(paths, shard)) for shard in shards]
        for _ in range(3):
            shuffled = rng.sample(paths, len(paths))
            assert [set(select_shard(shuffled, shard)) for shard in shards] == first
        assert sum(len(s) for s in first) == len(paths) and set().union(*first) == set(paths)
        if count == 7:
            assert min(len(s) for s in first) > 0.5 * len(paths) / count  # roughly even
    # the same file however it is named, and inputs that would share an output together
    assert shard_of(Path("tiles/a.tif"), 5) == shard_of(Path("/mnt/x/tiles/a.tif"), 5)
    assert shard_of(Path("2020/tile_0007.tif"), 5) == shard_of(Path("2021/tile_0007.png"), 5)
    for text in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(Exception, match="expected I/N"):
            Shard.parse(text)


@pytest.fixture(scope="module")
def shard_runs(
    collection: Path, model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Path]]:
    """`--shard 0/3`, `1/3`, `2/3` into one folder (the last with its default manifest)."""
    root = tmp_path_factory.mktemp("shards")
    out, manifests = root / "out", []
    for index in range(3):
        manifest = root / f"m{index}.jsonl"
        flags = ["--manifest", str(manifest)] if index < 2 else []
        code = main(["predict", str(model_file), str(collection), "--out", str(out),
                     "--shard", f"{index}/3", *flags, *CLI_OPTIONS])  # fmt: skip
        assert code == 0
        if index == 2:
            (out / "manifest.shard-2-of-3.jsonl").rename(manifest)
        manifests.append(manifest)
    return out, manifests


def test_the_union_of_three_shards_is_the_single_run_and_merges_complete(
    shard_runs: tuple[Path, list[Path]], collection: Path, reference: Path, tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    out, manifests = shard_runs
    assert_same_bytes(out, reference)
    per_shard = [len(read_manifest(m)) for m in manifests]
    assert sum(per_shard) == IMAGES and all(n < IMAGES for n in per_shard)
    merged = tmp_path / "all.csv"
    code = main(["manifest", "merge", *map(str, manifests), "--out", str(merged)])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert f"{IMAGES} input(s) of {IMAGES} expected: {IMAGES} ok" in captured.out
    assert_each_written_once(merged, collection)


def test_merge_names_missing_inputs_missing_shards_and_failures(
    shard_runs: tuple[Path, list[Path]], collection: Path, model_file: Path, tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    _, manifests = shard_runs
    # shard 2 never ran; shard 1 lost its last record; one input of shard 0 failed
    lines = manifests[1].read_text().splitlines()
    lost = json.loads(lines[-1])["input"]
    shard1 = tmp_path / "m1.jsonl"
    shard1.write_text("\n".join(lines[:-1]) + "\n")
    shard0 = tmp_path / "m0.jsonl"
    written = read_manifest(manifests[0])[0]["input"]  # then, in a rerun, an error
    broken = {"input": written, "output": "", "status": "error", "seconds": 0.1,
              "error": f"{written}: unreadable"}  # fmt: skip
    shard0.write_text(manifests[0].read_text() + json.dumps(broken) + "\n")
    todo = tmp_path / "todo.txt"
    code = main(["manifest", "merge", str(shard0), str(shard1), "--out",
                 str(tmp_path / "m.jsonl"), "--todo", str(todo)])  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    absent = sorted(str(p) for p in collection.iterdir() if Shard(2, 3).holds(p))
    expected_missing = sorted([*absent, lost])
    assert "acseg-core manifest: shard 2/3: no manifest among those given" in err
    assert [e.split("missing: ")[1] for e in err if "missing: " in e] == expected_missing
    # an input written before its error record is done: ok beats an error
    assert not [e for e in err if "failed: " in e]
    assert sorted(todo.read_text().split()) == expected_missing
    # the to-do list is what a rerun needs
    out = tmp_path / "rest"
    code = main(["predict", str(model_file), "--list", str(todo), "--out", str(out),
                 *CLI_OPTIONS])  # fmt: skip
    maps = [p for p in out.iterdir() if p.suffix in MAPS]
    assert code == 0 and len(maps) == len(expected_missing)


def test_merge_reports_an_input_that_only_failed(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    records = [
        {"input": "a.tif", "output": "o/a_clusters.tif", "status": "ok", "seconds": 1, "error": ""},
        {"input": "b.tif", "output": "", "status": "error", "seconds": 0, "error": "b: broken"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = merge_manifests([manifest], expected=[Path("a.tif"), Path("b.tif"), Path("c.tif")])
    assert [r["error"] for r in report.failed] == ["b: broken"]
    assert report.missing == [str(Path("c.tif").absolute())]
