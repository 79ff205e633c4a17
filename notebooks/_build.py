"""Write the showcase notebooks and (optionally) execute them so they carry reference outputs.

    .venv/bin/python notebooks/_build.py [NAME...]   write the notebooks (all, or those named) without outputs
    .venv/bin/python notebooks/_build.py --execute   write, then run each with a fresh AIAAS_HOME
                                                     and save the outputs nbval compares against

Cells whose output changes from run to run (addresses, job ids, dates, timings) start with
``# NBVAL_IGNORE_OUTPUT``; every other cell prints seeded, rounded values that nbval checks.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
IGNORE = "# NBVAL_IGNORE_OUTPUT\n"


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


def volatile(text: str):
    """A cell-magic cell with run-dependent output: ``%%`` must be its first line, so the
    nbval marker is the cell tag ``nbval-ignore-output`` instead of the comment."""
    cell = code(text)
    cell.metadata["tags"] = ["nbval-ignore-output"]
    return cell


# --------------------------------------------------------------------------- 01 quickstart
QUICKSTART = [
    md("""
# aiaas quickstart: from raw CSV files to a served model

This notebook walks the whole loop of `aiaas_jupyter` on the iris data set:

1. connect to a Dask cluster (an embedded one, started on this machine),
2. clean and transform raw CSV files **on the cluster** with `%%aiaas preprocess`,
3. train scikit-learn models **on a worker** with `%%aiaas train` — blocking and in the background,
4. look at jobs and the model registry, give a version an alias (`prod`),
5. load the `prod` model back and predict.

Everything lives in a registry under `$AIAAS_HOME` (default: the Jupyter data directory).
"""),
    code("""
%load_ext aiaas_jupyter
import aiaas_jupyter
"""),
    md("""
`%aiaas connect` with no address starts an embedded `LocalCluster` sized to the machine
(`%aiaas connect tcp://HOST:8786` attaches to a running scheduler instead).
"""),
    code(IGNORE + """
%aiaas connect
"""),
    md("""
## Some raw data

We write the iris measurements as three CSV files, with about 5 % of the values knocked out
(a seeded random generator, so every run gets the same holes).
"""),
    code("""
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

raw = load_iris(as_frame=True)
iris = raw.frame
iris.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
iris["target"] = raw.target_names[iris["target"]]          # species names as labels
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
rng = np.random.default_rng(0)
iris[features] = iris[features].mask(rng.random((len(iris), len(features))) < 0.05)

Path("data").mkdir(exist_ok=True)
for i in range(3):
    iris.iloc[i::3].to_csv(f"data/iris-{i + 1}.csv", index=False)

print(sorted(p.name for p in Path("data").glob("iris-*.csv")))
print(len(iris), "rows,", int(iris.isna().any(axis=1).sum()), "of them with a missing value")
"""),
    md("""
## Preprocess on the cluster

In a `%%aiaas preprocess` cell, `df` is a Dask DataFrame over the input (here all files the
glob matches, read in parallel by the workers). Whatever `df` is at the end of the cell is
persisted on the cluster under the `--output` name, and `--save` also writes it as Parquet.
"""),
    volatile("""
%%aiaas preprocess --input data/iris-*.csv --output clean --save data/clean.parquet
df = df.dropna()
"""),
    md("`clean` is now a (persisted) Dask DataFrame in the notebook:"),
    code("""
print(len(clean), "rows left after dropna, in", clean.npartitions, "partitions")
clean.head()
"""),
    md("""
A second step reads the Parquet file back and standardises the numeric feature columns
(the target stays as it is). Any Dask DataFrame code works here.
"""),
    volatile("""
%%aiaas preprocess --input data/clean.parquet --output scaled
numeric = [c for c in df.select_dtypes("number").columns if c != "target"]
df[numeric] = (df[numeric] - df[numeric].mean()) / df[numeric].std()
"""),
    code("""
summary = scaled.describe().compute().loc[["mean", "std"]].round(2) + 0.0   # + 0.0: no "-0.0"
summary
"""),
    md("""
With `--per-partition` the cell is plain **pandas** code, run on each partition separately —
handy for row-wise feature engineering, and no Dask API to learn.
"""),
    volatile("""
%%aiaas preprocess --input clean --output featured --per-partition
df = df.assign(petal_area=df["petal_length"] * df["petal_width"],
               sepal_ratio=(df["sepal_length"] / df["sepal_width"]).round(3))
