"""``aiaas export NAME --to mlserver DIR`` (issue 15 point 8): the exported folders are served by a
real, stock MLServer (``.venv-mlserver``, started here on loopback) with this package's runtime class,
and give the same predictions as our own server for the same requests — a scikit-learn forest, a
text pipeline and a torch network (ONNX). A tampered artifact is refused, never loaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import w4_serving  # noqa: E402  (MLServer's process helpers: free ports, wait, stop)
from aiaas_jupyter.cli import main as aiaas_cli  # noqa: E402
from aiaas_jupyter.errors import DataError
from aiaas_jupyter.model_export import export_model
from aiaas_jupyter.registry import Registry
from aiaas_jupyter.serving import state
from support import serving_models as sm

ROOT = Path(__file__).resolve().parents[1]
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    if not MLSERVER.exists():  # the README test command always builds it: its absence is a failure
        pytest.fail("no .venv-mlserver: run `bash scripts/mlserver_env.sh` (bash scripts/dev.sh test does)")
    home = tmp_path_factory.mktemp("export-home")
    reg = Registry(home)
    sm.register(reg, "iris", sm.train_iris())
    sm.register(reg, "reviews", sm.train_text_ct())
    sm.register(reg, "mlp", sm.train_mlp())
    return home


@pytest.fixture(scope="module")
def both(home, tmp_path_factory):
    """(our server's URL and headers, MLServer's URL) serving the same three versions."""
    repo = tmp_path_factory.mktemp("mlserver-repo")
    for name in ("iris", "reviews", "mlp"):
        assert aiaas_cli(["export", name, str(repo / name), "--to", "mlserver", "--home", str(home)]) == 0
    http_port, grpc_port, metrics_port = (w4_serving.free_port() for _ in range(3))
    (repo / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "metrics_endpoint": None, "parallel_workers": 0, "load_models_at_startup": True}))
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PYTHONPATH=str(ROOT), MLSERVER_METRICS_ENDPOINT="", PYTHONUNBUFFERED="1")  # the runtime class: ours
    log = repo / "mlserver.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(MLSERVER), "start", str(repo)], cwd=repo, stdout=fh, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    url = f"http://127.0.0.1:{http_port}"
    info = state.ensure_server(home, deploy=("iris", "reviews", "mlp"))
    try:
        for name in ("iris", "reviews", "mlp"):
            w4_serving.wait_http(f"{url}/v2/models/{name}/ready", 120, proc, log)
        yield (info.url, info.headers()), url
    finally:
        w4_serving.stop_process(proc)
        state.stop_server(home)
    assert state.find_server(home) is None


def _infer(url: str, name: str, inputs: list, headers: dict | None = None, outputs: list | None = None) -> dict:
    body = {"inputs": inputs, **({"outputs": [{"name": o} for o in outputs]} if outputs else {})}
    r = httpx.post(f"{url}/v2/models/{name}/infer", json=body, headers=headers or {}, timeout=60)
    assert r.status_code == 200, r.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) if o["datatype"] != "BYTES" else o["data"]
            for o in r.json()["outputs"]}


@pytest.mark.parametrize("name, inputs, outputs", [
    ("iris", [{"name": "input", "shape": [3, 4], "datatype": "FP64", "data": sum(IRIS_ROWS, [])}],
     ["predict", "predict_proba"]),
    ("reviews", [{"name": "text", "shape": [3], "datatype": "BYTES",
                  "data": ["my cat purr fur paw", "stock bond market yield", "the dog and the bank"]}],
     ["predict", "predict_proba"]),
    ("mlp", [{"name": "input", "shape": [2, 8], "datatype": "FP32",
              "data": np.random.default_rng(0).normal(size=16).round(3).tolist()}], ["predict", "predict_proba"]),
])
def test_a_stock_mlserver_gives_our_predictions(both, name, inputs, outputs):
    (ours, headers), theirs = both
    mine, peer = _infer(ours, name, inputs, headers, outputs), _infer(theirs, name, inputs, outputs=outputs)
    for out in outputs:
        if isinstance(mine[out], list):
            assert peer[out] == mine[out], out
        else:
            np.testing.assert_allclose(np.asarray(peer[out], dtype=np.float64), mine[out], rtol=1e-6, err_msg=out)


def test_the_signature_holds_there_too(both):
    _, theirs = both
    r = httpx.post(f"{theirs}/v2/models/iris/infer", timeout=30, json={"inputs": [
        {"name": "input", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]})
    assert r.status_code == 400 and "is numeric (float64) in the model's signature" in r.text


def test_the_folder_holds_safe_artifacts_and_refuses_a_tampered_one(home, tmp_path, shell, aiaas):
    out = tmp_path / "iris"
    assert aiaas_cli(["export", "iris:1", str(out), "--to", "mlserver", "--home", str(home)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["aiaas-model.json", "model-settings.json", "model.skops"]  # no joblib, no pickle
    settings = json.loads((out / "model-settings.json").read_text())
    assert settings["implementation"] == "aiaas_jupyter.serving.mlserver_runtime.AiaasRuntime"
    assert aiaas_cli(["export", "iris", str(out), "--to", "mlserver", "--home", str(home)]) == 1  # not empty
    with pytest.raises(DataError, match="exists and is not empty; nothing was written"):
        export_model(Registry(home), "iris", out)
    data = (out / "model.skops").read_bytes()
    (out / "model.skops").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    probe = ("import asyncio, sys\n"
             "from mlserver.settings import ModelSettings, ModelParameters\n"
             "from aiaas_jupyter.serving.mlserver_runtime import AiaasRuntime\n"
             f"s = ModelSettings(name='iris', implementation=AiaasRuntime, parameters=ModelParameters(uri={str(out)!r}))\n"
             "try:\n    asyncio.run(AiaasRuntime(s).load())\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(ROOT / ".venv-mlserver" / "bin" / "python"), "-c", probe], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "MLServerError model.skops does not match its sha256 in aiaas-model.json" in done.stdout, done
    # the magic and the Python API write the same folder
    shutil.rmtree(out)
    sm.register(aiaas.registry, "export-magic", sm.train_iris())
    shell.run_line_magic("aiaas", f"export export-magic {out} --to mlserver")
    assert json.loads((out / "aiaas-model.json").read_text())["ref"] == "export-magic:1"
    assert sys.modules.get("mlserver") is None  # the kernel never imports MLServer
