"""Every call the README documents, run as a user would run it (tests/test_readme_api.py).

Run as a script in its own process (a fresh IPython shell, its own registry home, its own
embedded cluster and model server): it executes each step as a notebook cell and prints one
JSON object: ``{"ran": {key: "ok" | error text}}``. The keys name what the README documents —
``magic:models show`` for a magic table row, ``api:train`` for a Python API table row — and
tests/test_readme_api.py checks that every documented key ran and passed.

A step is code as a user writes it in a cell, with ``assert``s on the values it produced.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]  # run as a script: put tests/ on the path for support.*

SETUP = """
%load_ext aiaas_jupyter
import numpy as np, pandas as pd
import aiaas_jupyter
from sklearn.datasets import load_iris
iris = load_iris(as_frame=True).frame
X = iris.drop(columns="target").head(5)
"""

#: (keys, cell). The keys a cell covers; cells run in this order in one shell.
STEPS: list[tuple[tuple[str, ...], str]] = [
    (("magic:connect",), """
t = %aiaas connect --workers 1 --threads 1 --gpus 0
assert "1 workers" in t.title and len(t.rows) == 1
"""),
    (("magic:status", "api:status"), """
t = %aiaas status
assert len(t.rows) == 1 and aiaas_jupyter.status().rows[0][2] == 1  # one worker, one thread
"""),
    (("magic:preprocess",), """
%%aiaas preprocess --input iris --output clean
df = df.dropna()
"""),
    ((), "assert len(clean.compute()) == 150"),
    (("api:preprocess",), """
r = aiaas_jupyter.preprocess(iris, "halved", body=lambda df: df[df["sepal length (cm)"] > 5.8])
assert r.rows_in == 150 and r.rows_out == int((iris["sepal length (cm)"] > 5.8).sum())
"""),
    (("api:map", "magic:map"), """
def f(x):
    return x * x
assert aiaas_jupyter.map(f, [1, 2, 3]) == [1, 4, 9]
assert aiaas_jupyter.map(pow, [2, 3], [5, 2]) == [32, 9]
mj = aiaas_jupyter.map(f, range(1000), block=False)
assert mj.result(timeout=120) == [x * x for x in range(1000)] and mj.status == "finished"
%aiaas map f [1, 2, 3] -o squares
assert squares == [1, 4, 9]
"""),
    (("magic:train",), """
%%aiaas train --data clean --target target --name readme-rf --block
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=10, random_state=0)
"""),
    (("api:model", "api:train", "api:result", "api:job"), """
assert aiaas_jupyter.model("readme-rf").version == 1
from sklearn.linear_model import LogisticRegression
job = aiaas_jupyter.train(LogisticRegression(max_iter=300), iris, "target", name="readme-lr")
mv = aiaas_jupyter.result(job.id, timeout=120)
assert mv.ref == "readme-lr:1" and mv.metrics["accuracy"] > 0.8
assert aiaas_jupyter.job(job.id).status == "finished"
"""),
    (("magic:jobs", "api:jobs"), """
t = %aiaas jobs
rows = {r["model"]: r for r in t.records()}
assert rows["readme-rf:1"]["status"] == "finished" and rows["readme-lr:1"]["progress"] == "100%"
assert len(aiaas_jupyter.jobs().rows) == 2
"""),
    (("magic:result",), """
card = get_ipython().run_line_magic("aiaas", f"result {job.id}")
assert dict(card.rows)["model"] == "readme-lr:1"
"""),
    (("magic:attach", "api:attach"), """
again = get_ipython().run_line_magic("aiaas", f"attach {job.id}")
assert again.status == "finished" and aiaas_jupyter.attach(job.id).result().ref == "readme-lr:1"
"""),
    (("magic:cancel", "api:cancel"), """
import torch
from torch import nn
torch.manual_seed(0)
big = pd.DataFrame(np.random.default_rng(0).normal(size=(20000, 4)), columns=list("abcd")).assign(y=lambda d: (d.a > 0).astype(int))
slow = aiaas_jupyter.train(nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2)), big, "y", name="readme-slow", epochs=10)
get_ipython().run_line_magic("aiaas", f"cancel {slow.id}")
assert slow.status == "cancelled"
slow2 = aiaas_jupyter.train(nn.Sequential(nn.Linear(4, 2)), big, "y", name="readme-slow", epochs=10)
assert aiaas_jupyter.cancel(slow2.id).status == "cancelled"
assert "readme-slow" not in [r["model"] for r in aiaas_jupyter.models().records()]
"""),
    (("magic:sweep", "magic:sweep show", "magic:sweeps", "api:sweep", "api:sweeps", "api:get_sweep",
      "magic:models compare", "api:compare"), """