"""),
    code("""
featured.head(3)
"""),
    md("""
## Train on a worker

A `%%aiaas train` cell defines `model`; the magic ships it with the data to a worker, fits it
on a seeded train split, scores it on the held-out rows and registers it as a new version of
`--name`. `--block` waits for the job (its live view shows progress, then the result).
"""),
    volatile("""
%%aiaas train --data clean --target target --name iris-rf --block
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(random_state=0)
"""),
    md("""
The registry now holds `iris-rf:1` with its metrics, parameters, data fingerprint and
the exact library versions:
"""),
    code("""
v1 = aiaas_jupyter.model("iris-rf:1")
print(v1.ref, "| accuracy", round(v1.metrics["accuracy"], 3),
      "| train/test rows", v1.extra["n_train"], "/", v1.extra["n_test"])
"""),
    md("""
Without `--block` the cell returns at once and the job runs in the background; `-o job` keeps
its handle (a Future-like `Job`). Here a shallower forest, with `--seed 1`: it seeds the
train/test split (so this version is scored on other held-out rows) and fills the
`random_state` the cell left unset.
"""),
    volatile("""
%%aiaas train --data clean --target target --name iris-rf --seed 1 -o job
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(n_estimators=100, max_depth=5)
"""),
    code("""
v2 = job.result()          # waits for the job, returns the registered ModelVersion
print(v2.ref, "| accuracy", round(v2.metrics["accuracy"], 3),
      "| max_depth", v2.params["max_depth"], "| random_state", v2.params["random_state"])
"""),
    md("## Jobs and models"),
    code(IGNORE + """
%aiaas jobs
"""),
    code(IGNORE + """
%aiaas models
"""),
    md("Version 1 goes to production: an alias names a version, and can be moved later."),
    code("""
%aiaas models alias iris-rf 1 prod
"""),
    code(IGNORE + """
%aiaas models show iris-rf@prod
"""),
    code("""
print("iris-rf@prod is", aiaas_jupyter.model("iris-rf@prod").ref)
print("latest iris-rf is", aiaas_jupyter.model("iris-rf").ref)
"""),
    md("""
## Use the model

`aiaas_jupyter.load_model` reads the artifact (a skops file, sha256-checked; nothing is
unpickled) and gives back a plain scikit-learn estimator.
"""),
    code("""
prod = aiaas_jupyter.load_model("iris-rf@prod")
rows = clean.compute().sample(6, random_state=0)
pd.DataFrame({"species": rows["target"], "predicted": prod.predict(rows[features])})
"""),
    code(IGNORE + """
%aiaas status
"""),
    md("Done: close the cluster (the registry stays on disk)."),
    code(IGNORE + """
%aiaas disconnect
"""),
]


# --------------------------------------------------------------------------- 02 pytorch
PYTORCH = [
    md("""
# PyTorch models with aiaas

A `torch.nn.Module` trains the same way as a scikit-learn estimator: the cell (or the
Python API) hands over `model` — and optionally `optimizer` and `loss` — and a worker runs the
training loop, streams per-epoch progress, and registers the weights (safetensors) plus an
ONNX export that can be served without your Python class.

Three models: an MLP on a synthetic 10-class set, a binary MLP with our own optimizer and
loss, and a small CNN on the 8×8 digits of scikit-learn.
"""),
    code("""
%load_ext aiaas_jupyter
import aiaas_jupyter
import numpy as np
import pandas as pd
import torch
from torch import nn
from sklearn.datasets import load_digits, make_classification
"""),
    code(IGNORE + """
%aiaas connect
"""),
    md("""
### CPU or GPU

The embedded cluster gives every GPU of the machine to its own worker. A job that needs one
asks with `--gpus 1` (magic) or `gpus=1` (Python API) and is placed on a GPU worker; on a
machine without GPUs that request fails at once with a clear message instead of waiting
forever. A magic line cannot be conditional, so where the notebook must run on both, use the
Python API:
"""),
    code(IGNORE + """
n_gpus = 1 if torch.cuda.is_available() else 0
print("this notebook trains on", "a GPU" if n_gpus else "the CPU")
"""),
    md("""
## 1. An MLP for 10 classes (Python API)

A seeded synthetic set: 3000 rows, 64 features, 10 classes. The weights are initialised
in the notebook, so we seed torch here too; `seed=1` seeds the split and the training loop.
"""),
    code("""
