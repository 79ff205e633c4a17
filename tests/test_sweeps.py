"""Hyper-parameter sweeps on a real embedded LocalCluster (2 worker processes): fan-out, failures,
early stopping, cancel, registration of the best, the registry's record, and the inputs refused
up front. The attach-after-restart path runs on the CLI cluster (tests/test_sweeps_attach.py)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.errors import SweepError
from aiaas_jupyter.sweep_space import loguniform, randint
from support.cluster_idle import wait_until_idle


@pytest.fixture(scope="module")
def frame():
    """Seeded, separable enough that depth matters: 600 rows x 8 features, 2 classes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 8, n_informative=5, random_state=0)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    df["label"] = y
    return df


def rf(**kw):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=10, random_state=0, **kw)


def test_grid_sweep_runs_every_point_and_registers_the_best(aiaas, frame):
    space = {"max_depth": [1, 3, 8], "n_estimators": [5, 20]}
    wait_until_idle(aiaas.dask)  # where the trials land is asserted below: no earlier test's task in the way
    sweep = aiaas.sweep(rf(), frame, "label", space=space, name="sw-grid", block=True)
    version = sweep.result(timeout=5)
    assert sweep.status == "finished" and sweep.counts == {"finished": 6}
    records = sweep.trial_records()
    assert sorted(tuple(sorted(t.params.items())) for t in records) == sorted(
        tuple(sorted({"max_depth": d, "n_estimators": n}.items())) for d in (1, 3, 8) for n in (5, 20))
    # a whole grid runs longest first (sweep_order): before any trial has run, the largest forest
    by_number = sorted(records, key=lambda t: t.number)
    assert by_number[0].params == {"max_depth": 8, "n_estimators": 20}
    assert by_number[-1].params in ({"max_depth": 1, "n_estimators": 5}, {"max_depth": 3, "n_estimators": 5},
                                    {"max_depth": 1, "n_estimators": 20})  # a small one comes last
    best = sweep.best
    assert best.value == max(t.value for t in records)
    # the registered version is the best trial's model, with lineage to the sweep
    assert version.ref == "sw-grid:1" and version.extra["sweep"] == sweep.id
    assert version.extra["trial"] == best.number and version.extra["obtained"] == "kept"
    assert version.params["max_depth"] == best.params["max_depth"]
    assert version.metrics["accuracy"] == pytest.approx(best.value)
    # the registry holds the sweep and every trial (params, value, worker, seconds)
    row = aiaas.registry.get_sweep(sweep.id)
    assert (row.status, row.version, row.best_trial, row.counts) == ("finished", 1, best.number, {"finished": 6})
    stored = aiaas.registry.list_trials(sweep.id)
    assert [t.value for t in stored] == [t.value for t in records]
    assert all(t.worker and t.worker.startswith("tcp://") and t.seconds > 0 for t in stored)
    assert len({t.worker for t in stored}) == 2  # both workers were used
    # the trials frame is the leaderboard: best first
    df = sweep.trials
    assert list(df["trial"])[0] == best.number and list(df["accuracy"]) == sorted(df["accuracy"], reverse=True)
    # the registered model predicts like the trial that won
    model = aiaas.load_model("sw-grid:1")
    assert model.get_params()["max_depth"] == best.params["max_depth"]


def test_data_travel_once_per_worker_not_once_per_trial(aiaas, frame):
    dask = aiaas.dask
    wait_until_idle(dask)  # both workers free: the trials spread over both
    before = dask.run(lambda dask_worker: len(dask_worker.transfer_incoming_log))
    sweep = aiaas.sweep(rf(), frame, "label", space={"max_depth": [1, 2, 3, 4, 5, 6, 7, 8]}, name="sw-once",
                        register="none", block=True)
    assert sweep.counts == {"finished": 8} and sweep.version is None
    after = dask.run(lambda dask_worker: [list(e["keys"]) for e in dask_worker.transfer_incoming_log])
    keys = set(sweep.record.info["keys"].values())
    assert len(keys) == 2
    # scattered to every worker up front: no worker had to fetch the frame or the plan from another
    fetched = {w: [k for entry in log[before[w]:] for k in entry if str(k) in keys] for w, log in after.items()}
    assert all(not k for k in fetched.values()), fetched
    assert len(after) == 2  # and both workers ran trials (8 trials, 2 workers)
    assert {t.worker for t in sweep.trial_records()} == set(after)