%%aiaas sweep --data clean --target target --name readme-rf --max-concurrent 1 --block
model = RandomForestClassifier(n_estimators=10, random_state=0)
space = {"max_depth": [1, 4]}
"""),
    ((), """
board = %aiaas sweep show
rows = board.records()
assert len(rows) == 2 and rows[0]["max_depth"] == 4 and rows[0]["status"] == "finished"
s = aiaas_jupyter.sweep(RandomForestClassifier(n_estimators=10, random_state=0), iris, "target", name="readme-rf",
                        space={"max_depth": aiaas_jupyter.randint(1, 5)}, search="random", trials=3, seed=0,
                        register="none", block=True)
assert s.status == "finished" and len(s.trials) == 3 and s.version is None
assert aiaas_jupyter.get_sweep(s.id).best.value == s.trials["accuracy"].max()
t = %aiaas sweeps
assert len(t.rows) == 2 and len(aiaas_jupyter.sweeps().rows) == 2
c = %aiaas models compare readme-rf 1 2
assert "max_depth" in dict((r[0], r) for r in c.rows) and aiaas_jupyter.compare("readme-rf").columns[1:] == ["v1", "v2"]
"""),
    (("magic:sweep cancel", "api:cancel_sweep", "magic:sweep attach", "api:attach_sweep"), """
def make_slow(params):
    return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
running = aiaas_jupyter.sweep(None, big, "y", name="readme-slow", space={"lr": [1e-3, 1e-2]}, make_model=make_slow,
                              epochs=500, max_concurrent=1)
get_ipython().run_line_magic("aiaas", f"sweep cancel {running.id}")
assert running.status == "cancelled" and running.version is None
assert aiaas_jupyter.cancel_sweep is not None and aiaas_jupyter.attach_sweep(s.id).status == "finished"
get_ipython().run_line_magic("aiaas", f"sweep attach {s.id} -o again")
assert again.id == s.id and again.best.number == s.best.number
running2 = aiaas_jupyter.sweep(None, big, "y", name="readme-slow", space={"lr": [1e-3]}, make_model=make_slow,
                               epochs=500)
assert aiaas_jupyter.cancel_sweep(running2.id).status == "cancelled"
"""),
    (("magic:models", "api:models"), """
t = %aiaas models
assert {r["model"] for r in t.records()} == {"readme-rf", "readme-lr"} == {r["model"] for r in aiaas_jupyter.models().records()}
"""),
    (("magic:models alias", "api:alias"), """
%aiaas models alias readme-rf 1 prod
aiaas_jupyter.alias("readme-lr", 1, "prod")
assert aiaas_jupyter.model("readme-rf@prod").version == 1 and aiaas_jupyter.model("readme-lr@prod").version == 1
"""),
    (("magic:models show", "api:show"), """
card = %aiaas models show readme-rf@prod
assert dict(card.rows)["model"] == "readme-rf:1" and dict(aiaas_jupyter.show("readme-lr").rows)["aliases"] == "prod"
"""),
    (("api:load_model",), """
rf = aiaas_jupyter.load_model("readme-rf@prod")
assert (rf.predict(X) == iris["target"].head(5)).all()
"""),
    (("magic:deploy", "api:deploy", "api:deployments"), """
d = %aiaas deploy readme-rf@prod
assert d.name == "readme-rf" and d.version == 1
d2 = aiaas_jupyter.deploy("readme-lr@prod")
assert {x["name"] for x in aiaas_jupyter.deployments()} == {"readme-rf", "readme-lr"}
"""),
    (("magic:export", "api:export"), """
import json, os, pathlib
exported = pathlib.Path(os.environ["AIAAS_HOME"]) / "exported"
get_ipython().run_line_magic("aiaas", f"export readme-rf@prod {exported / 'readme-rf'} --to mlserver")
folder = aiaas_jupyter.export("readme-lr@prod", exported / "readme-lr")
assert json.loads((exported / "readme-rf" / "aiaas-model.json").read_text())["ref"] == "readme-rf:1"
assert sorted(p.name for p in folder.iterdir()) == ["aiaas-model.json", "model-settings.json", "model.skops"]
"""),
    (("magic:predict", "api:predict"), """
