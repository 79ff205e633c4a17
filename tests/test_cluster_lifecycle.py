"""How the embedded cluster ends: ``%aiaas disconnect`` in a real kernel prints only its own
line and takes about a second; a script that never disconnects ends without Dask's warnings;
an idle cluster (``aiaas.cluster.idle-timeout``) shuts itself down and the next call says so.

The scripts run as subprocesses, as a user runs them, so their whole stderr is seen; every
worker process they started must be gone when they end.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jupyter_client
import pytest

NOISE = ("WARNING", "ERROR", "Traceback", "Removing worker", "still alive", "distributed.")


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def _run_script(code: str, home: Path, timeout: float = 240) -> tuple[dict, str]:
    """Run *code* as ``python script.py``; return the JSON it printed last and its stderr."""
    script = home.parent / "script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "AIAAS_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


SCRIPT_WITHOUT_DISCONNECT = """
    import json, os
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier
    import aiaas_jupyter as aiaas

    if __name__ == "__main__":
        aiaas.connect(n_workers=2, threads_per_worker=1, gpus=0)
        frame = pd.DataFrame({"x": [float(i) for i in range(200)], "y": [i % 2 for i in range(200)]})
        clean = aiaas.preprocess(frame, "clean", "df = df[df.x > 3]").frame   # persisted on the workers
        job = aiaas.train(DecisionTreeClassifier(random_state=0), clean, "y", name="script-tree", seed=0)
        version = job.result(timeout=120)
        pids = list(aiaas.get_client().dask.run(os.getpid).values())
        print(json.dumps({"ref": version.ref, "rows": len(clean), "pids": pids}))
        # no disconnect: the script just ends
