# %% [markdown]
# # Serving for production
#
# What a platform engineer expects of a model service, from the notebook:
#
# 1. **batch scoring** of a large frame on the cluster's workers (no server, no kernel in the way);
# 2. the model's **signature**, checked at the server's door;
# 3. a **canary**: a new version takes 10% of the traffic, then is promoted;
# 4. the server's **metrics** (Prometheus), read back per version;
# 5. a **streamed** answer from an OpenAI-compatible endpoint (a local stand-in for a hosted LLM).

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter
import dask.dataframe as dd
import numpy as np
import pandas as pd
import requests

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ## 1. Batch scoring on the cluster
#
# A seeded churn-like table: two numeric columns and a plan name. The model is a pipeline that
# one-hot encodes the plan, so its signature has numeric and categorical columns.

# %%
rng = np.random.default_rng(8)


def customers(n, seed):
    r = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": r.integers(1, 72, n).astype("float64"), "spend": r.gamma(2.0, 30.0, n).round(2),
                          "plan": r.choice(["basic", "plus", "pro"], n)})
    risk = 1.5 - frame.tenure / 24 + (frame.plan == "basic") * 0.8 + frame.spend / 200 + r.normal(0, 0.5, n)
    return frame.assign(churn=np.where(risk > 0, "yes", "no"))


train = customers(3000, seed=8)
print(train.shape, train.churn.value_counts().to_dict())

# %% tags=["nbval-ignore-output"]
%%aiaas train --data train --target churn --name churn --seed 8 --block
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

model = Pipeline([("plan", ColumnTransformer([("onehot", OneHotEncoder(), ["plan"])], remainder="passthrough")),
                  ("forest", RandomForestClassifier(n_estimators=30, max_depth=6, n_jobs=1))])

# %% [markdown]
# 400,000 customers as a dask DataFrame of 8 partitions, each generated where it lives (on the
# workers, seeded by its number). `--on-cluster` scores them on the workers with the registered
# version: its artifact goes to each worker once (sha256-checked there), each worker loads it
# once, and `map_partitions` applies it. The result is a dask DataFrame aligned to the input's
# index, held in the workers' memory.

# %%
def customer_part(i, n=50_000):
    return customers(n, seed=100 + i).drop(columns="churn").set_axis(pd.RangeIndex(i * n, (i + 1) * n))


big = dd.from_map(customer_part, range(8))

# %% tags=["nbval-ignore-output"]
%aiaas predict churn --input big --on-cluster --proba -o scored

# %%
sample = big.head(1000)
local = aiaas_jupyter.load_model("churn")
head = scored.head(1000)
print(scored.npartitions, "partitions,", len(scored), "rows; columns:", list(scored.columns))
print("same as the model in the kernel:", bool((head.prediction.to_numpy() == local.predict(sample)).all()))
print(scored.prediction.value_counts().compute().sort_index().to_dict())

# %% [markdown]
# ## 2. The signature
#
# Every version records the columns it was trained on (name, dtype, kind), the target and the
# classes. `%aiaas models show` prints it; the server publishes it in the model's metadata and
# answers a request that contradicts it with 400, naming the column.

# %%
from aiaas_jupyter.signature import summary

print(summary(aiaas_jupyter.model("churn").extra["signature"]))

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy churn

# %%
ep = aiaas_jupyter.endpoint("churn")
good = requests.post(ep.predict_url, json=[{"tenure": 3, "spend": 80.0, "plan": "basic"}],
                     headers=ep.headers, verify=ep.verify, timeout=30)
bad = requests.post(ep.predict_url, json=[{"tenure": "long", "spend": 80.0, "plan": "basic"}],
                    headers=ep.headers, verify=ep.verify, timeout=30)
print(good.status_code, good.json()["predictions"])
print(bad.status_code, bad.json()["error"])

# %% [markdown]
# Batch scoring checks a frame against the signature before any task runs:

# %%
from aiaas_jupyter.errors import DataError

try:
    aiaas_jupyter.predict("churn", big.astype({"tenure": str}), on_cluster=True)
except DataError as e:
    print(e)

# %% [markdown]
# ## 3. A canary, then a promotion
#
# A second version (a deeper forest). `--canary 10` loads it beside version 1 and sends it 10% of
# `churn`'s requests — counted, so exactly one request in ten.

# %% tags=["nbval-ignore-output"]
%%aiaas train --data train --target churn --name churn --seed 8 --block
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

model = Pipeline([("plan", ColumnTransformer([("onehot", OneHotEncoder(), ["plan"])], remainder="passthrough")),
                  ("forest", RandomForestClassifier(n_estimators=60, max_depth=10, n_jobs=1))])

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy churn:2 --canary 10

# %%
from collections import Counter

request = {"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [12.0]},  # one OIP v2 input per column
                      {"name": "spend", "shape": [1], "datatype": "FP64", "data": [40.5]},
                      {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["plus"]}]}
seen = Counter()
with requests.Session() as http:
    for _ in range(500):
        r = http.post(ep.infer_url, json=request, headers=ep.headers, verify=ep.verify, timeout=30)
        seen[r.json()["model_version"]] += 1
print("answered by version:", dict(sorted(seen.items())))

# %%
promoted = aiaas_jupyter.deploy("churn", promote=True)
print("deployed version:", promoted.version, "- canary:", promoted.canary)

# %% [markdown]
# ## 4. Metrics
#
# `GET /metrics` is the server's Prometheus exposition (behind the same token): requests, errors
# and latency histograms per model and version, batch sizes, queue depth. The counts of the
# inference requests above, per version and status code:

# %%
from prometheus_client.parser import text_string_to_metric_families

text = requests.get(f"{promoted.server_url}/metrics", headers=ep.headers, verify=ep.verify, timeout=30).text
counts = {(s.labels["version"], s.labels["route"], s.labels["code"]): int(s.value)
          for f in text_string_to_metric_families(text) for s in f.samples
          if s.name == "aiaas_requests_total" and s.labels.get("model") == "churn"}
for key, value in sorted(counts.items()):
    print(key, value)

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas endpoints

# %% [markdown]
# ## 5. A streamed answer
#
# A hosted LLM is out of reach here, so a local stand-in (the one the tests use) answers on
# loopback as an OpenAI-compatible API that streams, one word at a time. `%%aiaas ask` shows the
# answer as it arrives, re-rendering the Markdown in place; `-o answer` keeps the whole text.

# %%
# NBVAL_IGNORE_OUTPUT
import os
import sys

sys.path.insert(0, os.path.abspath("../tests"))
from support.standin_server import running

standin_session = running("sk-notebook-stand-in")
standin = standin_session.__enter__()
standin.stream_delay = 0.1
os.environ["STANDIN_API_KEY"] = standin.key
get_ipython().run_line_magic("aiaas", f"endpoints add llm --url {standin.url}/v1 --protocol openai "
                                      "--api-key-env STANDIN_API_KEY --model stand-in-chat")

# %% tags=["nbval-ignore-output"]
%%aiaas ask llm -o answer
Explain a canary deployment in one sentence.

# %%
print(answer)

# %% [markdown]
# ## Clean up

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas endpoints remove llm
standin_session.__exit__(None, None, None)
%aiaas undeploy churn
aiaas_jupyter.stop_server()
del scored
%aiaas disconnect