%aiaas predict readme-rf --input X -o preds
assert list(preds) == list(rf.predict(X))
assert list(aiaas_jupyter.predict("readme-lr", X)) == list(aiaas_jupyter.load_model("readme-lr").predict(X))
%aiaas predict readme-rf --input X --proba -o p
assert p.shape == (5, 3) and np.allclose(p.sum(axis=1), 1) and np.allclose(p, rf.predict_proba(X))
q = aiaas_jupyter.predict("readme-lr", X, outputs=["predict_proba"])["predict_proba"]
assert np.allclose(q, aiaas_jupyter.load_model("readme-lr").predict_proba(X))
"""),
    (("magic:endpoints show", "api:endpoint"), """
import requests
ep = aiaas_jupyter.endpoint("readme-rf")
r = requests.post(ep.predict_url, json=X.to_dict(orient="records"), headers=ep.headers, verify=ep.verify, timeout=30).json()
assert r["predictions"] == list(rf.predict(X)) and len(r["probabilities"]) == 5
e = %aiaas endpoints show readme-rf
assert e.predict_url == ep.predict_url
"""),
    (("magic:endpoints add", "api:add_endpoint", "magic:endpoints", "api:endpoints"), """
import os
os.environ["README_STANDIN_KEY"] = STANDIN.key
get_ipython().run_line_magic("aiaas", f"endpoints add chat --url {STANDIN.url}/v1 --protocol openai --api-key-env README_STANDIN_KEY --model stand-in-chat")
aiaas_jupyter.add_endpoint("echo", f"{STANDIN.url}/rest/predict", "rest")
t = %aiaas endpoints
names = {r["name"] for r in t.records()}
assert {"chat", "echo", "readme-rf", "readme-lr"} <= names, names
assert {r["name"] for r in aiaas_jupyter.endpoints().records()} == names
"""),
    (("magic:ask", "api:ask"), """
%%aiaas ask chat
Say hello.
"""),
    ((), """
answer = aiaas_jupyter.ask("chat", "Say hello.")
assert "hello" in answer.text.lower()
"""),
    (("magic:embed", "api:embed"), """
aiaas_jupyter.add_endpoint("vec", f"{STANDIN.url}/v1", "openai", api_key_env="README_STANDIN_KEY", model="stand-in-embed")
%aiaas embed vec --input '["a text", "another"]' -o vectors
assert vectors.shape == (2, len(vector("a text"))) and np.allclose(vectors[0], vector("a text"))
assert np.allclose(aiaas_jupyter.embed("vec", ["another"])[0], vector("another"))
aiaas_jupyter.remove_endpoint("vec")
"""),
    (("magic:endpoints remove", "api:remove_endpoint"), """
%aiaas endpoints remove echo
aiaas_jupyter.remove_endpoint("chat")
assert not {"chat", "echo"} & {r["name"] for r in aiaas_jupyter.endpoints().records()}
"""),
    (("magic:undeploy", "api:undeploy"), """
%aiaas undeploy readme-rf
aiaas_jupyter.undeploy("readme-lr")
assert aiaas_jupyter.deployments() == []
"""),
    (("magic:models delete", "api:delete"), """
%aiaas models delete readme-rf:1
aiaas_jupyter.delete("readme-rf")
aiaas_jupyter.delete("readme-lr")
assert aiaas_jupyter.models().rows == []
"""),
    (("api:stop_server",), """
aiaas_jupyter.stop_server()
assert aiaas_jupyter.deployments() == []
"""),
    (("magic:disconnect", "api:disconnect", "api:connect"), """
%aiaas disconnect
t = aiaas_jupyter.connect(n_workers=1, threads_per_worker=1, gpus=0)
assert len(t.rows) == 1
aiaas_jupyter.disconnect()
"""),
]


def main() -> int:
    from IPython.core.interactiveshell import InteractiveShell

    sys.path.insert(0, str(TESTS))
    from support.standin_server import running, vector

    shell = InteractiveShell.instance()
    ran: dict[str, str] = {}
    with running(os.environ.get("README_STANDIN_SECRET", "sk-readme-walk")) as standin:
        shell.user_ns.update(STANDIN=standin, vector=vector)
        setup = shell.run_cell(SETUP)
        if not setup.success:
            print(json.dumps({"setup": repr(setup.error_in_exec or setup.error_before_exec)}))
            return 1
        for keys, cell in STEPS:
            res = shell.run_cell(cell.strip("\n"))
            err = res.error_in_exec or res.error_before_exec
            outcome = "ok" if res.success else f"{type(err).__name__}: {err}"
            for key in keys or (f"(check after {list(ran)[-1] if ran else 'setup'})",):
                ran[key] = outcome if key not in ran or ran[key] == "ok" else ran[key]
        shell.run_cell("aiaas_jupyter.stop_server()\naiaas_jupyter.disconnect()")
    print("README-WALK " + json.dumps({"ran": ran}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