X, y = make_classification(n_samples=3000, n_features=64, n_informative=40, n_classes=10,
                           n_clusters_per_class=1, class_sep=2.0, random_state=1)
blobs = pd.DataFrame(X.astype("float32"), columns=[f"x{i}" for i in range(64)]).assign(label=y)
print(blobs.shape, "-", blobs["label"].nunique(), "classes of", blobs["label"].value_counts().min(), "to", blobs["label"].value_counts().max(), "rows")
"""),
    code("""
torch.manual_seed(1)
mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

job = aiaas_jupyter.train(mlp, blobs, target="label", name="blobs-mlp", gpus=n_gpus,
                          epochs=20, batch_size=64, lr=0.003, seed=1)
mlp_v = job.result()
print(mlp_v.ref, "| loss", mlp_v.params["loss"], "| optimizer", mlp_v.params["optimizer"],
      "| held-out accuracy", round(mlp_v.metrics["accuracy"], 2))
"""),
    md("""
No loss was given: the trainer picked `CrossEntropyLoss` (integer labels, 10 outputs) and
`AdamW` with `lr=0.003`.

## 2. A binary MLP with our own optimizer and loss (magic)

The cell defines `model`, `optimizer` and `loss`; `--epochs` and `--batch-size` drive the
loop. The model ends in a `Sigmoid`, so `BCELoss` fits.
"""),
    code("""
X, y = make_classification(n_samples=2000, n_features=64, n_informative=16, random_state=3)
binary = pd.DataFrame(X.astype("float32"), columns=[f"f{i}" for i in range(64)]).assign(label=y)
print(binary.shape, "positives:", int(binary["label"].sum()))
"""),
    volatile("""
%%aiaas train --data binary --target label --name binary-mlp --epochs 10 --batch-size 32 --seed 3 --block
torch.manual_seed(3)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss = torch.nn.BCELoss()
"""),
    md("Each registered version keeps its per-epoch history:"),
    code("""
binary_v = aiaas_jupyter.model("binary-mlp")
history = pd.DataFrame(binary_v.extra["history"])
history[["epoch", "loss", "val_loss", "val_accuracy"]].round(2).set_index("epoch")
"""),
    md("""
## 3. A small CNN on the digits

`load_digits` gives 64 pixel columns (values 0–16) and a `target`; the network reshapes each
row to a 1×8×8 image in `forward`. The class is defined in the notebook and shipped to the
worker with the model.
"""),
    code("""
digits = load_digits(as_frame=True).frame
print(digits.shape, "pixel columns:", digits.columns[0], "...", digits.columns[-2])


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 4 x 4
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 2 x 2
        )
        self.head = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = x.view(-1, 1, 8, 8) / 16.0
        return self.head(self.features(x).flatten(1))
"""),
    volatile("""
%%aiaas train --data digits --target target --name digits-cnn --epochs 15 --batch-size 64 --lr 0.003 --seed 2 --block
torch.manual_seed(2)
model = DigitsCNN()
"""),
    code("""
cnn_v = aiaas_jupyter.model("digits-cnn")
print(cnn_v.ref, "|", cnn_v.params["n_parameters"], "parameters | held-out accuracy",
      round(cnn_v.metrics["accuracy"], 2))
cnn_history = pd.DataFrame(cnn_v.extra["history"]).set_index("epoch")
cnn_history[["loss", "val_accuracy"]].round(2).iloc[::2].T      # every other epoch
"""),
    md("## The registry"),
    code(IGNORE + """
%aiaas models
"""),
    code("""
ours = ("blobs-mlp", "binary-mlp", "digits-cnn")        # the registry may hold other models too
for m in aiaas_jupyter.models().records():
    if m["model"] in ours:
        print(f"{m['model']:<12} version {m['latest']}  {m['framework']}")
"""),
    md("""
## Load the CNN back

Without arguments `load_model` returns an ONNX predictor (onnxruntime): no torch, no
`DigitsCNN` class needed. `predict` gives labels, `predict_proba` the raw outputs.
"""),
    code("""
cnn = aiaas_jupyter.load_model("digits-cnn")
sample = digits.sample(300, random_state=0)
predicted = cnn.predict(sample.drop(columns="target"))
print(cnn)
print("first ten:", predicted[:10].tolist(), "\\ntrue     :", sample["target"].head(10).tolist())
print("accuracy on 300 digits:", round(float((predicted == sample["target"].to_numpy()).mean()), 2))
"""),
    md("With `module=` the safetensors weights load into your own class instead:"),
    code("""