"""


def test_script_ends_quietly_without_disconnect(tmp_path):
    got, err = _run_script(SCRIPT_WITHOUT_DISCONNECT, tmp_path / "home")
    assert got["ref"] == "script-tree:1" and got["rows"] == 196 and len(got["pids"]) == 2
    assert not [line for line in err.splitlines() if any(n in line for n in NOISE)], err[-3000:]
    assert all(_gone(pid) for pid in got["pids"]), "worker processes outlived the script"


IDLE_SCRIPT = """
    import json, os, time
    import dask
    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.errors import ClusterError

    if __name__ == "__main__":
        c = AiaasClient()
        with dask.config.set({"aiaas.cluster.idle-timeout": "2s"}):   # before any other config read
            c.connect(n_workers=1, threads_per_worker=1, gpus=0)
        pids = list(c.dask.run(os.getpid).values())
        busy = c.dask.submit(lambda: (time.sleep(4), 7)[1]).result()      # running longer than the timeout
        t0, message = time.monotonic(), None
        while message is None and time.monotonic() - t0 < 60:
            try:
                c.status()
                time.sleep(0.05)
            except ClusterError as e:
                message = str(e)
        noticed = time.monotonic() - t0
        while not all(not os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        c.connect(n_workers=1, threads_per_worker=1, gpus=0)               # config read after the `with`
        again = c.dask.submit(sum, [1, 2, 3]).result()
        c.disconnect()
        print(json.dumps({"busy": busy, "noticed": noticed, "pids": pids, "message": message, "again": again}))
"""


def test_idle_embedded_cluster_shuts_itself_down(tmp_path):
    got, err = _run_script(IDLE_SCRIPT, tmp_path / "home")
    assert got["busy"] == 7  # a task longer than the idle timeout is work, not idleness
    assert 1.5 < got["noticed"] < 15, got
    assert got["message"].startswith("the embedded cluster shut down after 2s idle")
    assert "%aiaas connect" in got["message"]
    assert got["again"] == 6
    assert all(_gone(pid) for pid in got["pids"])
    assert not [line for line in err.splitlines() if any(n in line for n in NOISE)], err[-3000:]


def _execute(kc, code: str, timeout: float = 180) -> tuple[list[dict], float]:
    msg_id = kc.execute(code)
    t0 = time.monotonic()
    messages = []
    while time.monotonic() - t0 < timeout:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages, time.monotonic() - t0
    raise TimeoutError(code)


def _outputs(messages) -> list[tuple[str, str]]:
    shown = []
    for m in messages:
        if m["msg_type"] == "stream":
            shown.append((m["content"]["name"], m["content"]["text"]))
        elif m["msg_type"] == "error":
            shown.append(("error", m["content"]["evalue"]))
    return shown


@pytest.fixture
def kernel_manager(tmp_path):
    """A python3 kernel with its own TMPDIR (where Dask puts its scratch space)."""
    (tmp_path / "tmp").mkdir()
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "AIAAS_HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")},
                    cwd=str(tmp_path))
    try:
        yield km
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(kernel_manager):
    kc = kernel_manager.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()


def test_disconnect_in_a_kernel_is_quiet_and_fast(kernel):
    setup, _ = _execute(kernel, textwrap.dedent("""
        %load_ext aiaas_jupyter
        %aiaas connect --workers 2 --threads 1
        import os, dask, pandas as pd
        dask.config.set({"aiaas.jobs.widget": False})
        d = pd.DataFrame({"x": [float(i) for i in range(300)], "y": [i % 3 for i in range(300)]})
    """))
    assert not [o for o in _outputs(setup) if o[0] != "stdout"], _outputs(setup)
    pre, _ = _execute(kernel, "%%aiaas preprocess --input d --output clean\ndf = df[df.x > 2]")
    train, _ = _execute(kernel, "%%aiaas train --data clean --target y --name quiet-tree --block\n"
                                "from sklearn.tree import DecisionTreeClassifier\n"
                                "model = DecisionTreeClassifier(random_state=0)")
    assert not [o for o in _outputs(pre + train) if o[0] != "stdout"], _outputs(pre + train)
    pids, _ = _execute(kernel, "import aiaas_jupyter\n"
                               "print(sorted(aiaas_jupyter.get_client().dask.run(os.getpid).values()))")
    worker_pids = json.loads(_outputs(pids)[0][1])
    messages, seconds = _execute(kernel, "%aiaas disconnect")
    assert _outputs(messages) == [("stdout", "disconnected\n")]
    # measured here: 1.0-4.1 s before (workers tearing their interpreter down, the nanny killing
    # them after 4 s), 0.05 s since
    assert seconds < 1.0, f"%aiaas disconnect took {seconds:.2f} s"
    assert all(_gone(pid) for pid in worker_pids)
    later, _ = _execute(kernel, "import time; time.sleep(1)")  # nothing arrives after the fact either
    assert _outputs(later) == []


def test_interrupt_spares_the_cluster_and_shutdown_closes_it(kernel_manager, kernel, tmp_path):
    """Jupyter interrupts a kernel by sending SIGINT to its whole process group, and does so
    before every shutdown too; the embedded cluster's workers are in that group."""
    setup, _ = _execute(kernel, "%load_ext aiaas_jupyter\n%aiaas connect --workers 2 --threads 1\n"
                                "import os, time, aiaas_jupyter\nc = aiaas_jupyter.get_client().dask\n"
                                "print(sorted(c.run(os.getpid).values()))")
    worker_pids = json.loads(_outputs(setup)[-1][1])
    msg_id = kernel.execute("time.sleep(60)")
    time.sleep(1.5)
    kernel_manager.interrupt_kernel()
    interrupted = []
    while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in interrupted):
        m = kernel.get_iopub_msg(timeout=30)
        if m["parent_header"].get("msg_id") == msg_id:
            interrupted.append(m)
    assert _outputs(interrupted) == [("error", "")]  # the cell's KeyboardInterrupt, nothing from workers
    after, _ = _execute(kernel, "print(sorted(c.run(os.getpid).values()), c.submit(sum, [1, 2]).result())")
    assert _outputs(after) == [("stdout", f"{worker_pids} 3\n")]  # the same workers, still working

    kernel.stop_channels()
    kernel_manager.shutdown_kernel(now=False)  # as JupyterLab's "Shut Down Kernel"
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in worker_pids)
    scratch = tmp_path / "tmp" / "dask-scratch-space"  # the cluster was closed, not killed: no stale dirs
    assert sorted(p.name for p in scratch.iterdir()) == ["global.lock", "purge.lock"]
