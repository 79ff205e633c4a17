"""A real Jupyter kernel: a non-blocking `%%aiaas train` cell returns at once and shows a live
view of the job until it finishes, with lineage in the output's metadata.

Two views, one kernel: the JobProgress widget (the default in a kernel: it updates itself
through comm messages, and its output is rewritten once at the end for static viewers), and
the HTML view (setting ``aiaas.jobs.widget`` false), whose output updates in place through
update_display_data."""

from __future__ import annotations

import os
import time

import jupyter_client
import pytest

from support.kernel_io import errors as _errors
from support.kernel_io import execute as _execute


@pytest.fixture(scope="module")
def kc(tmp_path_factory):
    """A python3 kernel with the extension loaded, an embedded 1-worker cluster and a frame ``d``."""
    home = tmp_path_factory.mktemp("kernel-live")
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "AIAAS_HOME": str(home)}, cwd=str(home))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        setup = _execute(kc, "%load_ext aiaas_jupyter\n%aiaas connect --workers 1 --threads 1\n"
                             "import numpy as np, pandas as pd\nrng = np.random.default_rng(1)\n"
                             "X = rng.normal(size=(3000, 8)).astype('float32')\n"
                             "d = pd.DataFrame(X, columns=[f'f{i}' for i in range(8)])\n"
                             "d['y'] = (X @ rng.normal(size=8) > 0).astype(int)\n")
        assert not _errors(setup), _errors(setup)
        yield kc
    finally:
        _execute(kc, "%aiaas disconnect", timeout=60)
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_live_job_output_in_a_kernel(kc):
    """The HTML view: display-id updates in place."""
    off = _execute(kc, "import dask\ndask.config.set({'aiaas.jobs.widget': False})")
    assert not _errors(off), _errors(off)
    t0 = time.time()
    cell = ("%%aiaas train --data d --target y --name live-mlp -o job --epochs 6 --batch-size 64\n"
            "import torch\ntorch.manual_seed(0)\n"
            "model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))\n")
    messages = _execute(kc, cell)
    returned_after = time.time() - t0
    assert not _errors(messages), _errors(messages)
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert "finished" not in shown[0]["content"]["data"]["text/html"]  # shown while still running
    # wait for the job in a second cell, then collect the in-place updates that arrived
    done = _execute(kc, "print(job.result(timeout=120).ref)")
    assert not _errors(done), _errors(done)
    updates = [m for m in messages + done if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == display_id]
    html = [u["content"]["data"]["text/html"] for u in updates]
    assert "finished" in html[-1] and "6/6" in html[-1]
    assert len(updates) >= 3  # start, epochs, done: a live view, not one final picture
    # every update is the output of a cell the front-end is listening to: the train cell or
    # the cell running when it came (never `%aiaas connect`, whose thread Dask uses)
    cells = {messages[0]["parent_header"]["msg_id"], done[0]["parent_header"]["msg_id"]}
    assert {u["parent_header"]["msg_id"] for u in updates} <= cells
    assert updates[-1]["parent_header"]["msg_id"] == done[0]["parent_header"]["msg_id"]
    final_meta = updates[-1]["content"]["metadata"]["aiaas"]
    assert final_meta["model"] == "live-mlp" and final_meta["version"] == 1
    assert len(final_meta["data_fingerprint"]) == 64
    assert "GPU-seconds" in html[-1] and "wall time" in html[-1]
    printed = "".join(m["content"].get("text", "") for m in done if m["msg_type"] == "stream")
    assert printed.strip() == "live-mlp:1"
    assert returned_after < 30  # the cell returned long before a blocking run would have


def _cell_id(messages) -> str:
    """The msg_id of the execute request these messages answer (late messages of earlier cells
    can come first in the list)."""
    (cell,) = {m["parent_header"]["msg_id"] for m in messages if m["msg_type"] == "execute_input"}
    return cell


def _comm_states(messages, model_name: str) -> list[tuple[dict, list]]:
    """(state, buffers) of every comm_open / update of the widgets of one model class, in order."""
    ids = {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"
           and m["content"]["data"]["state"].get("_model_name") == model_name}
    return [(m["content"]["data"].get("state", {}), m.get("buffers") or []) for m in messages
            if m["msg_type"] in ("comm_open", "comm_msg") and m["content"]["comm_id"] in ids]


