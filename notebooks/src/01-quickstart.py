# %% [markdown]
# # aiaas quickstart: from raw CSV files to a served model
#
# This notebook walks the whole loop of `aiaas_jupyter` on the iris data set:
#
# 1. connect to a Dask cluster (an embedded one, started on this machine),
# 2. clean and transform raw CSV files **on the cluster** with `%%aiaas preprocess`,
# 3. train scikit-learn models **on a worker** with `%%aiaas train` — blocking and in the background,
# 4. look at jobs and the model registry, give a version an alias (`prod`),
# 5. load the `prod` model back and predict.
#
# Everything lives in a registry under `$AIAAS_HOME` (default: the Jupyter data directory).

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter

# %% [markdown]
# `%aiaas connect` with no address starts an embedded `LocalCluster` sized to the machine
# (`%aiaas connect tcp://HOST:8786` attaches to a running scheduler instead).

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ## Some raw data
#
# We write the iris measurements as three CSV files, with about 5 % of the values knocked out
# (a seeded random generator, so every run gets the same holes).

# %%
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

# %% [markdown]
# ## Preprocess on the cluster
#
# In a `%%aiaas preprocess` cell, `df` is a Dask DataFrame over the input (here all files the
# glob matches, read in parallel by the workers). Whatever `df` is at the end of the cell is
# persisted on the cluster under the `--output` name, and `--save` also writes it as Parquet.

# %% tags=["nbval-ignore-output"]
%%aiaas preprocess --input data/iris-*.csv --output clean --save data/clean.parquet
df = df.dropna()

# %% [markdown]
# `clean` is now a (persisted) Dask DataFrame in the notebook:

# %%
print(len(clean), "rows left after dropna, in", clean.npartitions, "partitions")
clean.head()

# %% [markdown]
# A second step reads the Parquet file back and standardises the numeric feature columns
# (the target stays as it is). Any Dask DataFrame code works here.

# %% tags=["nbval-ignore-output"]
%%aiaas preprocess --input data/clean.parquet --output scaled
numeric = [c for c in df.select_dtypes("number").columns if c != "target"]
df[numeric] = (df[numeric] - df[numeric].mean()) / df[numeric].std()

# %%
summary = scaled.describe().compute().loc[["mean", "std"]].round(2) + 0.0   # + 0.0: no "-0.0"
summary

# %% [markdown]
# With `--per-partition` the cell is plain **pandas** code, run on each partition separately —
# handy for row-wise feature engineering, and no Dask API to learn.

# %% tags=["nbval-ignore-output"]
%%aiaas preprocess --input clean --output featured --per-partition
df = df.assign(petal_area=df["petal_length"] * df["petal_width"],
               sepal_ratio=(df["sepal_length"] / df["sepal_width"]).round(3))

# %%
featured.head(3)

# %% [markdown]
# ## Train on a worker
#
# A `%%aiaas train` cell defines `model`; the magic ships it with the data to a worker, fits it
# on a seeded train split, scores it on the held-out rows and registers it as a new version of
# `--name`. `--block` waits for the job (its live view shows progress, then the result).

# %% tags=["nbval-ignore-output"]
%%aiaas train --data clean --target target --name iris-rf --block
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(random_state=0)

# %% [markdown]
# The registry now holds `iris-rf:1` with its metrics, parameters, data fingerprint and
# the exact library versions:

# %%
v1 = aiaas_jupyter.model("iris-rf:1")
print(v1.ref, "| accuracy", round(v1.metrics["accuracy"], 3),
      "| train/test rows", v1.extra["n_train"], "/", v1.extra["n_test"])

# %% [markdown]
# Without `--block` the cell returns at once and the job runs in the background; `-o job` keeps
# its handle (a Future-like `Job`). Here a shallower forest, with `--seed 1`: it seeds the
# train/test split (so this version is scored on other held-out rows) and fills the
# `random_state` the cell left unset.

# %% tags=["nbval-ignore-output"]
%%aiaas train --data clean --target target --name iris-rf --seed 1 -o job
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(n_estimators=100, max_depth=5)

# %%
v2 = job.result()          # waits for the job, returns the registered ModelVersion
print(v2.ref, "| accuracy", round(v2.metrics["accuracy"], 3),
      "| max_depth", v2.params["max_depth"], "| random_state", v2.params["random_state"])

# %% [markdown]
# ## Jobs and models

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas jobs

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas models

# %% [markdown]
# Version 1 goes to production: an alias names a version, and can be moved later.

# %%
%aiaas models alias iris-rf 1 prod

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas models show iris-rf@prod

# %%
print("iris-rf@prod is", aiaas_jupyter.model("iris-rf@prod").ref)
print("latest iris-rf is", aiaas_jupyter.model("iris-rf").ref)

# %% [markdown]
# ## Use the model
#
# `aiaas_jupyter.load_model` reads the artifact (a skops file, sha256-checked; nothing is
# unpickled) and gives back a plain scikit-learn estimator.

# %%
prod = aiaas_jupyter.load_model("iris-rf@prod")
rows = clean.compute().sample(6, random_state=0)
pd.DataFrame({"species": rows["target"], "predicted": prod.predict(rows[features])})

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas status

# %% [markdown]
# Done: close the cluster (the registry stays on disk).

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas disconnect