def test_the_embedded_scheduler_keeps_every_workers_copy_of_a_sweeps_inputs(aiaas):
    """Between two trials fewer tasks wait on the frame than workers hold it; Dask's memory manager
    (ReduceReplicas, every 2 s) would drop the extra copies and the next trial would fetch it again."""
    dask = aiaas.dask
    future = dask.scatter(np.arange(10_000), broadcast=True, hash=False)
    assert len(dask.who_has([future])[future.key]) == 2
    dask.amm.run_once()  # what the scheduler does every 2 s
    time.sleep(0.5)
    assert len(dask.who_has([future])[future.key]) == 2
    del future


def test_max_concurrent_is_never_exceeded(aiaas, frame):
    sweep = aiaas.sweep(rf(), frame, "label", space={"max_depth": [2, 3, 4, 5]}, name="sw-k1", max_concurrent=1,
                        register="none", block=True)
    assert sweep.record.max_concurrent == 1
    spans = sorted((t.started, t.finished) for t in sweep.trial_records())
    assert all(prev_end <= start for (_, prev_end), (start, _) in zip(spans, spans[1:]))  # one at a time


def test_a_failing_trial_is_one_line_and_the_sweep_goes_on(aiaas, frame):
    sweep = aiaas.sweep(rf(), frame, "label", space={"max_depth": [2, -1, 4]}, name="sw-fail",
                        max_concurrent=1, block=True)
    assert sweep.status == "finished" and sweep.counts == {"finished": 2, "error": 1}
    bad = next(t for t in sweep.trial_records() if t.status == "error")
    assert bad.params == {"max_depth": -1} and "\n" not in bad.error and "max_depth" in bad.error
    assert sweep.version is not None and sweep.best.params["max_depth"] in (2, 4)


def test_a_sweep_whose_first_trials_all_fail_stops_early(aiaas, frame):
    sweep = aiaas.sweep(rf(), frame, "label", space={"max_depth": [-1, -2, -3, -4, -5, -6]}, name="sw-allbad",
                        max_concurrent=1, block=True)
    assert sweep.status == "error" and sweep.counts == {"error": 3}  # not 6: the same mistake, stopped
    with pytest.raises(SweepError, match="no trial finished; first error: .*max_depth"):
        sweep.result()
    assert "sw-allbad" not in {m["name"] for m in aiaas.registry.list_models()}  # nothing registered


def test_random_search_over_ranges_is_seeded(aiaas, frame):
    space = {"max_depth": randint(1, 12), "min_samples_leaf": [1, 5], "max_features": [0.3, 0.6, 1.0]}
    runs = [aiaas.sweep(rf(), frame, "label", space=space, name="sw-rand", search="random", trials=5, seed=7,
                        register="none", block=True) for _ in range(2)]
    params = [sorted((t.number, tuple(sorted(t.params.items()))) for t in r.trial_records()) for r in runs]
    assert params[0] == params[1] and len(params[0]) == 5  # same seed: same trials
    assert all(1 <= p["max_depth"] <= 12 for t in runs[0].trial_records() for p in [t.params])


