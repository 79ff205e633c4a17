"""The sidebar's Sweeps section, end to end: a real ``jupyter lab`` (this venv, the installed
labextension and server extension), a real Chromium, and a registry home that the test writes
through the Registry API — the same calls a sweep's driver makes (``record_sweep``,
``record_trial`` with the sweep's counts and best score in the same transaction).

1. both sweeps are listed, newest first, with their progress, trial counts and best score
   (a ``max`` sweep finished and registered, a ``min`` sweep still running);
2. a trial of the running sweep ends with a better score: its row shows the new counts, progress
   and best within one poll interval (a live sweep is read on every tick), patched in place
   (the same DOM node), and the sweep then finishing turns the row ``finished``.

No kernel and no cluster: what is under test is the registry -> server route -> panel path.
To run it against a build of this checkout without installing it, point ``JUPYTER_PATH`` at a
directory whose ``labextensions/aiaas-jupyter`` is that build (the first extension of a name
found on the path wins).
"""

from __future__ import annotations

import time

import pytest

from support import serving_models as sm
from support.lab_harness import (OUT, chromium_context, jp_asyncio_loop,  # noqa: F401
                                 jp_server_cleanup, running_lab)
from aiaas_jupyter.registry import Registry, SweepRecord, TrialRecord

TAB = '.jp-SideBar .lm-TabBar-tab[data-id="aiaas-sidebar"]'
PANEL = "#aiaas-sidebar"
SECTION = f"{PANEL} .aiaas-section-sweeps"
#: the panel's default poll interval while visible (settings.ts visibleIntervalMs)
POLL_S = 2.0
#: the poll waits for a tick's answers before it counts the interval, so a write just after a
#: tick began shows one interval plus two round trips later (a round trip on a busy 2-core
#: runner: up to ~1 s)
SLACK_S = 2.0

RF = "e2e-sweep-rf"          # finished grid, max accuracy, best registered as RF v1
MLP = "e2e-sweep-mlp"        # running, min val_loss
RF_ID, MLP_ID = "sw-rf-0001", "sw-mlp-0002"


def row(sweep_id: str) -> str:
    return f'{SECTION} .aiaas-sweep[data-sweep="{sweep_id}"]'


def texts(page, sweep_id: str) -> dict:
    """What a row shows: the parts the test asserts on, read in one round trip."""
    return page.evaluate("""sel => {
        const r = document.querySelector(sel);
        const t = c => r.querySelector(c)?.textContent ?? null;
        return {model: t('.aiaas-sweep-model'), status: t('.aiaas-sweep-status'),
                trials: t('.aiaas-sweep-trials'), counts: t('.aiaas-sweep-counts'),
                best: t('.aiaas-sweep-best'), direction: t('.aiaas-sweep-direction'),
                version: t('.aiaas-sweep-version'),
                progress: Number(r.querySelector('progress').value)};
    }""", row(sweep_id))


def fill_registry(home) -> Registry:
    reg = Registry(home)
    sm.register(reg, RF, sm.train_iris())  # the version the RF sweep's best trial became
    reg.record_sweep(SweepRecord(id=RF_ID, model=RF, metric="accuracy", direction="max", search="grid",
                                 n_trials=4, max_concurrent=2, submitted="2026-12-01T10:00:00+00:00"))
    for number, (status, value) in enumerate([("finished", 0.91), ("pruned", 0.62), ("finished", 0.967),
                                              ("finished", 0.94)]):
        reg.record_trial(TrialRecord(sweep_id=RF_ID, number=number, status=status,
                                     params={"max_depth": 2 + number}, value=value, seconds=0.5))
    reg.update_sweep(RF_ID, status="finished", counts={"finished": 3, "pruned": 1}, best_trial=2,
                     best_value=0.967, version=1, finished="2026-12-01T10:01:00+00:00", duration_s=60.0)
    reg.record_sweep(SweepRecord(id=MLP_ID, model=MLP, status="running", metric="val_loss", direction="min",
                                 search="tpe", early_stop="asha", n_trials=8, max_concurrent=2,
                                 submitted="2026-12-01T11:00:00+00:00",
                                 counts={"pending": 5, "running": 2, "finished": 1}))
    reg.record_trial(TrialRecord(sweep_id=MLP_ID, number=0, status="finished", params={"lr": 0.01},
                                 value=0.412, seconds=3.0),
                     sweep_fields={"best_trial": 0, "best_value": 0.412})
    for number in (1, 2):
        reg.record_trial(TrialRecord(sweep_id=MLP_ID, number=number, status="running", params={"lr": 0.1}))
    return reg


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e-sweeps-lab")
    fill_registry(base / "aiaas-home")
    with running_lab(base, home=base / "aiaas-home") as lab:
        yield lab


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(lab.page_url("lab"))
        tab = page.locator(TAB)
        tab.wait_for(timeout=90_000)
        page.evaluate("() => window.jupyterapp.restored")
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        page.locator(PANEL).wait_for(state="visible")
        yield page
        page.close()


