"""A real Jupyter kernel: a non-blocking `%%aiaas train` cell returns at once and its output
updates in place (update_display_data) until the job finishes, with lineage in the metadata."""

from __future__ import annotations

import os
import queue
import time

import jupyter_client


def _execute(kc, code: str, timeout: float = 120) -> list[dict]:
    msg_id = kc.execute(code)
    messages = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        messages.append(msg)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            return messages
    raise TimeoutError(code)


def _errors(messages):
    return [m["content"] for m in messages if m["msg_type"] == "error"]


def test_live_job_output_in_a_kernel(tmp_path):
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "AIAAS_HOME": str(tmp_path)}, cwd=str(tmp_path))
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
    finally:
        _execute(kc, "%aiaas disconnect", timeout=60)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
