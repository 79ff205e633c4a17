"""The sidebar's commands, context menu, status bar and polling policy, end to end: a real
``jupyter lab`` with the installed labextension, a real notebook, a real Chromium (issue 12).

In order (one lab, one page; each step starts where the one before left off):

1. nothing asks ``/aiaas/api`` before the panel is first opened, and nothing after it is
   closed again (no running job: nothing else shows the data);
2. the palette lists the AIaaS commands under "AIaaS", and "Load a model…" asks which model
   and inserts the cell;
3. right-click a model row: the context menu offers Deploy / Insert snippet, and Insert
   snippet adds the cell;
4. with the panel closed, a running job shows in the status bar ("AIaaS: 1 running"), and the
   status bar keeps the data polled: the item goes away when the job ends, panel still closed.

The model is registered before the lab starts (no training: this file tests the front end).
"""

from __future__ import annotations

import time

import pytest

from support import serving_models as sm
from support.lab_harness import (cell_text, cells, chromium_context, jp_asyncio_loop,  # noqa: F401
                                 jp_server_cleanup, running_lab, write_notebook)
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.registry.jobs_table import JobRecord

MODEL = "cmd-iris"
NOTEBOOK = "commands.ipynb"
TAB = '.jp-SideBar .lm-TabBar-tab[data-id="aiaas-sidebar"]'
PANEL = "#aiaas-sidebar"
ROW = f'{PANEL} .aiaas-model-row[data-aiaas-model="{MODEL}"]'
STATUS = ".jp-StatusBar-Widget .aiaas-statusbar-item"
API = "/aiaas/api/"
#: the hidden interval (10 s) plus a request and a render
HIDDEN_POLL_S = 16


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e-commands-lab")
    home = base / "aiaas-home"
    sm.register(Registry(home), MODEL, sm.train_iris())
    with running_lab(base, home=home) as lab:
        write_notebook(lab.root / NOTEBOOK, ["x = 1"])
        yield lab


@pytest.fixture(scope="module")
def requests_seen():
    return []


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory, requests_seen):
    with chromium_context(tmp_path_factory.mktemp("chromium-commands")) as context:
        page = context.new_page()
        page.set_default_timeout(30_000)
        # every request of the page, from the first one on
        page.on("request", lambda req: requests_seen.append(req.url) if API in req.url else None)
        page.goto(lab.page_url(f"lab/tree/{NOTEBOOK}"))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
        page.evaluate("() => window.jupyterapp.restored")
        yield page
        page.close()


def panel_open(page) -> bool:
    return "lm-mod-current" in (page.locator(TAB).get_attribute("class") or "")


def toggle_sidebar(page, show: bool) -> None:
    if panel_open(page) != show:
        page.locator(TAB).click()
    page.locator(PANEL).wait_for(state="visible" if show else "hidden")


def new_cell_text(page, before: int) -> str:
    page.wait_for_function("n => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length > n",
                           arg=before)
    texts = [cell_text(page, i) for i in range(cells(page).count())]
    added = [t for t in texts if MODEL in t]
    assert len(added) == 1, texts
    return added[0]


def undo_cell(page, before: int) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:undo-cell-action')")
    page.wait_for_function("n => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length === n",
                           arg=before)


def test_no_request_before_the_panel_is_opened_nor_after_it_is_closed(page, requests_seen):
    page.wait_for_timeout(4000)  # the old poll asked at once on start, then every 10 s
    assert requests_seen == [], requests_seen
    toggle_sidebar(page, True)
    page.locator(ROW).wait_for(state="visible")
    assert any(url.split("?")[0].endswith("/aiaas/api/models") for url in requests_seen), requests_seen
    toggle_sidebar(page, False)
    page.wait_for_timeout(1000)  # a request already under way may still land
    seen = len(requests_seen)
    page.wait_for_timeout(12_000)
    assert requests_seen[seen:] == [], requests_seen[seen:]


def test_palette_lists_the_commands_and_load_model_prompts(page):
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    palette.fill("AIaaS")
    labels = [t.strip() for t in page.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel").all_inner_texts()]
    for label in ["AIaaS: Open the models sidebar", "AIaaS: Refresh the models sidebar", "AIaaS: Deploy a model…",
                  "AIaaS: Undeploy a model…", "AIaaS: Insert a model snippet…", "AIaaS: Load a model…",
                  "AIaaS: Copy an endpoint URL…"]:
        assert label in labels, labels
    headers = page.locator(".lm-CommandPalette-header").all_inner_texts()
    assert any("AIaaS" in h for h in headers), headers
    before = cells(page).count()
    palette.fill("AIaaS: Load a model")
    page.keyboard.press("Enter")
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible")
    assert MODEL in dialog.locator("select").inner_text()  # the known models (read when the panel was open)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    assert f'load_model("{MODEL}:1")' in new_cell_text(page, before)
    undo_cell(page, before)


def test_context_menu_on_a_model_row(page):
    toggle_sidebar(page, True)
    before = cells(page).count()
    page.locator(ROW).first.click(button="right")
    menu = page.locator(".lm-Menu.lm-ContextMenu, .lm-Menu").last
    menu.wait_for(state="visible")
    items = [t.strip() for t in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]
    assert {"Deploy", "Insert snippet", "Load model", "Undeploy"} <= set(items), items
    # not deployed: Undeploy is there but disabled
    undeploy = menu.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text="Undeploy"))
    assert "lm-mod-disabled" in (undeploy.get_attribute("class") or "")
    menu.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text="Insert snippet")).click()
    assert f'load_model("{MODEL}:1")' in new_cell_text(page, before)  # not deployed: the load snippet
    undo_cell(page, before)


def test_status_bar_shows_running_jobs_with_the_panel_closed(lab, page, requests_seen):
    toggle_sidebar(page, False)
    reg = Registry(lab.home)
    reg.record_job(JobRecord(id="e2e-status-1", model=MODEL, status="running", progress=0.4))
    status = page.locator(STATUS)
    assert not status.is_visible()
    page.evaluate("() => window.jupyterapp.commands.execute('aiaas:refresh')")  # as after a cell's %aiaas
    status.wait_for(state="visible", timeout=10_000)
    assert status.inner_text().strip() == "AIaaS: 1 running"
    assert not panel_open(page)
    # the item keeps the data polled while it is shown: the job's end reaches it, panel closed
    # first: jobs are still polled with the panel closed (a request sent after the item showed;
    # asserting this before the update, not after, so a request already in flight cannot race it)
    seen = len(requests_seen)
    deadline = time.monotonic() + HIDDEN_POLL_S
    while not any(url.split("?")[0].endswith("/aiaas/api/jobs") for url in requests_seen[seen:]):
        assert time.monotonic() < deadline, "no jobs request while the panel was closed"
        page.wait_for_timeout(250)
    reg.update_job("e2e-status-1", status="finished", progress=1.0)
    t0 = time.monotonic()
    status.wait_for(state="hidden", timeout=HIDDEN_POLL_S * 1000)
    print(f"status bar cleared {time.monotonic() - t0:.1f} s after the job ended, panel closed")
    assert not panel_open(page)
    # and a click on it opens the panel (shown again for a second job)
    reg.record_job(JobRecord(id="e2e-status-2", model=MODEL, status="pending"))
    page.evaluate("() => window.jupyterapp.commands.execute('aiaas:refresh')")
    status.wait_for(state="visible", timeout=10_000)
    status.click()
    page.locator(PANEL).wait_for(state="visible")
    reg.update_job("e2e-status-2", status="cancelled")
