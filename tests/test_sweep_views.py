"""How sweeps read: the leaderboard's order and best row, the sweeps list, version comparison."""

from __future__ import annotations

import pytest

from aiaas_jupyter import sweep_views as sv
from aiaas_jupyter.display import Table
from aiaas_jupyter.registry import TRIAL_STATUSES, TRIAL_TERMINAL, ModelVersion, SweepRecord, TrialRecord


def _trials() -> list[TrialRecord]:
    epoch = lambda k, v: {"epoch": k, "metrics": {"val_loss": v}, "seconds": 0.1}  # noqa: E731
    return [
        TrialRecord("sw", 0, "finished", {"lr": 0.1, "depth": 3}, 0.40, history=[epoch(1, 0.5), epoch(2, 0.40)],
                    worker="w-0", seconds=2.0),
        TrialRecord("sw", 1, "pruned", {"lr": 1.0, "depth": 3}, None, history=[epoch(1, 0.10)]),  # last value only
        TrialRecord("sw", 2, "finished", {"lr": 0.01, "depth": None}, 0.20, history=[epoch(1, 0.3), epoch(2, 0.2)]),
        TrialRecord("sw", 3, "error", {"lr": 0.5}, error="ValueError: boom"),
        TrialRecord("sw", 4, "running", {"lr": 0.2, "depth": 5}, 0.90, history=[epoch(1, 0.9)]),
        TrialRecord("sw", 5, "pruned", {"lr": 0.3, "depth": 2}, 0.70, history=[epoch(1, 0.7)]),
        TrialRecord("sw", 6, "finished", {"lr": 0.05, "depth": 4, "extra": "x"}, 0.30),
        TrialRecord("sw", 7, "pending", {"lr": 0.6, "depth": 1}),
        TrialRecord("sw", 8, "finished", {"lr": 0.07, "depth": 1}, float("nan")),   # diverged: ranks last of them
    ]


def _sweep(direction: str, **kw) -> SweepRecord:
    return SweepRecord("sw", "iris", status="running", metric="val_loss", direction=direction, n_trials=10,
                       counts={"finished": 4, "pruned": 2, "error": 1, "running": 1, "pending": 1}, **kw)


def test_the_status_order_covers_every_trial_status():
    assert set(sv.STATUS_RANK) == set(TRIAL_STATUSES)
    assert set(sv.ENDED) == set(TRIAL_TERMINAL)


def test_leaderboard_min_direction_finished_then_pruned_then_live_then_failed():
    table = sv.leaderboard_table(_sweep("min"), _trials())
    assert table.columns == ["trial", "status", "val_loss", "lr", "depth", "extra", "epochs", "worker", "seconds",
                             "error"]
    assert [r[0] for r in table.rows] == [2, 6, 0, 8, 1, 5, 4, 7, 3]
    assert table.rows[3][2] is None                      # the NaN value reads as no value
    assert table.rows[4][:3] == [1, "pruned", 0.10]      # pruned, ranked by its last reported value
    assert table.highlight == 0 and repr(table).splitlines()[2].startswith("* 2 ")
    assert table.rows[0] == [2, "finished", 0.20, 0.01, "None", "", 2, None, None, None]
    assert table.rows[-1] == [3, "error", None, 0.5, "", "", 0, None, None, "ValueError: boom"]
    assert "7/10 trials done" in table.title      # finished + pruned + error


def test_leaderboard_max_direction_reverses_the_order_within_each_status():
    table = sv.leaderboard_table(_sweep("max"), _trials())
    assert [r[0] for r in table.rows] == [0, 6, 2, 8, 5, 1, 4, 7, 3]
    assert "higher is better" in table.title


def test_the_recorded_best_trial_is_marked_and_a_limit_keeps_the_best():
    table = sv.leaderboard_table(_sweep("min", best_trial=6, best_value=0.3), _trials(), limit=3)
    assert [r[0] for r in table.rows] == [2, 6, 0] and table.highlight == 1
    assert table.note == "6 more trials not shown"
    assert "font-weight:bold'><td style='text-align:left'>6<" in table._repr_html_()
    assert sv.leaderboard_table(_sweep("min", best_trial=4), _trials(), limit=2).highlight is None   # cut off
    nothing_finished = [t for t in _trials() if t.status != "finished"]
    assert sv.leaderboard_table(_sweep("min"), nothing_finished).highlight is None
    assert repr(sv.leaderboard_table(_sweep("min"), [])).endswith("no trials yet")


