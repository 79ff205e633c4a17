"""SweepBoard, the live leaderboard of a sweep, and the notebook presenter that shows it.

The widget is what is under test, so it follows a REAL :class:`SweepState` through its named
transitions (the ones the sweep dispatcher calls) behind a real :class:`Sweep` handle; no
cluster is needed for that. The transitions run on a thread of their own, as Dask's would.
What a front-end would render is read from the widgets' values (HTML, the PNG bytes). The last
test shows the board in a real Jupyter kernel and reads the messages a front-end gets.
"""

from __future__ import annotations

import html
import logging
import math
import os
import threading
import time
from html.parser import HTMLParser

import pytest

from aiaas_jupyter.errors import SweepError
from aiaas_jupyter.registry import ModelVersion
from aiaas_jupyter.registry.sweeps_table import SweepRecord, TrialRecord
from aiaas_jupyter.sweep_handle import Sweep
from aiaas_jupyter.sweep_state import SweepState
from aiaas_jupyter.widgets.leaderboard import SweepBoard
from support.kernel_io import execute

PNG = b"\x89PNG\r\n\x1a\n"
WORKER = "tcp://127.0.0.1:40001"
#: (params, the metric per epoch, how the trial ends, its final fields)
TRIALS = [
    ({"lr": 1e-4, "depth": 2}, [0.60, 0.70, 0.75], "finished", {"value": 0.75}),
    ({"lr": 1e-3, "depth": 4}, [0.70, 0.85, 0.91], "finished", {"value": 0.91}),
    ({"lr": 1e-1, "depth": 8}, [0.50], "pruned", {}),
    ({"lr": 3e-2, "depth": 2}, [0.65, 0.80], "finished", {"value": 0.80}),
    ({"lr": 1e-2, "depth": 4}, [0.40], "error", {"error": "ValueError: the loss diverged (NaN at batch 7)"}),
    ({"lr": 3e-3, "depth": 8}, [0.55], None, {}),  # still running
]


def _sweep(direction="max", n_trials=6, canceller=None, framework="torch"):
    rec = SweepRecord(id="swp0123abcd", model="board-m", metric="accuracy", direction=direction, search="random",
                      early_stop="asha", n_trials=n_trials,
                      info={"framework": framework, "space": {"lr": {"loguniform": [1e-4, 1e-1]},
                                                              "depth": [2, 4, 8]}})
    state = SweepState(rec)
    return state, Sweep(state, canceller=canceller)


def _drive(state, trials=TRIALS, pause=0.0):
    """What the dispatcher does: add, run, report epochs, end each trial."""
    for n, (params, _, _, _) in enumerate(trials):
        state.trial_added(TrialRecord(state.id, n, params=dict(params)))
    for n, (_, curve, end, fields) in enumerate(trials):
        state.trial_running(n, WORKER)
        for epoch, value in enumerate(curve, start=1):
            state.trial_epoch(n, {"epoch": epoch, "metrics": {"accuracy": value}, "seconds": 0.1 * epoch}, value)
            time.sleep(pause)
        if end is not None:
            state.trial_ended(n, end, seconds=1.5, **fields)


def _in_thread(fn, *args, **kwargs):
    t = threading.Thread(target=fn, args=args, kwargs=kwargs)
    t.start()
    t.join(30)
    assert not t.is_alive()