def test_sweeps_listed_with_progress_and_best(lab, page):
    assert lab.api("aiaas/api/sweeps")["sweeps"][0]["id"] == MLP_ID  # the route the panel reads
    page.locator(row(RF_ID)).wait_for(state="visible")
    page.locator(row(MLP_ID)).wait_for(state="visible")
    order = page.locator(f"{SECTION} .aiaas-sweep").evaluate_all("rows => rows.map(r => r.dataset.sweep)")
    assert order == [MLP_ID, RF_ID]  # newest first
    assert texts(page, RF_ID) == {
        "model": RF, "status": "finished", "trials": "4/4", "counts": "3 done · 1 pruned",
        "best": "accuracy=0.967 (#2)", "direction": "↑", "version": f"→ {RF} v1", "progress": 1.0}
    mlp = texts(page, MLP_ID)
    assert mlp == {
        "model": MLP, "status": "running", "trials": "1/8", "counts": "5 queued · 2 running · 1 done",
        "best": "val_loss=0.412 (#0)", "direction": "↓", "version": None, "progress": pytest.approx(1 / 8)}
    assert page.locator(f"{row(MLP_ID)} .aiaas-sweep-direction").get_attribute("title") == "lower is better"
    assert page.locator(f"{SECTION} .aiaas-section-error:not(:empty)").count() == 0
    OUT.mkdir(parents=True, exist_ok=True)
    page.locator(PANEL).screenshot(path=str(OUT / "sidebar-sweeps.png"))


def test_running_sweep_row_updates_in_place_within_the_poll_interval(lab, page):
    page.locator(row(MLP_ID)).wait_for(state="visible")
    page.evaluate("sel => { window.__sweepRow = document.querySelector(sel); }", row(MLP_ID))
    reg = Registry(lab.home)
    # trial 1 ends with a better (lower) loss; trial 3 starts: one transaction each, as the driver does
    reg.update_trial(MLP_ID, 1, status="finished", value=0.305, seconds=2.5,
                     sweep_fields={"counts": {"pending": 5, "running": 1, "finished": 2},
                                   "best_trial": 1, "best_value": 0.305})
    reg.record_trial(TrialRecord(sweep_id=MLP_ID, number=3, status="running", params={"lr": 0.03}),
                     sweep_fields={"counts": {"pending": 4, "running": 2, "finished": 2}})
    t0 = time.monotonic()
    page.wait_for_function(
        "sel => document.querySelector(sel + ' .aiaas-sweep-best')?.textContent === 'val_loss=0.305 (#1)'",
        arg=row(MLP_ID), timeout=(POLL_S + SLACK_S) * 1000 + 5000, polling=50)
    elapsed = time.monotonic() - t0
    assert elapsed < POLL_S + SLACK_S, f"the row updated {elapsed:.2f} s after the registry"
    assert page.evaluate("sel => document.querySelector(sel) === window.__sweepRow", row(MLP_ID))
    assert texts(page, MLP_ID) == {
        "model": MLP, "status": "running", "trials": "2/8", "counts": "4 queued · 2 running · 2 done",
        "best": "val_loss=0.305 (#1)", "direction": "↓", "version": None, "progress": pytest.approx(2 / 8)}
    assert texts(page, RF_ID)["best"] == "accuracy=0.967 (#2)"  # the other row is untouched

    # the rest of the trials end (two pruned), the best is registered: the same row turns finished
    reg.update_sweep(MLP_ID, status="finished", counts={"finished": 6, "pruned": 2}, version=1,
                     finished="2026-12-01T11:05:00+00:00", duration_s=300.0)
    page.wait_for_function(
        "sel => document.querySelector(sel + ' .aiaas-sweep-status')?.textContent === 'finished'",
        arg=row(MLP_ID), timeout=(POLL_S + SLACK_S) * 1000 + 5000, polling=50)
    assert page.evaluate("sel => document.querySelector(sel) === window.__sweepRow", row(MLP_ID))
    done = texts(page, MLP_ID)
    assert (done["trials"], done["counts"], done["progress"], done["version"]) == \
        ("8/8", "6 done · 2 pruned", 1.0, f"→ {MLP} v1")
    print(f"sweep row updated in place {elapsed:.2f} s after the registry write")
