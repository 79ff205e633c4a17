# %% [markdown]
# # The first hour with aiaas
#
# Five things a data scientist does on a first day with a cluster, each in a few cells:
#
# 1. run a **plain Python function** over the cluster (like `multiprocessing.Pool.map`),
# 2. clean **raw CSV files** on the cluster, with a helper function written in the notebook,
# 3. train a **random forest** and a **64-64-10 MLP** on workers, and a **binary sigmoid network**,
# 4. serve a **text classifier** and call it with plain `requests`, as any other program would,
# 5. serve any trained model behind the **Open Inference Protocol v2** (what KServe, Triton and MLServer speak).

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter
import numpy as np
import pandas as pd

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect


# %% [markdown]
# ## 1. A plain function over the cluster
#
# `aiaas_jupyter.map(func, items)` runs a function of the notebook on the workers and returns the results in
# order, with a progress bar; `%aiaas map FUNC ITEMS -o VAR` is the same as a magic.

# %%
def slow_square(x):
    import time
    time.sleep(0.05)   # pretend this is expensive
    return x * x


# %%
# NBVAL_IGNORE_OUTPUT

squares = aiaas_jupyter.map(slow_square, [1, 2, 3])

# %%
squares

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas map slow_square range(10) -o more

# %%
more == [x * x for x in range(10)]

# %% [markdown]
# ## 2. Raw CSV files → clean data, on the cluster
#
# Three CSV files of iris measurements with about 5 % of the values missing (seeded, so every run has the same
# holes). The preprocess cell drops incomplete rows and calls `add_ratios`, a function defined in the notebook;
# the workers read the files, and the result stays in their memory as `clean`.

# %%
from pathlib import Path
from sklearn.datasets import load_iris

iris = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
iris["species"] = iris.pop("target")
rng = np.random.default_rng(0)
holes = iris.drop(columns="species").mask(rng.random((len(iris), 4)) < 0.05)
raw = pd.concat([holes, iris["species"]], axis=1)
Path("data/first-hour").mkdir(parents=True, exist_ok=True)
shuffled = raw.sample(frac=1, random_state=0)
for i in range(3):
    shuffled.iloc[i::3].to_csv(f"data/first-hour/iris-{i}.csv", index=False)
print(len(raw), "rows,", int(raw.isna().any(axis=1).sum()), "with a missing value")


# %%
def add_ratios(part):
    """Petal and sepal shape ratios: a helper the preprocess cell calls on every partition."""
    part = part.copy()
    part["petal_ratio"] = part["petal_length"] / part["petal_width"]
    part["sepal_ratio"] = part["sepal_length"] / part["sepal_width"]
    return part


# %% tags=["nbval-ignore-output"]
%%aiaas preprocess --input data/first-hour/iris-*.csv --output clean --save data/first-hour/clean.parquet
df = df.dropna()
df = df.map_partitions(add_ratios)

# %%
local = clean.compute()
print(len(local), "clean rows;", sorted(local.columns))
print("saved:", len(pd.read_parquet("data/first-hour/clean.parquet")), "rows")

# %% [markdown]
# ## 3. A random forest, and a 64-64-10 MLP
#
# `%%aiaas train` runs the cell's `model` on a worker and registers it; `--block` waits for it.

# %% tags=["nbval-ignore-output"]
%%aiaas train --data clean --target species --name first-rf --block
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=100, max_depth=5, random_state=0)

# %%
rf = aiaas_jupyter.model("first-rf")
print(rf.ref, "accuracy ≥ 0.85:", rf.metrics["accuracy"] >= 0.85)

# %% [markdown]
# Handwritten digits (8×8 pixels, from scikit-learn: nothing is downloaded) for a small PyTorch network.

# %%
from sklearn.datasets import load_digits

digits = load_digits(as_frame=True).frame.rename(columns={"target": "digit"})
digits[digits.columns[:-1]] = digits[digits.columns[:-1]] / 16.0
digits.shape

# %% tags=["nbval-ignore-output"]
%%aiaas train --data digits --target digit --name first-mlp --epochs 15 --batch-size 64 --lr 0.003 --seed 0 --block
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