def test_warm_start_forest_is_halved_and_still_registers_its_best(aiaas, frame):
    """Iterative scikit-learn (warm_start ensembles) use successive halving too."""
    sweep = aiaas.sweep(rf(), frame, "label", space={"max_depth": [1, 1, 1, 2, 8, 8, 8, 8]}, name="sw-sh",
                        early_stop="asha", grace_period=4, max_concurrent=2, block=True, register="best")
    records = sweep.trial_records()
    assert sweep.record.info["stepped"] is True and sweep.record.info["grace_period"] == 4
    assert all(t.history and t.history[0]["epoch"] == 1 for t in records)  # scored after each step
    assert sweep.counts.get("pruned", 0) >= 1
    pruned = [t for t in records if t.status == "pruned"]
    # judged no earlier than the grace period (a rung at 4 steps; the next, 16, is past the end)
    decided = [next(h["epoch"] for h in t.history if h.get("stop")) for t in pruned]
    assert decided and all(epoch == 4 for epoch in decided), [t.history for t in pruned]
    # and it waited there for the verdict: no step past the rung was trained
    assert all(len(t.history) == 4 for t in pruned), [t.history for t in pruned]
    assert sweep.best.params["max_depth"] == 8 and sweep.version is not None


def make_mlp(params):
    """An MLP whose training steps take ~3 ms: an epoch (150 batches) lasts ~0.5 s, far longer
    than the kernel needs to decide and send a stop, even on a busy runner."""
    import time as _time

    import torch

    class Paced(torch.nn.Sequential):
        def forward(self, x):
            if self.training:
                _time.sleep(0.003)
            return super().forward(x)

    width = int(params.get("width", 16))
    return Paced(torch.nn.Linear(8, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))


def test_torch_asha_prunes_weak_trials_within_an_epoch(aiaas, frame, one_torch_thread):
    import torch  # noqa: F401 - the cell of a torch sweep imports torch

    big = pd.concat([frame] * 20, ignore_index=True)  # 12k rows: an epoch takes a noticeable time
    space = {"lr": [3e-2, 1e-6, 1e-6, 1e-6, 3e-2, 1e-6], "width": [16]}
    sweep = aiaas.sweep(None, big, "label", space=space, make_model=make_mlp, name="sw-asha", search="grid",
                        early_stop="asha", epochs=6, batch_size=64, max_concurrent=2, block=True)
    records = sweep.trial_records()
    pruned = [t for t in records if t.status == "pruned"]
    assert pruned and all(t.params["lr"] == 1e-6 for t in pruned)
    for t in pruned:  # the stop decision is marked, at a rung, where the trial waited for it: its last epoch
        decided = next(i for i, h in enumerate(t.history) if h.get("stop"))
        assert t.history[decided]["epoch"] in (1, 4) and decided == len(t.history) - 1, t.history
    assert all(len(t.history) == 6 for t in records if t.status == "finished")
    assert sweep.best.params["lr"] == 3e-2 and sweep.version.framework == "torch"
    assert [h["epoch"] for h in sweep.best.history] == [1, 2, 3, 4, 5, 6]
    assert "accuracy" in sweep.best.history[-1]["metrics"]


def test_a_regression_loss_makes_a_regression_sweep_even_over_whole_numbers(aiaas, frame, one_torch_thread):
    """A target of whole numbers looks like classes; a torch regression loss says otherwise."""
    import torch

    counts = frame.assign(label=(frame["f0"] > 0).astype("int64") + (frame["f1"] > 0).astype("int64"))
    sweep = aiaas.sweep(None, counts, "label", space={"width": [4]}, make_model=lambda p: torch.nn.Sequential(
        torch.nn.Linear(8, int(p["width"])), torch.nn.ReLU(), torch.nn.Linear(int(p["width"]), 1)),
        loss=torch.nn.MSELoss(), name="sw-reg", epochs=1, register="none", block=True)
    assert (sweep.record.info["task"], sweep.metric, sweep.direction) == ("regression", "r2", "max")
    assert sweep.status == "finished" and {"r2", "mse"} <= set(sweep.best.history[-1]["metrics"])


def slow_mlp(params):
    import time as _time

    import torch

    class Slow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 2)

        def forward(self, x):
            if self.training:
                _time.sleep(0.05)
            return self.net(x)

    return Slow()