def _until(predicate, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _rows(html_text: str) -> list[tuple[str, list[str], str]]:
    """(class, cell texts, style) of each body row of the trials table."""
    rows: list[tuple[str, list[str], str]] = []

    class Cells(HTMLParser):
        cell = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr" and "aiaas-trial" in (a.get("class") or ""):
                rows.append((a["class"], [], a.get("style") or ""))
            elif tag == "td" and rows:
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag == "td" and self.cell is not None:
                rows[-1][1].append(self.cell.strip())
                self.cell = None

    Cells().feed(html_text)
    return rows


# ------------------------------------------------------------------------------- the table
@pytest.mark.parametrize("direction, order, best", [("max", [1, 3, 0, 2, 5, 4], 1), ("min", [0, 3, 1, 2, 5, 4], 0)])
def test_trials_ranked_by_the_metric_best_highlighted_pruned_and_errors_marked(direction, order, best):
    state, sweep = _sweep(direction)
    board = SweepBoard(sweep, table_interval=0.05, plot_interval=60)
    _in_thread(_drive, state)
    # the last events were trial 5's start and epoch: once the table shows them, it shows everything
    _until(lambda: [c[2:4] for _, c, _ in _rows(board.table.value)][4:5] == [["running", "0.5500"]],
           what="the table")
    rows = _rows(board.table.value)
    assert [int(cells[1]) for _, cells, _ in rows] == order
    # finished first (best first for the direction), then pruned, running, error
    assert [cells[2] for _, cells, _ in rows][3:] == ["pruned @ epoch 1", "running", "error"]
    (cls, cells, style), = [r for r in rows if "aiaas-best" in r[0]]
    assert int(cells[1]) == best == sweep.best.number and cells[0] == "★" and "background" in style
    assert rows[0][1][0] == "★" and all(r[1][0] == "" for r in rows[1:])
    assert cells[3] == f"{TRIALS[best][3]['value']:.4f}"
    pruned = rows[3]
    assert "aiaas-pruned" in pruned[0] and "color:#9e9e9e" in pruned[2] and pruned[1][3] == "0.5000"
    err = rows[5]
    assert "aiaas-error" in err[0] and err[1][-1] == "ValueError: the loss diverged (NaN at batch 7)"
    assert rows[4][1][-3:-1] == ["127.0.0.1:40001", ""]  # running: its worker, no seconds yet
    # the header: counts, progress, best so far
    assert board.counts.value == "3 finished · 1 pruned · 1 error · 1 running"
    assert (board.bar.value, board.bar.max, board.progress.value) == (5, 6, "5/6 trials")
    assert board.status.value == "running" and not board.cancel_button.disabled
    assert f"accuracy={TRIALS[best][3]['value']:.4f}" in board.best.value and f"trial {best}" in board.best.value
    board.close()


def test_only_the_top_rows_are_listed():
    state, sweep = _sweep()
    _drive(state)
    board = SweepBoard(sweep, top=3, plot_interval=60)  # built late: what it missed is replayed
    _until(lambda: "more" in board.table.value, what="the table")
    assert [int(c[1]) for _, c, _ in _rows(board.table.value)] == [1, 3, 0]
    assert "… and 3 more" in board.table.value
    board.close()


def test_a_trial_without_a_recorded_value_ranks_by_its_last_epoch():
    state, sweep = _sweep()
    board = SweepBoard(sweep, plot_interval=60)
    trials = [({"lr": 1e-3, "depth": 2}, [0.40, 0.50], "pruned", {"value": None}),
              ({"lr": 1e-2, "depth": 4}, [0.60], "pruned", {"value": None}),
              ({"lr": 1e-1, "depth": 8}, [0.55], "pruned", {"value": None})]
    _in_thread(_drive, state, trials)
    _in_thread(state.finished, None)
    assert [(c[1], c[3]) for _, c, _ in _rows(board.table.value)] == [("1", "0.6000"), ("2", "0.5500"),
                                                                      ("0", "0.5000")]
    assert sweep.best is None and "aiaas-best" not in board.table.value  # pruned trials never win
    board.close()


# ------------------------------------------------------------------------------- the end
def _version(ref_version=3):
    return ModelVersion(name="board-m", version=ref_version, framework="torch", params={"lr": 1e-3},
                        metrics={"accuracy": 0.91}, library_versions={}, data_fingerprint="0" * 64, source="",
                        job_id=None, artifacts={}, created="2026-12-01T16:00:00Z")


def test_the_end_shows_the_registered_version_and_a_stable_text_fallback():
    state, sweep = _sweep()
    board = SweepBoard(sweep, table_interval=0.05, plot_interval=0.05)
    _in_thread(_drive, state)
    state.trial_ended(5, "finished", value=0.6)
    _in_thread(state.finished, _version(), {"duration_s": 4.2, "version": 3})
    assert "board-m:3" in board.final.value and board.error.value == ""
    assert board.cancel_button.disabled and board.status.value == "finished"
    assert (board.bar.value, board.bar.bar_style, board.progress.value) == (6, "success", "6/6 trials")
    assert repr(board) == ("SweepBoard(model=board-m, metric=accuracy (max), status=finished, trials=6/6, "
                           "counts=4 finished, 1 pruned, 1 error, best=accuracy=0.9100 (trial 1), "
                           "registered=board-m:3)")
    bundle = board._repr_mimebundle_()
    assert bundle["text/plain"] == repr(board)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    # the saved fallback: the leaderboard, without the sweep id, workers or timings
    fallback = bundle["text/html"]
    assert [int(c[1]) for _, c, _ in _rows(fallback)] == [1, 3, 0, 5, 2, 4]
    assert sweep.id not in fallback and "40001" not in fallback and "seconds" not in fallback
    board.close()


def test_an_error_shows_its_one_line():
    state, sweep = _sweep()
    board = SweepBoard(sweep, plot_interval=60)
    _in_thread(_drive, state, TRIALS[4:5])
    _in_thread(state.error, SweepError("every trial failed", hint="look at the trials' errors"))
    line = "SweepError: every trial failed (hint: look at the trials' errors)"
    assert html.escape(line) in board.error.value and "aiaas-form-error" in board.error.value
    assert board.final.value == "" and board.cancel_button.disabled and board.bar.bar_style == "danger"
    assert repr(board).endswith("error=SweepError)")
    board.close()


# ------------------------------------------------------------------------------- cancel
def test_cancel_calls_the_canceller_then_is_disabled():
    calls = []
    state, sweep = _sweep(canceller=lambda: calls.append(time.monotonic()))
    board = SweepBoard(sweep, plot_interval=60)
    _in_thread(_drive, state)
    assert not board.cancel_button.disabled
    board.cancel_button.click()
    assert len(calls) == 1 and board.cancel_button.disabled and "cancelling" in board.message.value

    def dispatcher_cancels():  # what the dispatcher does when its canceller was called
        state.trial_ended(5, "cancelled")
        state.cancelled(SweepError("sweep swp0123abcd was cancelled"))

    _in_thread(dispatcher_cancels)
    assert board.message.value == "" and board.cancel_button.disabled
    assert "SweepError: sweep swp0123abcd was cancelled" in board.error.value
    assert board.counts.value == "3 finished · 1 pruned · 1 error · 1 cancelled"
    board.cancel_button.click()  # disabled in a front-end; a click from code changes nothing
    assert len(calls) == 1


def test_cancel_of_a_sweep_this_kernel_does_not_drive_says_so_in_one_line():
    state, sweep = _sweep(canceller=None)
    board = SweepBoard(sweep, plot_interval=60)
    _in_thread(_drive, state, TRIALS[:1])
    board.cancel_button.click()
    assert "SweepError: sweep swp0123abcd is not driven by this kernel" in board.message.value
    assert "%aiaas sweep attach swp0123abcd" in board.message.value
    assert not board.cancel_button.disabled  # it can be tried again
    board.close()


# ------------------------------------------------------------------------------- the picture
def test_plot_metric_vs_each_parameter_and_learning_curves_with_pruned_dashed():
    state, sweep = _sweep()
    board = SweepBoard(sweep, table_interval=0.05, plot_interval=0.05)
    drawn = []
    board.plot.observe(lambda change: drawn.append(bytes(change["new"])), names="value")
    _in_thread(_drive, state, TRIALS[:3])
    _until(lambda: board.plot_axes and board.plot_axes[-1]["dashed"] == 1, what="the pruned curve")
    before = bytes(board.plot.value)
    assert before.startswith(PNG) and board.plot.layout.display is None
    axes = {a["title"]: a for a in board.plot_axes}
    assert list(axes) == ["lr", "depth", "accuracy per epoch"]
    assert axes["lr"]["xscale"] == "log" and axes["depth"]["xscale"] == "linear"  # 1e-4..1e-1: 3 decades
    curves = axes["accuracy per epoch"]
    assert curves["dashed"] == 1  # the pruned trial, ending where it was stopped
    assert [max(x) for x in curves["lines"]] == [3, 1, 3]  # trial 0, the pruned 2, then the best (1) on top
    # a trial that ends changes the picture
    n = len(drawn)
    _in_thread(_drive_one_more, state)
    _until(lambda: len(drawn) > n and len(board.plot_axes[-1]["lines"]) == 4, what="a redraw")
    after = bytes(board.plot.value)
    assert after.startswith(PNG) and after != before
    board.close()


def _drive_one_more(state):
    state.trial_added(TrialRecord(state.id, 3, params={"lr": 3e-2, "depth": 2}))
    state.trial_running(3, WORKER)
    for epoch, value in enumerate([0.65, 0.80], start=1):
        state.trial_epoch(3, {"epoch": epoch, "metrics": {"accuracy": value}}, value)
    state.trial_ended(3, "finished", value=0.80)


def test_no_learning_curves_without_epochs():
    """A non-iterative scikit-learn sweep: one value per trial, so only metric-vs-parameter."""
    state, sweep = _sweep(framework="sklearn")
    board = SweepBoard(sweep, plot_interval=0.05)
    for n, (params, curve, _, _) in enumerate(TRIALS[:3]):
        state.trial_added(TrialRecord(state.id, n, params=dict(params)))
        state.trial_running(n, WORKER)
        state.trial_ended(n, "finished", value=curve[-1])
    state.finished(None)
    assert [a["title"] for a in board.plot_axes] == ["lr", "depth"]
    assert bytes(board.plot.value).startswith(PNG)
    assert "nothing registered" in board.final.value


# ------------------------------------------------------------------------------- quiet, throttled
def test_quiet_and_throttled(capfd, caplog):
    """Hundreds of epoch events: no output, no log record, and a bounded number of redraws."""
    caplog.set_level(logging.INFO)
    state, sweep = _sweep(n_trials=2)
    board = SweepBoard(sweep, table_interval=0.3, plot_interval=0.5)
    counts_seen = []
    board.counts.observe(lambda change: counts_seen.append(change["new"]), names="value")
    t0 = time.monotonic()

    def many():
        state.trial_added(TrialRecord(state.id, 0, params={"lr": 1e-3, "depth": 2}))
        state.trial_added(TrialRecord(state.id, 1, params={"lr": 1e-2, "depth": 4}))
        for epoch in range(1, 301):
            for n in (0, 1):
                state.trial_epoch(n, {"epoch": epoch, "metrics": {"accuracy": 0.5 + n * 0.1 + epoch / 1000}},
                                  0.5 + n * 0.1 + epoch / 1000, WORKER)
            if epoch % 30 == 0:
                time.sleep(0.02)  # ~0.2 s of events in all, as from a busy cluster
        state.trial_ended(0, "finished", value=0.8)
        state.trial_ended(1, "pruned")
        state.finished(None)

    _in_thread(many)
    elapsed = time.monotonic() - t0
    # 600 epoch events: the table at most every 0.3 s, the picture every 0.5 s (+ the first and the last)
    assert 1 <= board.tables_drawn <= math.ceil(elapsed / 0.3) + 3, (board.tables_drawn, elapsed)
    assert 1 <= board.plots_drawn <= math.ceil(elapsed / 0.5) + 2, (board.plots_drawn, elapsed)
    # the header changes with trial events only, never with epochs
    assert counts_seen == ["1 pending", "2 pending", "1 running · 1 pending", "2 running",
                           "1 finished · 1 running", "1 finished · 1 pruned"]
    # the final picture has every epoch, the final table every trial
    assert [max(x) for x in board.plot_axes[-1]["lines"]] == [300, 300]
    assert [c[2] for _, c, _ in _rows(board.table.value)] == ["finished", "pruned @ epoch 300"]
    time.sleep(0.6)  # a timer left behind would draw (and could print) now
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert [r for r in caplog.records if r.name.startswith(("aiaas_jupyter", "root"))] == []
    assert board.message.value == ""  # no redraw failed
    board.close()


def test_presenter_outside_a_kernel_prints_the_plain_repr_once_at_the_end(capsys):
    from aiaas_jupyter.widgets.live_views import NotebookPresenter

    state, sweep = _sweep(n_trials=1)
    NotebookPresenter().show_sweep(sweep, block=True)
    _in_thread(_drive, state, TRIALS[1:2])
    assert capsys.readouterr() == ("", "")
    _in_thread(state.finished, _version())
    out, err = capsys.readouterr()
    assert out == "" and err == repr(sweep) + "\n"
    assert "board-m:3" in err and "status=finished" in err


# ------------------------------------------------------------------------------- a real kernel
def _cell_id(messages) -> str:
    """The msg_id of the execute request these messages answer (late messages of earlier cells
    or of the kernel's start can come first)."""
    (cell,) = {m["parent_header"]["msg_id"] for m in messages if m["msg_type"] == "execute_input"}
    return cell


KERNEL_CELL = """
import threading, time
from aiaas_jupyter.registry.sweeps_table import SweepRecord, TrialRecord
from aiaas_jupyter.sweep_state import SweepState
from aiaas_jupyter.sweep_handle import Sweep
from aiaas_jupyter.widgets.live_views import NotebookPresenter
state = SweepState(SweepRecord(id="swpkernel", model="kboard", metric="accuracy", n_trials=3,
                               info={"framework": "torch", "space": {"lr": [0.1, 0.01, 0.001]}}))
sw = Sweep(state, canceller=lambda: None)
NotebookPresenter().show_sweep(sw, block=False)
def drive():
    for n, lr in enumerate([0.1, 0.01, 0.001]):
        state.trial_added(TrialRecord("swpkernel", n, params={"lr": lr}))
    for n in range(3):
        state.trial_running(n, "tcp://127.0.0.1:1")
        for e in range(1, 4):
            time.sleep(0.05)
            state.trial_epoch(n, {"epoch": e, "metrics": {"accuracy": 0.5 + 0.1 * n + 0.01 * e}}, 0.5 + 0.1 * n + 0.01 * e)
        state.trial_ended(n, "pruned" if n == 0 else "finished", value=0.5 + 0.1 * n + 0.03)
    state.finished(None)
threading.Thread(target=drive, daemon=True).start()
"""


def test_the_board_in_a_real_kernel(tmp_path):
    """A kernel shows the SweepBoard widget, which updates through comm messages while the sweep
    runs on another thread; the output is rewritten once at the end as a cell the front-end
    listens to; and nothing is printed."""
    import jupyter_client

    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "AIAAS_HOME": str(tmp_path)}, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        first = execute(kc, KERNEL_CELL)
        done = execute(kc, "assert sw.wait(30)\nprint(sw.status)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    messages = first + done
    assert [m["content"] for m in messages if m["msg_type"] == "error"] == []
    (shown,) = [m for m in first if m["msg_type"] == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown["content"]["data"]
    assert shown["content"]["data"]["text/plain"].startswith("SweepBoard(model=kboard")
    # the table widget changed through comm messages, live: several states, the last one complete
    tables = [m["content"]["data"]["state"]["value"] for m in messages if m["msg_type"] == "comm_msg"
              and "aiaas-trials" in str(m["content"]["data"].get("state", {}).get("value", ""))]
    assert len(tables) >= 2 and "pruned @ epoch 3" in tables[-1] and "★" in tables[-1]
    # rewritten once, at the end, as output of a cell the front-end listens to
    display_id = shown["content"]["transient"]["display_id"]
    (update,) = [m for m in messages if m["msg_type"] == "update_display_data"
                 and m["content"]["transient"]["display_id"] == display_id]
    assert update["content"]["data"]["text/plain"] == ("SweepBoard(model=kboard, metric=accuracy (max), "
                                                       "status=finished, trials=3/3, counts=2 finished, 1 pruned, "
                                                       "best=accuracy=0.7300 (trial 2))")
    assert update["parent_header"]["msg_id"] in {_cell_id(first), _cell_id(done)}
    # quiet: the only text in the cells is what the test printed
    printed = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
    assert printed == ["finished\n"]
