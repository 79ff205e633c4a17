"""Issue 11, "one source of truth": each piece of knowledge written once, every user reading it.

Each test here introspects the places that used to carry their own copy (argparse defaults,
signatures, dataclass fields, widget values, SQLite rows) and compares them with the one source,
so a copy that creeps back in, or a source that changes alone, fails here and not in a notebook.
"""

from __future__ import annotations

import dataclasses
import inspect
from types import SimpleNamespace

from aiaas_jupyter.train_defaults import TRAIN_DEFAULTS


def _keyword_defaults(func) -> dict:
    params = inspect.signature(func).parameters
    return {k: params[k].default for k in TRAIN_DEFAULTS}


# -- train defaults ------------------------------------------------------------------------
def test_the_parser_defaults_are_the_train_defaults():
    from aiaas_jupyter.magics.parser import build_parser

    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions).choices["train"]
    assert {k: train.get_default(k) for k in TRAIN_DEFAULTS} == dict(TRAIN_DEFAULTS)
    text = train.format_help()  # the help shows the same values (%(default)s, no literal copies)
    for flag in ("test_size", "gpus", "epochs", "batch_size", "seed"):
        assert f"({TRAIN_DEFAULTS[flag]})" in " ".join(text.split())


def test_trainspec_fields_default_to_the_train_defaults():
    from aiaas_jupyter.training.base import TrainSpec

    fields = {f.name: f.default for f in dataclasses.fields(TrainSpec)}
    assert {k: fields[k] for k in TRAIN_DEFAULTS} == dict(TRAIN_DEFAULTS)


def test_the_roundtrip_signature_uses_the_train_defaults():
    from aiaas_jupyter.widgets.roundtrip import train_magic

    assert _keyword_defaults(train_magic) == dict(TRAIN_DEFAULTS)
    # a cell at the defaults writes none of them
    assert train_magic(data="d", target="t", body="model = 1") == "%%aiaas train --data d --target t\nmodel = 1\n"


def test_the_train_form_starts_at_the_train_defaults():
    from aiaas_jupyter.widgets.train_form import TrainForm

    assert _keyword_defaults(TrainForm.__init__) == dict(TRAIN_DEFAULTS)
    form = TrainForm(client=SimpleNamespace(dask=None), namespace={})
    shown = {"test_size": form.test_size.value, "gpus": form.gpus.value, "epochs": form.epochs.value,
             "batch_size": form.batch_size.value, "seed": form.seed.value}
    assert shown == {k: TRAIN_DEFAULTS[k] for k in shown}
    # a scikit-learn model submits the PyTorch options at their defaults
    options = form.choices().options()
    assert {k: options[k] for k in ("epochs", "batch_size", "lr")} == \
        {k: TRAIN_DEFAULTS[k] for k in ("epochs", "batch_size", "lr")}


def test_the_facade_train_signature_uses_the_train_defaults():
    from aiaas_jupyter.client import AiaasClient

    assert _keyword_defaults(AiaasClient.train) == dict(TRAIN_DEFAULTS)


# -- timestamps ----------------------------------------------------------------------------
def test_job_timestamps_written_through_the_registry_parse_and_sort_in_write_order(tmp_path):
    """Every registry writer stamps with ``clock.now_iso``: fixed-width microseconds, so the
    text sorts as the times do, even for events within the same second."""
    from aiaas_jupyter import clock
    from aiaas_jupyter.registry import JobRecord, Registry

    reg = Registry(tmp_path / "home")
    written = []
    for i in range(5):
        reg.record_job(JobRecord(f"job-{i}"))  # submitted: the table's own default stamp
        reg.update_job(f"job-{i}", started=clock.now_iso())
        reg.update_job(f"job-{i}", finished=clock.now_iso())
        job = reg.get_job(f"job-{i}")
        written += [job.submitted, job.started, job.finished]
    parsed = [clock.parse_iso(t) for t in written]
    assert all(p.utcoffset() is not None and p.utcoffset().total_seconds() == 0 for p in parsed)
    assert len({len(t) for t in written}) == 1  # one width: text order is time order
    assert written == sorted(written) and parsed == sorted(parsed)
    assert [j.id for j in reg.list_jobs()] == [f"job-{i}" for i in reversed(range(5))]


