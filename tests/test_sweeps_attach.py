"""A sweep outlives its kernel on an external cluster: kernel A starts it on a real CLI cluster
(`dask scheduler` + `dask worker` processes) and goes away mid-sweep; kernel B attaches, picks up
the running trials and the ones never started, and registers the best — one sweep, no trial run
twice, no trial lost."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from aiaas_jupyter.client import AiaasClient
from aiaas_jupyter.errors import SweepError


@pytest.fixture(scope="module")
def frame():
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, 10, random_state=1)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    df["label"] = y
    return df


def test_a_sweep_survives_its_kernel_and_is_finished_by_another(cli_cluster, tmp_path, frame):
    from sklearn.ensemble import RandomForestClassifier

    # two forest sizes: the first kernel runs each depth's pair as one ladder task (forest_prefix),
    # so the hand-over also follows tasks that carry two trials each
    space = {"max_depth": [2, 4, 6, 8, 10, 12], "n_estimators": [30, 60]}
    a = AiaasClient(tmp_path)
    a.connect(cli_cluster["address"])
    try:
        sweep = a.sweep(RandomForestClassifier(random_state=0), frame, "label", space=space, name="sw-attach",
                        max_concurrent=2, gpus_per_trial=1)  # the CLI workers have GPU=1 each: 2 slots
        deadline = time.time() + 90
        while sweep.counts.get("finished", 0) < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert sweep.counts.get("finished", 0) >= 1
    finally:
        a.disconnect()  # the kernel goes away; its running trials stay on the cluster
    assert not sweep.done() and a.registry.get_sweep(sweep.id).status == "running"

    b = AiaasClient(tmp_path)
    b.connect(cli_cluster["address"])
    try:
        attached = b.attach_sweep(sweep.id)
        assert attached.wait(120), attached
        assert attached.status == "finished", attached.record.error
        records = attached.trial_records()
        # every grid point ran exactly once: none twice after the hand-over, none lost
        assert sorted((t.params["max_depth"], t.params["n_estimators"]) for t in records) == [
            (d, n) for d in (2, 4, 6, 8, 10, 12) for n in (30, 60)]
        assert [t.number for t in records] == list(range(12)) and attached.counts == {"finished": 12}
        assert attached.record.info["shared_fits"] == "n_estimators"
        version = attached.version
        assert version.ref == "sw-attach:1" and version.extra["sweep"] == sweep.id
        assert version.extra["trial"] == attached.best.number
        assert b.registry.get_sweep(sweep.id).version == 1
        # nothing of the sweep is left published on the cluster
        assert not [d for d in b.dask.list_datasets() if sweep.id in d]
        with pytest.raises(SweepError, match="already finished"):
            b.cancel_sweep(sweep.id)
    finally:
        b.disconnect()


def test_attach_to_an_ended_or_foreign_sweep_is_one_line(aiaas, cli_cluster, tmp_path):
    with pytest.raises(SweepError, match="no sweep") as info:
        aiaas.attach_sweep("0123456789")
    assert "%aiaas sweeps" in (info.value.hint or "")


def test_gpu_trials_use_the_gpu_workers_and_too_many_gpus_is_one_line(cli_cluster, tmp_path, frame):
    """The CLI workers advertise GPU=1 each: one GPU per trial gives 2 slots; two per trial none."""
    from sklearn.tree import DecisionTreeClassifier

    from aiaas_jupyter.errors import ResourceError

    c = AiaasClient(tmp_path)
    c.connect(cli_cluster["address"])
    try:
        assert c.sweeper.slots(1) == 2 and c.sweeper.slots(0) == 2
        with pytest.raises(ResourceError) as info:
            c.sweep(DecisionTreeClassifier(), frame, "label", space={"max_depth": [2]}, gpus_per_trial=2)
        assert "\n" not in str(info.value)
        sweep = c.sweep(DecisionTreeClassifier(random_state=0), frame, "label", space={"max_depth": [1, 2, 3]},
                        gpus_per_trial=1, register="none", early_stop="hyperband", block=True)
        assert sweep.record.max_concurrent == 2 and sweep.counts == {"finished": 3}
        assert {t.worker for t in sweep.trial_records()} <= set(c.dask.scheduler_info()["workers"])
    finally:
        c.disconnect()