net = aiaas_jupyter.load_model("digits-cnn", module=DigitsCNN())
with torch.no_grad():
    logits = net(torch.tensor(sample.drop(columns="target").to_numpy(), dtype=torch.float32))
print("torch and ONNX agree on", int((logits.argmax(1).numpy() == predicted).sum()), "of", len(sample))
"""),
    md("Close the cluster; the three models stay in the registry."),
    code(IGNORE + """
%aiaas disconnect
"""),
]


# --------------------------------------------------------------------------- 03 text service
TEXT_SERVICE = [
    md("""
# A text classifier as a web service

From a few lines of data to a model other programs can call over HTTP:

1. make a small (seeded) set of movie-review sentences,
2. train a TF-IDF + logistic-regression pipeline **on a worker** with `%%aiaas train`,
3. `%aiaas deploy` it: a model server starts on this machine (127.0.0.1) and keeps running
   after the kernel stops,
4. call it with plain HTTP (`requests`, with what `aiaas_jupyter.endpoint` gives), with
   `%aiaas predict`, and through the Open Inference Protocol v2 that Triton, KServe and MLServer
   clients speak,
5. deploy the built-in sentence-embedding model into the running server and call it with the
   official `openai` client,
6. clean up: undeploy, stop the server, disconnect.
"""),
    code("""
%load_ext aiaas_jupyter
import aiaas_jupyter
import httpx
import numpy as np
import pandas as pd
"""),
    code(IGNORE + """
%aiaas connect
"""),
    md("""
## A small data set

400 short sentences: neutral filler words plus one to three words that carry the sentiment,
and, in one sentence out of six, a word of the other side to make it less easy.
"""),
    code("""
rng = np.random.default_rng(2)
good = "good great excellent wonderful moving clever charming delightful superb fun".split()
bad = "bad awful boring dull weak clumsy tedious bland messy poor".split()
filler = "the a this film movie plot story acting cast scene music ending was is and very quite rather".split()


def sentence(positive: bool) -> str:
    words = list(rng.choice(filler, rng.integers(5, 9))) + list(rng.choice(good if positive else bad, rng.integers(1, 4)))
    if rng.random() < 1 / 6:
        words.append(rng.choice(bad if positive else good))
    rng.shuffle(words)
    return " ".join(words)


labels = rng.permutation(["positive", "negative"] * 200)
reviews = pd.DataFrame({"text": [sentence(label == "positive") for label in labels], "label": labels})
print(reviews.shape, reviews["label"].value_counts().to_dict())
reviews.head(3)
"""),
    md("""
## Train on a worker

The cell defines `model`: TF-IDF on the `text` column (word uni- and bigrams) feeding a logistic
regression. The trainer hands the model its feature columns as a DataFrame, so the vectorizer
names its column in a `ColumnTransformer`; the model server recognises this shape and serves
it as a text model (one string per row).
"""),
    volatile("""
%%aiaas train --data reviews --target label --name sentiment --block
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

model = make_pipeline(ColumnTransformer([("tfidf", TfidfVectorizer(ngram_range=(1, 2)), "text")]),
                      LogisticRegression(max_iter=1000))
"""),
    code("""
v1 = aiaas_jupyter.model("sentiment:1")
print(v1.ref, "| held-out accuracy", round(v1.metrics["accuracy"], 3),
      "| train/test rows", v1.extra["n_train"], "/", v1.extra["n_test"])
"""),
    md("""
## Deploy

`%aiaas deploy` starts this registry's model server (one per `$AIAAS_HOME`, on a free port of
127.0.0.1) and loads the model into it. Every route but the health checks needs the server's
bearer token; the display shows only its first four characters.
"""),
    code(IGNORE + """
%aiaas deploy sentiment
"""),
    md("""
## Call it over HTTP

Any HTTP client works. `aiaas_jupyter.endpoint(NAME)` gives what it needs — the URLs and the
`Authorization` header with the server's bearer token (read from its file when used; its
display shows only the first four characters). The plain route takes `{"text": ...}`: one
string answers its `label` and class `probabilities`, a list one prediction per text:
"""),
    code("""
import requests