def test_cancel_stops_pending_and_running_trials_and_registers_nothing(aiaas, frame, one_torch_thread):
    import torch  # noqa: F401

    sweep = aiaas.sweep(None, frame, "label", space={"lr": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]},
                        make_model=slow_mlp, name="sw-cancel", epochs=50, batch_size=64, max_concurrent=2)
    deadline = time.time() + 90
    while sum(1 for t in sweep.trial_records() if t.history) < 2 and time.time() < deadline:
        time.sleep(0.05)  # both trials are past their first epoch (torch imported, warm)
    epochs_then = {t.number: len(t.history) for t in sweep.trial_records()}
    started = time.time()
    sweep.cancel()
    assert sweep.wait(30), "cancel did not end the sweep"
    # each running trial stops after its current epoch (~0.5 s here), not after its 50
    assert time.time() - started < 15
    assert all(len(t.history) <= epochs_then[t.number] + 2 for t in sweep.trial_records())
    assert sweep.status == "cancelled" and sweep.version is None
    # the two running trials stopped as cancelled; the four not yet asked for are never started
    assert sweep.counts == {"cancelled": 2} and sweep.record.n_trials == 6
    assert all(len(t.history) < 50 for t in sweep.trial_records())
    assert aiaas.registry.get_sweep(sweep.id).status == "cancelled"
    assert "sw-cancel" not in {m["name"] for m in aiaas.registry.list_models()}
    with pytest.raises(SweepError, match="cancelled; nothing was registered"):
        sweep.result()


@pytest.mark.parametrize("kwargs, message", [
    ({"space": {"max_depth": loguniform(1, 10)}, "search": "grid"}, "a grid needs a list"),
    ({"space": {"max_depth": []}}, r"space\['max_depth'\] is empty"),
    ({"space": {}}, "must define `space`"),
    ({"space": {"max_depth": [2]}, "metric": "rmse"}, "a sklearn classification trial reports accuracy, f1_macro"),
    ({"space": {"max_depth": [2]}, "search": "bayes"}, "--search must be one of grid, random, tpe"),
    ({"space": {"max_depth": [2]}, "early_stop": "median"}, "--early-stop must be one of none, asha, hyperband"),
    ({"space": {"max_depth": [2]}, "max_concurrent": 0}, "--max-concurrent must be >= 1"),
    ({"space": {"max_depth": [2]}, "grace_period": 2}, "--grace-period applies to early stopping"),
    ({"space": {"max_depth": [2]}, "early_stop": "asha", "grace_period": 9},
     "--grace-period must be between 1 and the 8 epochs"),
    ({"space": {"max_depth": [object()]}}, "values must be numbers, strings, booleans or None"),
])
def test_bad_input_fails_before_anything_is_submitted(aiaas, frame, kwargs, message):
    before = len(aiaas.registry.list_sweeps(1000))
    with pytest.raises(SweepError, match=message) as info:
        aiaas.sweep(rf(), frame, "label", name="sw-bad", **kwargs)
    assert "\n" not in str(info.value)
    assert len(aiaas.registry.list_sweeps(1000)) == before


@pytest.mark.parametrize("epochs, grace", [(20, 4), (9, 1), (4, 1), (1, 1), (50, 10)])
def test_default_grace_period_is_a_fifth_of_the_epochs(epochs, grace):
    from aiaas_jupyter.sweep_plan import resolve_grace

    assert resolve_grace(None, "asha", epochs) == grace
    assert resolve_grace(3, "hyperband", 20) == 3


@pytest.mark.parametrize("early_stop, grace, epochs, rungs", [
    ("asha", 4, 20, (4, 16)), ("hyperband", 1, 20, (1, 4, 16)), ("asha", 1, 1, ()), ("none", 1, 20, ()),
])
def test_rungs_are_where_a_trial_waits_for_the_verdict(early_stop, grace, epochs, rungs):
    from aiaas_jupyter.sweep_study import rung_epochs

    assert rung_epochs(early_stop, grace, epochs) == rungs


