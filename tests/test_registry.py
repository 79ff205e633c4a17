"""The model registry against a real SQLite database and artifact store on tmp_path."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aiaas_jupyter.errors import (
    IntegrityError,
    InvalidNameError,
    JobNotFoundError,
    ModelNotFoundError,
    RegistryError,
)
from aiaas_jupyter.registry import JobRecord, ModelVersion, Registry, default_home, parse_ref, validate_name


def _register(reg: Registry, name: str, artifacts: dict[str, bytes] | None = None, **overrides) -> ModelVersion:
    kwargs = dict(framework="sklearn", artifacts=artifacts or {"model.skops": b"model-bytes"},
                  params={"C": 1.0}, metrics={"accuracy": 0.9}, library_versions={"sklearn": "1.5.0"},
                  data_fingerprint="f" * 64, source="model = LogisticRegression()", job_id="job-1")
    kwargs.update(overrides)
    return reg.register(name, **kwargs)


def _blob_files(reg: Registry) -> list[Path]:
    root = reg.home / "artifacts"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(tmp_path / "home")


# ---- register / get ---------------------------------------------------------------------

def test_register_returns_what_get_returns(reg):
    before = dt.datetime.now(dt.timezone.utc)
    mv = _register(reg, "iris", extra={"task": "classification", "classes": [0, 1, 2]})
    assert mv.name == "iris" and mv.version == 1 and mv.ref == "iris:1"
    assert mv.framework == "sklearn"
    assert mv.params == {"C": 1.0} and mv.metrics == {"accuracy": 0.9}
    assert mv.library_versions == {"sklearn": "1.5.0"}
    assert mv.data_fingerprint == "f" * 64 and mv.source == "model = LogisticRegression()"
    assert mv.job_id == "job-1"
    assert mv.artifacts == {"model.skops": hashlib.sha256(b"model-bytes").hexdigest()}
    assert mv.extra == {"task": "classification", "classes": [0, 1, 2]}
    assert mv.aliases == ()
    created = dt.datetime.fromisoformat(mv.created)
    assert created.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.timezone.utc)
    assert reg.get("iris") == mv
    assert reg.get("iris:1") == mv


def test_versions_increase_and_refs_resolve(reg):
    mvs = [_register(reg, "iris", metrics={"accuracy": a}) for a in (0.1, 0.2, 0.3)]
    assert [mv.version for mv in mvs] == [1, 2, 3]
    assert reg.get("iris").version == 3
    assert reg.get("iris:2").metrics == {"accuracy": 0.2}
    assert [mv.version for mv in reg.versions("iris")] == [1, 2, 3]
    reg.set_alias("iris", 2, "prod")
    assert reg.get("iris@prod").version == 2
    assert reg.get("iris@prod").aliases == ("prod",)
    assert reg.get("iris:1").aliases == ()
    assert [mv.aliases for mv in reg.versions("iris")] == [(), ("prod",), ()]


def test_multi_artifact_version_round_trips(reg):
    files = {"model.safetensors": b"\x00tensors", "model.onnx": b"onnx-graph", "model.json": b"{}"}
    mv = _register(reg, "net", artifacts=files, framework="torch")
    assert set(mv.artifacts) == set(files)
    assert reg.read_artifacts(mv) == files
    assert reg.read_artifacts("net:1") == files


def test_model_version_to_dict(reg):
    mv = _register(reg, "iris")
    reg.set_alias("iris", 1, "prod")
    d = reg.get("iris").to_dict()
    assert d["ref"] == "iris:1" and d["aliases"] == ["prod"] and d["params"] == {"C": 1.0}
    with pytest.raises(AttributeError):
        mv.version = 5  # frozen


def test_list_models_summaries(reg):
    assert reg.list_models() == []
    _register(reg, "zeta", metrics={"r2": 0.1}, framework="torch")
    _register(reg, "alpha", metrics={"accuracy": 0.5})
    last = _register(reg, "alpha", metrics={"accuracy": 0.7})
    reg.set_alias("alpha", 1, "prod")
    reg.set_alias("alpha", 2, "staging")
    summaries = reg.list_models()
    assert [s["name"] for s in summaries] == ["alpha", "zeta"]
    alpha, zeta = summaries
    assert alpha == {"name": "alpha", "latest": 2, "n_versions": 2, "aliases": {"prod": 1, "staging": 2},
                     "framework": "sklearn", "metrics": {"accuracy": 0.7}, "created": last.created}
    assert zeta["latest"] == 1 and zeta["n_versions"] == 1 and zeta["aliases"] == {}
    assert zeta["framework"] == "torch" and zeta["metrics"] == {"r2": 0.1}


# ---- aliases ------------------------------------------------------------------------------

def test_alias_can_be_repointed_and_removed(reg):
    for _ in range(3):
        _register(reg, "iris")
    reg.set_alias("iris", 1, "prod")
    repointed = reg.set_alias("iris", 3, "prod")
    assert repointed.version == 3 and repointed.aliases == ("prod",)
    assert reg.get("iris@prod").version == 3
    assert reg.get("iris:1").aliases == ()
    assert reg.list_models()[0]["aliases"] == {"prod": 3}
    reg.remove_alias("iris", "prod")
    with pytest.raises(ModelNotFoundError, match="no alias 'prod'"):
        reg.get("iris@prod")
    with pytest.raises(ModelNotFoundError):
        reg.remove_alias("iris", "prod")


def test_alias_to_missing_version_or_model_is_rejected(reg):
    _register(reg, "iris")
    with pytest.raises(ModelNotFoundError, match="has no version 9"):
        reg.set_alias("iris", 9, "prod")
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        reg.set_alias("nope", 1, "prod")
    with pytest.raises(InvalidNameError):
        reg.set_alias("iris", 1, "../prod")
    assert reg.list_models()[0]["aliases"] == {}


# ---- delete -------------------------------------------------------------------------------

def test_deleted_version_numbers_are_never_reused(reg):
    for _ in range(3):
        _register(reg, "iris")
    reg.set_alias("iris", 3, "prod")
    assert reg.delete("iris", 3) == [3]
    with pytest.raises(ModelNotFoundError):
        reg.get("iris:3")
    with pytest.raises(ModelNotFoundError):
        reg.get("iris@prod")  # the alias went with its version
    assert reg.get("iris").version == 2
    assert _register(reg, "iris").version == 4
    reg.delete("iris", 1)
    assert [mv.version for mv in reg.versions("iris")] == [2, 4]
    assert reg.list_models()[0]["n_versions"] == 2


def test_deleting_every_version_one_by_one_keeps_the_counter(reg):
    _register(reg, "iris")
    reg.delete("iris", 1)
    assert reg.list_models() == []
    assert _register(reg, "iris").version == 2


def test_delete_whole_model(reg):
    for _ in range(3):
        _register(reg, "iris")
    _register(reg, "other")
    reg.set_alias("iris", 2, "prod")
    assert reg.delete("iris") == [1, 2, 3]
    assert [s["name"] for s in reg.list_models()] == ["other"]
    with pytest.raises(ModelNotFoundError):
        reg.get("iris@prod")
    with pytest.raises(ModelNotFoundError):
        reg.versions("iris")
    # the counter row went too: a new model of that name starts afresh
    assert _register(reg, "iris").version == 1
    assert reg.get("iris").aliases == ()


def test_delete_unknown_raises(reg):
    _register(reg, "iris")
    with pytest.raises(ModelNotFoundError, match="has no version 5"):
        reg.delete("iris", 5)
    with pytest.raises(ModelNotFoundError, match="no model named 'ghost'"):
        reg.delete("ghost")
    assert reg.get("iris").version == 1


# ---- not-found messages -------------------------------------------------------------------

def test_not_found_messages_name_the_missing_thing_and_hint(reg):
    with pytest.raises(ModelNotFoundError) as e:
        reg.get("iris")
    assert e.value.message == "no model named 'iris'" and "%aiaas models" in e.value.hint
    for _ in range(2):
        _register(reg, "iris")
    reg.set_alias("iris", 1, "prod")
    with pytest.raises(ModelNotFoundError) as e:
        reg.get("irsi")
    assert "'iris'" in e.value.hint  # a close match is suggested
    with pytest.raises(ModelNotFoundError) as e:
        reg.get("iris:7")
    assert e.value.message == "model 'iris' has no version 7" and "1, 2" in e.value.hint
    with pytest.raises(ModelNotFoundError) as e:
        reg.get("iris@staging")
    assert e.value.message == "model 'iris' has no alias 'staging'" and "@prod -> 1" in e.value.hint
    assert isinstance(e.value, KeyError)
    assert str(e.value).startswith("model 'iris'")  # not KeyError's quoted repr
    assert "\n" not in str(e.value)


def test_reading_a_fresh_home_creates_nothing(tmp_path):
    reg = Registry(tmp_path / "never")
    assert reg.list_models() == [] and reg.list_jobs() == []
    with pytest.raises(ModelNotFoundError):
        reg.get("iris")
    with pytest.raises(JobNotFoundError):
        reg.get_job("j")
    assert not (tmp_path / "never").exists()


# ---- names --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../evil", "a/b", "..", ".", "", "a b", "x" * 200, "x;rm", "a..b",
                                 ".hidden", "-flag", "a\\b", "a:b", "a@b", "é", "a\n", None, 3])
def test_invalid_names_are_rejected(reg, bad):
    with pytest.raises(InvalidNameError) as e:
        validate_name(bad)
    assert e.value.hint and "\n" not in str(e.value)
    with pytest.raises(InvalidNameError):
        _register(reg, bad)
    assert reg.list_models() == []


@pytest.mark.parametrize("good", ["iris", "Iris_2", "a", "7", "my-model.v1", "x" * 128, "a.b-c_d"])
def test_valid_names_are_accepted(reg, good):
    assert validate_name(good) == good
    assert _register(reg, good).name == good
    assert reg.get(good).name == good


@pytest.mark.parametrize("filename", ["../x", "a/b.skops", "", ".."])
def test_unsafe_artifact_filenames_are_rejected(reg, filename):
    with pytest.raises(InvalidNameError, match="artifact file"):
        _register(reg, "iris", artifacts={filename: b"x"})
    assert reg.list_models() == [] and _blob_files(reg) == []


@pytest.mark.parametrize("ref, parsed", [("iris", ("iris", None, None)), ("iris:3", ("iris", 3, None)),
                                         ("iris@prod", ("iris", None, "prod")), (" iris:12 ", ("iris", 12, None))])
def test_parse_ref(ref, parsed):
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("bad", ["a:b", "a:", "a@", "a:1@x", "a@x:1", "a:0", "a:-1", "a::1", "a@@x", "",
                                 ":1", "@x", "../x:1", "a@../x", "a:1.5", None])
def test_parse_ref_rejects_bad_forms(bad):
    with pytest.raises(InvalidNameError):
        parse_ref(bad)


# ---- atomicity / validation ---------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("metrics", {"accuracy": object()}), ("params", {"f": print}),
                                          ("extra", {"s": {1, 2}}), ("library_versions", ["not", "a", "dict"])])
def test_non_json_values_write_nothing(reg, field, value):
    with pytest.raises(RegistryError) as e:
        _register(reg, "iris", **{field: value})
    assert field in e.value.message and e.value.hint
    assert reg.list_models() == []
    assert _blob_files(reg) == []


def test_failed_registration_does_not_consume_a_version(reg):
    _register(reg, "iris")
    with pytest.raises(RegistryError):
        _register(reg, "iris", metrics={"bad": object()})
    with pytest.raises(RegistryError, match="must be bytes"):
        _register(reg, "iris", artifacts={"model.skops": "text, not bytes"})
    assert _register(reg, "iris").version == 2


def test_database_uses_wal_and_artifact_layout(reg):
    mv = _register(reg, "iris")
    with sqlite3.connect(reg.home / "registry.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    sha = mv.artifacts["model.skops"]
    assert _blob_files(reg) == [reg.home / "artifacts" / sha[:2] / sha]
    assert not list((reg.home / "artifacts").rglob(".tmp-*"))


# ---- integrity / content addressing ---------------------------------------------------------

def test_corrupted_blob_raises_integrity_error(reg):
    mv = _register(reg, "iris", artifacts={"model.skops": b"good", "meta.json": b"{}"})
    sha = mv.artifacts["model.skops"]
    (reg.home / "artifacts" / sha[:2] / sha).write_bytes(b"evil")
    with pytest.raises(IntegrityError) as e:
        reg.read_artifacts("iris")
    assert "model.skops" in e.value.message and "iris:1" in e.value.message


def test_missing_blob_raises_integrity_error(reg):
    mv = _register(reg, "iris")
    sha = mv.artifacts["model.skops"]
    (reg.home / "artifacts" / sha[:2] / sha).unlink()
    with pytest.raises(IntegrityError, match="'model.skops' of iris:1 is missing"):
        reg.read_artifacts(mv)


def test_identical_artifacts_are_stored_once(reg):
    a = _register(reg, "iris", artifacts={"model.skops": b"same"})
    b = _register(reg, "other", artifacts={"model.skops": b"same", "copy.skops": b"same"})
    assert a.artifacts["model.skops"] == b.artifacts["model.skops"] == b.artifacts["copy.skops"]
    assert len(_blob_files(reg)) == 1
    assert reg.read_artifacts(b) == {"model.skops": b"same", "copy.skops": b"same"}


def test_unreferenced_blobs_are_removed_shared_ones_kept(reg):
    v1 = _register(reg, "iris", artifacts={"model.skops": b"shared", "only1.json": b"one"})
    v2 = _register(reg, "iris", artifacts={"model.skops": b"shared", "only2.json": b"two"})
    path = lambda sha: reg.home / "artifacts" / sha[:2] / sha  # noqa: E731
    reg.delete("iris", 1)
    assert not path(v1.artifacts["only1.json"]).exists()
    assert path(v1.artifacts["model.skops"]).exists()
    assert reg.read_artifacts("iris:2") == {"model.skops": b"shared", "only2.json": b"two"}
    reg.delete("iris")
    assert not path(v2.artifacts["model.skops"]).exists()
    assert _blob_files(reg) == []


def test_truncated_blob_is_rewritten_on_register(reg):
    mv = _register(reg, "iris", artifacts={"model.skops": b"full content"})
    sha = mv.artifacts["model.skops"]
    (reg.home / "artifacts" / sha[:2] / sha).write_bytes(b"full")
    _register(reg, "iris", artifacts={"model.skops": b"full content"})
    assert reg.read_artifacts("iris:1") == {"model.skops": b"full content"}


# ---- concurrency ----------------------------------------------------------------------------

def _register_many(home: str, name: str, worker: int, n: int, start_at: float) -> list[int]:
    """Runs in a spawned process: its own Registry on the shared (initially absent) home.
    All workers start writing at ``start_at`` so that they really contend."""
    reg = Registry(home)
    time.sleep(max(0.0, start_at - time.time()))
    return [_register(reg, name, artifacts={"model.skops": f"{worker}-{i}".encode()}).version
            for i in range(n)]


def _run_processes(home: Path, names: list[str], n: int) -> list[list[int]]:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # time for the spawned interpreters to come up
    with ctx.Pool(len(names)) as pool:
        results = [pool.apply_async(_register_many, (str(home), name, w, n, start_at))
                   for w, name in enumerate(names)]
        return [r.get(timeout=120) for r in results]  # re-raises any worker exception


@pytest.mark.slow
def test_concurrent_processes_same_model_get_distinct_versions(tmp_path):
    home = tmp_path / "shared"
    per_worker = _run_processes(home, ["iris"] * 4, 50)
    got = sorted(v for versions in per_worker for v in versions)
    assert got == list(range(1, 201))
    assert all(vs == sorted(vs) for vs in per_worker)
    reg = Registry(home)
    assert [mv.version for mv in reg.versions("iris")] == list(range(1, 201))
    assert reg.list_models()[0]["n_versions"] == 200
    assert len(_blob_files(reg)) == 200
    assert reg.read_artifacts("iris:200")


@pytest.mark.slow
def test_concurrent_processes_different_models(tmp_path):
    home = tmp_path / "shared"
    names = [f"model-{w}" for w in range(4)]
    per_worker = _run_processes(home, names, 50)
    assert per_worker == [list(range(1, 51))] * 4
    assert [(s["name"], s["latest"], s["n_versions"]) for s in Registry(home).list_models()] == \
        [(name, 50, 50) for name in names]


def test_threads_share_one_registry(reg):
    reg.record_job(JobRecord("j"))
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(20):
                reg.update_job("j", progress=(k * 20 + i) / 100)
                _register(reg, f"t{k}", artifacts={"model.skops": f"{k}-{i}".encode()})
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(50):
                reg.get_job("j")
                reg.list_models()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s["n_versions"] for s in reg.list_models()] == [20, 20, 20]


# ---- jobs -----------------------------------------------------------------------------------

def test_job_record_update_get(reg):
    rec = JobRecord("job-a", model="iris", gpus=1, scheduler="tcp://10.0.0.1:8786", key="train-abc",
                    info={"epochs": 3, "history": [{"loss": 0.5}]})
    reg.record_job(rec)
    assert reg.get_job("job-a") == rec
    updated = reg.update_job("job-a", status="running", worker="tcp://w1:4000", started="2025-01-01T00:00:00+00:00")
    assert updated.status == "running" and updated.worker == "tcp://w1:4000"
    assert updated.model == "iris" and updated.info == rec.info  # untouched fields kept
    reg.update_job("job-a", status="finished", progress=1.0, duration_s=12.5, gpu_seconds=12.5, version=3,
                   info={"n": None, "nested": {"a": [1, 2.5, "x", True]}})
    got = reg.get_job("job-a")
    assert (got.status, got.progress, got.duration_s, got.gpu_seconds, got.version) == \
        ("finished", 1.0, 12.5, 12.5, 3)
    assert got.info == {"n": None, "nested": {"a": [1, 2.5, "x", True]}}
    assert got.to_dict()["id"] == "job-a"


def test_job_defaults(reg):
    reg.record_job(JobRecord("j"))
    job = reg.get_job("j")
    assert (job.status, job.progress, job.gpus, job.model, job.error, job.info) == ("pending", 0.0, 0, None, None, {})
    assert dt.datetime.fromisoformat(job.submitted).utcoffset() == dt.timedelta(0)


def test_list_jobs_newest_first_with_limit(reg):
    base = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    order = [3, 0, 4, 1, 2]
    for i in order:
        reg.record_job(JobRecord(f"job-{i}", submitted=(base + dt.timedelta(minutes=i)).isoformat()))
    assert [j.id for j in reg.list_jobs()] == ["job-4", "job-3", "job-2", "job-1", "job-0"]
    assert [j.id for j in reg.list_jobs(limit=2)] == ["job-4", "job-3"]


def test_list_jobs_same_timestamp_newest_insert_first(reg):
    for i in range(3):
        reg.record_job(JobRecord(f"j{i}", submitted="2025-01-01T00:00:00+00:00"))
    assert [j.id for j in reg.list_jobs()] == ["j2", "j1", "j0"]


def test_job_errors(reg):
    with pytest.raises(JobNotFoundError) as e:
        reg.get_job("ghost")
    assert "ghost" in e.value.message and "%aiaas jobs" in e.value.hint
    with pytest.raises(JobNotFoundError):
        reg.update_job("ghost", status="running")
    reg.record_job(JobRecord("j"))
    with pytest.raises(ValueError, match="colour"):
        reg.update_job("j", colour="red")
    with pytest.raises(ValueError, match="id"):
        reg.update_job("j", id="other")
    with pytest.raises(ValueError, match="status"):
        reg.update_job("j", status="exploded")
    with pytest.raises(RegistryError, match="JSON"):
        reg.update_job("j", info={"x": object()})
    with pytest.raises(RegistryError, match="already recorded"):
        reg.record_job(JobRecord("j"))
    assert reg.get_job("j").status == "pending"


# ---- performance / import cost ----------------------------------------------------------------

@pytest.mark.slow
def test_list_models_is_fast_for_1000_models(reg):
    for i in range(1000):
        _register(reg, f"model-{i:04d}", artifacts={"model.skops": b"tiny"}, metrics={"accuracy": i / 1000})
    reg.set_alias("model-0007", 1, "prod")
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        summaries = reg.list_models()
        timings.append(time.perf_counter() - start)
    assert len(summaries) == 1000 and summaries[7]["aliases"] == {"prod": 1}
    assert summaries[999]["metrics"] == {"accuracy": 0.999}
    assert statistics.median(timings) < 0.050, timings


def test_import_is_light_and_construction_lazy(tmp_path):
    code = (
        "import sys\n"
        "from aiaas_jupyter.registry import Registry\n"
        f"reg = Registry({str(tmp_path / 'h')!r}); reg.list_models()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'numpy', 'pandas', 'dask', 'distributed', 'sklearn', 'torch'})\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not (tmp_path / "h").exists()


def test_default_home(monkeypatch, tmp_path):
    monkeypatch.setenv("AIAAS_HOME", str(tmp_path / "custom"))
    assert default_home() == tmp_path / "custom"
    assert Registry().home == tmp_path / "custom"
    monkeypatch.delenv("AIAAS_HOME")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jdata"))
    assert default_home() == tmp_path / "jdata" / "aiaas"


def test_damaged_database_is_one_clear_error(tmp_path):
    """Bytes that are not SQLite where the database should be: every read and write says so
    in one domain error with a hint (the sidebar shows it), nothing is overwritten."""
    from aiaas_jupyter.errors import IntegrityError as RegistryIntegrityError

    reg = Registry(tmp_path)
    garbage = b"this is not an SQLite database" * 100
    (tmp_path / "registry.sqlite3").write_bytes(garbage)
    for call in (reg.list_models, lambda: reg.list_jobs(10), lambda: reg.set_alias("m", 1, "prod")):
        with pytest.raises(RegistryIntegrityError, match="registry database .* is damaged") as info:
            call()
        assert "AIAAS_HOME" in info.value.hint
    assert (tmp_path / "registry.sqlite3").read_bytes() == garbage