ep = aiaas_jupyter.endpoint("sentiment")   # also: %aiaas endpoints show sentiment -o ep

answer = requests.post(ep.predict_url, json={"text": "a wonderful and moving film"},
                       headers=ep.headers, verify=ep.verify).json()
print(answer["label"], {c: round(p, 2) for c, p in answer["probabilities"].items()})

r = requests.post(ep.predict_url, headers=ep.headers, verify=ep.verify,
                  json={"text": ["a wonderful and moving film", "the plot was dull and the acting weak"]})
print(r.status_code, r.json()["predictions"])
"""),
    md("""
The same model speaks the Open Inference Protocol v2 (the REST API of Triton, KServe and
MLServer): a BYTES tensor of sentences in, the labels — and, on request, the class
probabilities — out.
"""),
    code("""
request = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                       "data": ["clever and charming", "boring tedious story"]}],
           "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
answer = httpx.post(ep.infer_url, headers=ep.headers, json=request).json()
for out in answer["outputs"]:
    data = np.reshape(out["data"], out["shape"])
    print(out["name"], out["datatype"], out["shape"], np.round(data, 2).tolist() if out["datatype"] == "FP64" else data.tolist())
"""),
    md("From the notebook, `%aiaas predict` does the same (and returns a numpy array):"),
    code("""
%aiaas predict sentiment --input '["a delightful film, great cast", "awful, just awful"]'
"""),
    md("""
## Embeddings with the `openai` client

The server also carries a sentence-embedding model (all-MiniLM-L6-v2, shipped in a Python
package: nothing is downloaded). One line loads it into the running server — no restart — behind
an OpenAI-compatible `/v1/embeddings`, so the official `openai` client works with the URL and
key `aiaas_jupyter.endpoint` gives:
"""),
    code(IGNORE + """
%aiaas deploy all-minilm-l6-v2
"""),
    code("""
from openai import OpenAI

minilm = aiaas_jupyter.endpoint("all-minilm-l6-v2")
client = OpenAI(base_url=minilm.openai_url, api_key=minilm.api_key)
texts = ["The film was wonderful.", "I loved this movie.", "The train leaves at noon."]
response = client.embeddings.create(model=minilm.model, input=texts)
vectors = np.array([d.embedding for d in response.data])
unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
print(response.model, vectors.shape)
pd.DataFrame(unit @ unit.T, index=texts, columns=range(3)).round(1) + 0.0   # cosine similarities
"""),
    md("Deployments and remote endpoints, with their health:"),
    code(IGNORE + """
%aiaas endpoints
"""),
    md("""
## Clean up

The server would outlive this kernel (so deployed models stay up); here we undeploy, stop it
and close the cluster. The registry keeps the model, and `deployments.json` remembers what
was deployed for the server's next start.
"""),
    code("""
%aiaas undeploy sentiment
"""),
    code("""
from aiaas_jupyter.serving.state import find_server

aiaas_jupyter.stop_server()
print("model server running:", find_server(aiaas_jupyter.get_client().registry.home) is not None)
"""),
    code(IGNORE + """
%aiaas disconnect
"""),
]

sys.path.insert(0, str(HERE))
import _first_hour  # noqa: E402  (05's cells live in their own module)
import _forms  # noqa: E402  (04's cells live in their own module)

FORMS = _forms.cells(md, code, volatile, IGNORE)
FIRST_HOUR = _first_hour.cells(md, code, volatile, IGNORE)

NOTEBOOKS = {"01-quickstart.ipynb": QUICKSTART, "02-pytorch.ipynb": PYTORCH,
             "03-text-service.ipynb": TEXT_SERVICE, "04-forms.ipynb": FORMS,
             "05-first-hour.ipynb": FIRST_HOUR}


def build(name: str):
    nb = new_notebook(cells=NOTEBOOKS[name])
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
    return nb


def execute(nb, name: str) -> float:
    from nbclient import NotebookClient

    home = tempfile.mkdtemp(prefix="aiaas-home-")
    os.environ["AIAAS_HOME"] = home
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    run = "--execute" in argv
    names = [a for a in argv if not a.startswith("--")] or list(NOTEBOOKS)
    for name in names:
        nb = build(name)
        if run:
            seconds = execute(nb, name)
            print(f"{name}: executed in {seconds:.1f} s")
            nb.metadata.pop("widgets", None)  # saved widget state: 30+ KB of run-dependent ids nbval ignores
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