def test_live_job_widget_in_a_kernel(kc):
    """The default in a kernel: the JobProgress widget, live through comm messages."""
    on = _execute(kc, "import dask\ndask.config.set({'aiaas.jobs.widget': True})")
    assert not _errors(on), _errors(on)
    t0 = time.time()
    # small batches: long enough (~2 s) that the widget, built after the submit, sees it move
    cell = ("%%aiaas train --data d --target y --name live-widget -o wjob --epochs 10 --batch-size 8\n"
            "import torch\ntorch.manual_seed(0)\n"
            "model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))\n")
    messages = _execute(kc, cell)
    returned_after = time.time() - t0
    assert not _errors(messages), _errors(messages)
    (shown,) = [m for m in messages if m["msg_type"] == "display_data"]
    data = shown["content"]["data"]
    model_id = data["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert data["text/plain"].startswith("JobProgress(model=live-widget, framework=torch, status=")
    assert "finished" not in data["text/plain"] and "finished" not in data["text/html"]
    opened = {m["content"]["comm_id"]: m["content"]["data"]["state"] for m in messages if m["msg_type"] == "comm_open"}
    assert opened[model_id]["_model_name"] == "VBoxModel"
    done = _execute(kc, "print(wjob.result(timeout=120).ref)")
    assert not _errors(done), _errors(done)
    printed = "".join(m["content"].get("text", "") for m in done if m["msg_type"] == "stream")
    assert printed.strip() == "live-widget:1"
    every = messages + done
    # live: the bar moved in steps while the job ran, then reached 1.0; the labels followed
    bar = [s["value"] for s, _ in _comm_states(every, "FloatProgressModel") if "value" in s]
    assert bar[-1] == 1.0 and bar == sorted(bar) and len({v for v in bar if 0 < v < 1}) >= 3, bar
    labels = [s["value"] for s, _ in _comm_states(every, "LabelModel") if "value" in s]
    epochs = [v for v in labels if v.startswith("epoch ")]
    assert epochs[-1] == "epoch 10/10" and len(set(epochs)) >= 3, labels
    assert any(v.startswith("finished in ") for v in labels)
    pngs = [bytes(b) for _, buffers in _comm_states(every, "ImageModel") for b in buffers if len(b)]
    assert pngs and all(p.startswith(b"\x89PNG") for p in pngs)
    metrics = [s["value"] for s, _ in _comm_states(every, "HTMLModel") if "aiaas-metrics" in s.get("value", "")]
    assert metrics and "live-widget:1" in metrics[-1]
    # the output itself is rewritten once, at the end: final summary and lineage for saved notebooks
    display_id = shown["content"]["transient"]["display_id"]
    (final,) = [m for m in every if m["msg_type"] == "update_display_data"
                and m["content"]["transient"]["display_id"] == display_id]
    assert final["content"]["data"]["text/plain"] == (
        "JobProgress(model=live-widget, framework=torch, status=finished, progress=epoch 10/10, "
        "registered=live-widget:1)")
    assert final["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == model_id
    # sent as output of a cell the front-end listens to: the train cell, or the one running when the
    # job ended (comm messages need no such care: front-ends route them by comm id)
    assert final["parent_header"]["msg_id"] in {_cell_id(messages), _cell_id(done)}
    meta = final["content"]["metadata"]["aiaas"]
    assert meta["model"] == "live-widget" and meta["version"] == 1 and len(meta["data_fingerprint"]) == 64
    assert returned_after < 30



def test_map_shows_a_live_bar_in_a_kernel(kc):
    """aiaas_jupyter.map of a function of a kernel cell: one display that updates in place, ending
    on the finished bar, and the results in order."""
    cell = ("import aiaas_jupyter\n"
            "def slow_square(x):\n"
            "    import time\n"
            "    time.sleep(0.05)\n"
            "    return x * x\n"
            "squares = aiaas_jupyter.map(slow_square, range(40))\n"
            "print(squares == [x * x for x in range(40)])\n")
    messages = _execute(kc, cell)
    assert not _errors(messages), _errors(messages)
    (shown,) = [m for m in messages if m["msg_type"] == "display_data"]
    display_id = shown["content"]["transient"]["display_id"]
    assert "aiaas map slow_square" in shown["content"]["data"]["text/html"]
    updates = [m["content"]["data"] for m in messages if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == display_id]
    assert len(updates) >= 2  # live: the bar moved before the end
    assert "finished" in updates[-1]["text/html"] and updates[-1]["text/plain"].startswith(
        "<MapJob slow_square: finished, 40/40 items, 40 tasks")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert printed.strip() == "True"


def test_preprocess_with_kernel_functions(kc):
    """Functions of ipykernel cells in a preprocess cell: they work, and their failure is one line
    with the function's own line under it (here found in the kernel: Dask's meta inference, retried
    on the real rows of the one partition, meets the None)."""
    define = _execute(kc, "def norm(s):\n    return s.strip().lower()\n"
                          "texts = pd.DataFrame({'t': ['  A', 'B ', None, 'c']})\n")
    assert not _errors(define), _errors(define)
    ok = _execute(kc, "%%aiaas preprocess --input texts --output normed\n"
                      "df = df.dropna()\ndf['t'] = df['t'].apply(norm)\n")
    assert not _errors(ok), _errors(ok)
    check = _execute(kc, "print(normed.compute()['t'].tolist())")
    printed = "".join(m["content"].get("text", "") for m in check if m["msg_type"] == "stream")
    assert printed.strip() == "['a', 'b', 'c']"
    failed = _execute(kc, "%%aiaas preprocess --input texts --output broken\ndf['t'] = df['t'].apply(norm)\n")
    (error,) = _errors(failed)
    lines = [line for line in error["traceback"]]
    assert error["ename"] == "PreprocessError" and lines[0].endswith(
        "PreprocessError\x1b[0m: the preprocess cell raised AttributeError: 'NAType' object has no attribute 'strip'")
    assert lines[1] == "--- traceback (in the kernel) ---" and "    return s.strip().lower()" in lines
    bound = _execute(kc, "print('broken' in globals())")
    assert "".join(m["content"].get("text", "") for m in bound if m["msg_type"] == "stream").strip() == "False"