def test_other_registry_and_server_stamps_come_from_the_clock(tmp_path):
    from aiaas_jupyter import clock, cluster_snapshot
    from aiaas_jupyter.registry import Registry

    reg = Registry(tmp_path / "home")
    reg.add_endpoint("gpt", "https://api.example.com/v1", "openai")
    stamps = [reg.get_endpoint("gpt").created]
    cluster_snapshot.record(tmp_path / "home", {"scheduler": "tcp://127.0.0.1:1", "workers": []})
    stamps.append(cluster_snapshot.read_raw(tmp_path / "home")["recorded_at"])
    from aiaas_jupyter.serving.state import write_server_info

    stamps.append(write_server_info(tmp_path / "home", "http://127.0.0.1:9", tls=False).started)
    for text in stamps:
        assert len(text) == len(clock.now_iso()) and clock.parse_iso(text).utcoffset().total_seconds() == 0


# -- package versions ----------------------------------------------------------------------
def test_one_list_of_packages_for_the_worker_check_and_the_model_record():
    from aiaas_jupyter.dependencies import PACKAGES, package_versions
    from aiaas_jupyter.training.common import library_versions

    every = package_versions()
    assert list(every) == ["python", *PACKAGES]          # None where not installed: comparable
    assert every["scikit-learn"] and every["aiaas-jupyter"]
    recorded = library_versions()
    assert recorded == {k: v for k, v in every.items() if v is not None}  # installed ones only
    assert None not in recorded.values()
    package_versions()["numpy"] = "tampered"              # callers get their own copy
    assert package_versions()["numpy"] == every["numpy"]


# -- target checks -------------------------------------------------------------------------
def test_one_target_check_in_the_kernel_and_on_the_worker():
    import dask.dataframe as dd
    import pandas as pd
    import pytest

    from aiaas_jupyter.errors import DataError
    from aiaas_jupyter.target_check import check_target
    from aiaas_jupyter.training.base import TrainSpec
    from aiaas_jupyter.training.common import features_and_target

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    check_target(frame, "y")
    check_target(dd.from_pandas(frame, npartitions=1), "y")
    cases = [(frame, "nope", "target column 'nope' is not in the data", "columns: x, y"),
             (dd.from_pandas(frame, npartitions=1), "nope", "target column 'nope' is not in the data", "columns: x, y"),
             (frame[["y"]], "y", "the data has no feature columns besides the target", None),
             (frame.head(1), "y", "need at least 2 rows to train and evaluate, got 1", None),
             (frame.to_numpy(), "y", "training data must be a pandas or Dask DataFrame, got ndarray", None)]
    for data, target, message, hint in cases:
        with pytest.raises(DataError) as kernel_side:
            check_target(data, target)
        assert (kernel_side.value.message, kernel_side.value.hint) == (message, hint)
        if isinstance(data, dd.DataFrame):
            continue
        with pytest.raises(DataError) as worker_side:
            features_and_target(TrainSpec(model=None, target=target), data)
        assert str(worker_side.value) == str(kernel_side.value)


# -- limits --------------------------------------------------------------------------------
def test_the_parser_and_the_registry_refuse_the_same_versions():
    import pytest

    from aiaas_jupyter.errors import InvalidNameError
    from aiaas_jupyter.limits import MAX_VERSION
    from aiaas_jupyter.magics import bounds
    from aiaas_jupyter.registry import names

    assert bounds.MAX_VERSION is names.MAX_VERSION is MAX_VERSION
    assert names.validate_version(MAX_VERSION) == MAX_VERSION
    with pytest.raises(InvalidNameError):
        names.validate_version(MAX_VERSION + 1)
    assert names.parse_ref(f"m:{MAX_VERSION}") == ("m", MAX_VERSION, None)
