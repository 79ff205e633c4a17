"""The TrainForm in a real JupyterLab page: ipywidgets render (jupyterlab_widgets, prebuilt),
a click on Train starts a job on the kernel's embedded cluster, and the job's progress widget
in the form shows it finish; the registry gains the version.

Same harness as the sidebar's end-to-end test (tests/support/lab_harness.py): a ``jupyter lab``
subprocess with throwaway settings and registry, Debian chromium through playwright.
"""

from __future__ import annotations

from aiaas_jupyter.registry import Registry
from support.lab_harness import (OUT, cell_output, cells, chromium_context, jp_asyncio_loop,  # noqa: F401
                         jp_server_cleanup, run_cell, running_lab, wait_kernel_idle, write_notebook)

NOTEBOOK = "forms.ipynb"
MODEL = "form-iris"
SETUP = ("%load_ext aiaas_jupyter\n"
         "from sklearn.datasets import load_iris\n"
         "df = load_iris(as_frame=True).frame\n"
         "%aiaas connect --workers 1 --threads 1\n"
         "print('READY', df.shape)")
FORM = f"%aiaas train --form --data df --target target --name {MODEL}"


def test_train_form_in_jupyterlab(tmp_path):
    with running_lab(tmp_path, home=tmp_path / "aiaas-home") as lab:
        write_notebook(lab.root / NOTEBOOK, [SETUP, FORM])
        with chromium_context(tmp_path / "chromium-profile") as context:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(lab.page_url(f"lab/tree/{NOTEBOOK}"))
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
            wait_kernel_idle(page, timeout=90_000)
            run_cell(page, 0)
            assert "READY (150, 5)" in cell_output(page, 0)
            run_cell(page, 1)
            output = cells(page).nth(1).locator(".jp-Cell-outputArea")
            train = output.locator("button.aiaas-train-button")
            train.wait_for(state="visible", timeout=60_000)  # the widget rendered (not its text/plain)
            assert MODEL not in [m["name"] for m in Registry(lab.home).list_models()]
            train.click()
            page.wait_for_function(
                "el => /finished in/.test(el.innerText)", arg=output.element_handle(), timeout=180_000, polling=200)
            (version,) = Registry(lab.home).versions(MODEL)
            assert version.version == 1 and 0.8 <= version.metrics["accuracy"] <= 1.0
            assert f"{version.metrics['accuracy']:.3f}"[:4] in output.inner_text()
            OUT.mkdir(parents=True, exist_ok=True)
            output.screenshot(path=str(OUT / "train-form.png"))
            page.close()