def test_trials_frame_has_the_leaderboard_columns_and_order():
    pd = pytest.importorskip("pandas")
    frame = sv.trials_frame(_sweep("min"), _trials())
    table = sv.leaderboard_table(_sweep("min"), _trials())
    assert list(frame.columns) == table.columns
    assert list(frame["trial"]) == [r[0] for r in table.rows]
    assert frame.loc[0, "val_loss"] == pytest.approx(0.20) and frame.loc[0, "epochs"] == 2
    assert pd.isna(frame.loc[0, "depth"])               # a param left at None stays missing data here
    assert frame.loc[8, "error"] == "ValueError: boom"


def test_sweeps_table():
    done = _sweep("min", best_trial=2, best_value=0.2, version=3)
    fresh = SweepRecord("sw-2", "wine", n_trials=8, search="random", early_stop="none")
    table = sv.sweeps_table([done, fresh])
    assert table.columns == ["id", "model", "status", "progress", "best", "version", "search", "early stop",
                             "submitted"]
    assert table.rows[0][:8] == ["sw", "iris", "running", "7/10", "val_loss=0.2 (trial #2)", 3, "grid", "none"]
    assert table.rows[1][:8] == ["sw-2", "wine", "pending", "0/8", "", "", "random", "none"]
    assert table.rows[1][8].startswith("20")
    assert repr(sv.sweeps_table([])).endswith("no sweeps yet: run a %%aiaas sweep cell")


def _mv(version: int, params: dict, metrics: dict, name: str = "iris", **kw) -> ModelVersion:
    return ModelVersion(name, version, "sklearn", params, metrics, {}, "f" * 64, "src", kw.get("job_id"), {},
                        "2026-01-01T00:00:00+00:00", extra=kw.get("extra", {}))


def test_compare_shows_only_the_params_that_differ_and_marks_the_best_metric():
    a = _mv(1, {"C": 1.0, "kernel": "rbf", "depth": None}, {"accuracy": 0.90, "loss": 0.30}, job_id="job-1")
    b = _mv(2, {"C": 2.0, "kernel": "rbf", "depth": None, "tol": 0.1}, {"accuracy": 0.95, "loss": 0.35},
            extra={"sweep": "sw-1", "trial": 3})
    rows = {r[0]: r[1:] for r in sv.compare_table([a, b]).rows}
    assert sv.compare_table([a, b]).columns == ["", "v1", "v2"]
    assert list(rows) == ["C", "tol", "accuracy", "loss", "lineage", "created"]
    assert rows["C"] == [1.0, 2.0] and rows["tol"] == ["", 0.1]
    assert rows["accuracy"] == ["0.9", "0.95 *"] and rows["loss"] == ["0.3 *", "0.35"]   # lower loss is better
    assert rows["lineage"] == ["job job-1", "sweep sw-1 trial #3"]


def test_compare_one_version_shows_every_param_and_marks_nothing():
    rows = {r[0]: r[1:] for r in sv.compare_table([_mv(4, {"C": 1.0, "depth": None}, {"r2": 0.5})]).rows}
    assert list(rows) == ["C", "depth", "r2", "lineage", "created"]
    assert rows["depth"] == ["None"] and rows["r2"] == ["0.5"] and rows["lineage"] == [""]


def test_compare_versions_of_different_models_are_named_by_ref():
    table = sv.compare_table([_mv(1, {}, {}, name="a"), _mv(1, {}, {}, name="b")])
    assert table.columns == ["", "a:1", "b:1"] and table.title == "compare a, b"


def test_table_highlight_marks_one_row_and_changes_nothing_else():
    plain = Table(["a", "b"], [(1, "x"), (2, "y")])
    marked = Table(["a", "b"], [(1, "x"), (2, "y")], highlight=1)
    assert repr(marked).splitlines() == ["  a  b", "  1  x", "* 2  y"]
    assert repr(plain).splitlines() == ["a  b", "1  x", "2  y"]
    assert marked._repr_html_().count("font-weight:bold") == 1 and "font-weight" not in plain._repr_html_()
    assert marked._repr_html_().replace(" style='font-weight:bold'", "") == plain._repr_html_()