def test_a_torch_space_reaching_into_the_network_needs_make_model(aiaas, frame):
    import torch

    with pytest.raises(SweepError, match="width are not training options") as info:
        aiaas.sweep(torch.nn.Linear(8, 2), frame, "label", space={"width": [8, 16]}, name="sw-bad")
    assert "make_model(params)" in info.value.hint


def test_magic_sweep_show_sweeps_and_compare(shell, aiaas, frame, capsys):
    shell.user_ns["sweep_df"] = frame
    shell.run_cell_magic("aiaas", "sweep --data sweep_df --target label --name sw-magic --max-concurrent 2 "
                                  "-o sw --seed 3",
                         "from sklearn.ensemble import RandomForestClassifier\n"
                         "model = RandomForestClassifier(n_estimators=8, random_state=0)\n"
                         "space = {'max_depth': [2, 6], 'min_samples_leaf': randint(1, 3)}\n")
    sweep = shell.user_ns["sw"]
    assert sweep.wait(120) and sweep.status == "finished"
    assert sweep.record.search == "tpe" and sweep.record.n_trials == 20  # a range: TPE, 20 trials
    board = shell.run_line_magic("aiaas", f"sweep show {sweep.id}")
    text = board.to_text() if hasattr(board, "to_text") else str(board)
    assert sweep.id in text and f"{sweep.best.value:.4g}"[:4] in text
    listing = shell.run_line_magic("aiaas", "sweeps")
    assert sweep.id in str(listing)
    shell.run_cell_magic("aiaas", "sweep --data sweep_df --target label --name sw-magic --block",
                         "model = RandomForestClassifier(n_estimators=8, random_state=0)\n"
                         "space = {'max_depth': [1]}\n")
    compared = str(shell.run_line_magic("aiaas", "models compare sw-magic 1 2"))
    assert "max_depth" in compared and "accuracy" in compared and "v1" in compared and "v2" in compared


@pytest.mark.parametrize("line, cell, message", [
    ("sweep --data sweep_df --target label", None, "runs a cell: write it as %%aiaas sweep"),
    ("sweep --target label", "space = {}", "the following arguments are required: --data"),
    ("sweep cancel", None, "the sweep ID is required"),
    ("sweep show abc", "x = 1", "takes no cell"),
    ("sweep --data sweep_df --target label --search bayes", "x = 1", "invalid choice: 'bayes'"),
    ("sweep --data sweep_df --target label --trials 0", "x = 1", "--trials"),
    ("sweep --data sweep_df --target label --block -o s", "x = 1", "not allowed with argument"),
    ("sweep --data sweep_df --target label --grace-period 0", "x = 1", "--grace-period"),
])
def test_magic_usage_errors_are_one_line(shell, frame, line, cell, message):
    from IPython.core.error import UsageError

    shell.user_ns["sweep_df"] = frame
    with pytest.raises(UsageError, match=message) as info:
        if cell is None:
            shell.run_line_magic("aiaas", line)
        else:
            shell.run_cell_magic("aiaas", line, cell)
    assert "\n" not in str(info.value)


def test_magic_grace_period_reaches_the_sweep_checks(shell, frame):
    shell.user_ns["sweep_df"] = frame
    with pytest.raises(SweepError, match="--grace-period applies to early stopping") as info:
        shell.run_cell_magic("aiaas", "sweep --data sweep_df --target label --grace-period 2",
                             "from sklearn.tree import DecisionTreeClassifier\nmodel = DecisionTreeClassifier()\n"
                             "space = {'max_depth': [2, 3]}\n")
    assert info.value.hint == "add --early-stop asha (or hyperband)"


def test_a_sweep_cell_without_space_says_so(shell, frame):
    from aiaas_jupyter.errors import ModelSpecError

    shell.user_ns["sweep_df"] = frame
    with pytest.raises(ModelSpecError, match="defines no `space`"):
        shell.run_cell_magic("aiaas", "sweep --data sweep_df --target label",
                             "from sklearn.tree import DecisionTreeClassifier\nmodel = DecisionTreeClassifier()\n")