# %%
mlp = aiaas_jupyter.load_model("first-mlp")      # an ONNX runner with scikit-learn's predict / predict_proba
X = digits.drop(columns="digit").head(4)
proba = mlp.predict_proba(X)
print(type(mlp).__name__, proba.shape, "rows sum to 1:", bool(np.allclose(proba.sum(axis=1), 1)))
print("accuracy ≥ 0.9:", aiaas_jupyter.model("first-mlp").metrics["accuracy"] >= 0.9)

# %% [markdown]
# The same weights as a PyTorch module again: pass an instance of the architecture.

# %%
net = aiaas_jupyter.load_model("first-mlp", module=nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)))
with torch.no_grad():
    logits = net(torch.tensor(X.to_numpy(), dtype=torch.float32))
print(type(net).__name__, "same answers:", bool((logits.argmax(1).numpy() == mlp.predict(X)).all()))

# %% [markdown]
# ### A binary sigmoid network
#
# A 64-32-1 network with a sigmoid output, Adam at lr 0.001, binary cross-entropy, 10 epochs of batch 32:
# is the digit 5 or more? `predict_proba` answers scikit-learn's way, one column per class.

# %%
big = digits.assign(big=(digits["digit"] >= 5).astype(int)).drop(columns="digit")

# %% tags=["nbval-ignore-output"]
%%aiaas train --data big --target big --name first-binary --epochs 10 --batch-size 32 --lr 0.001 --seed 0 --block
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss = nn.BCELoss()

# %%
binary = aiaas_jupyter.load_model("first-binary")
p = binary.predict_proba(big.drop(columns="big").head(3))
print(p.shape, "rows sum to 1:", bool(np.allclose(p.sum(axis=1), 1)), "classes:", binary.classes_.tolist())
print("accuracy ≥ 0.85:", aiaas_jupyter.model("first-binary").metrics["accuracy"] >= 0.85)

# %% [markdown]
# ## 4. A text classifier as a web service
#
# A TF-IDF + logistic-regression sentiment model, served by this machine's model server and called the way any
# other program would: `requests`, with the URL and headers `aiaas_jupyter.endpoint` gives (no file to read).

# %%
good = ["a wonderful film", "great acting and a lovely story", "I loved every minute", "brilliant and moving",
        "a delight from start to finish", "superb, warm and funny"]
bad = ["a terrible film", "boring and far too long", "I hated every minute", "dull, flat and lifeless",
       "a waste of two hours", "awful acting and a silly story"]
reviews = pd.DataFrame({"text": good * 5 + bad * 5, "sentiment": ["positive"] * 30 + ["negative"] * 30})

# %% tags=["nbval-ignore-output"]
%%aiaas train --data reviews --target sentiment --name first-sentiment --block
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
model = make_pipeline(TfidfVectorizer(), LogisticRegression(C=10.0))

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy first-sentiment

# %%
import requests

ep = aiaas_jupyter.endpoint("first-sentiment")
result = requests.post(ep.predict_url, json={"text": "what a wonderful, moving story"},
                       headers=ep.headers, verify=ep.verify, timeout=30).json()
print(result["label"], sorted(result["probabilities"]), result["probabilities"]["positive"] > 0.5)

# %%
texts = ["I loved it", "boring and dull"]
batch = requests.post(ep.predict_url, json={"text": texts}, headers=ep.headers, verify=ep.verify, timeout=30).json()
local = aiaas_jupyter.load_model("first-sentiment")
print(batch["predictions"], list(local.predict(pd.DataFrame({"text": texts}))))

# %% [markdown]
# ## 5. Any model behind the Open Inference Protocol
#
# The random forest, deployed and called over HTTP with a v2 `infer` request (the JSON that KServe, Triton and
# MLServer clients send); the answers match the model loaded in the notebook.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy first-rf

# %%
rows = clean.drop(columns="species").head(5)     # a pandas frame of the first 5 clean rows
ep = aiaas_jupyter.endpoint("first-rf")
body = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(rows.shape),
                    "data": rows.to_numpy().ravel().tolist()}]}
answer = requests.post(ep.infer_url, json=body, headers=ep.headers, verify=ep.verify, timeout=30).json()
served = answer["outputs"][0]["data"]
print(served == list(aiaas_jupyter.load_model("first-rf").predict(rows)))

# %% [markdown]
# ## Clean up
#
# The model server outlives this kernel by design (others may be calling it): stop it when done.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas undeploy first-sentiment
%aiaas undeploy first-rf
aiaas_jupyter.stop_server()
%aiaas disconnect
