# %% [markdown]
# # Hyper-parameter sweeps
#
# `%%aiaas sweep` runs one trial per configuration of a search `space` on the cluster's
# workers, shows a leaderboard that updates as trials end, and registers the best trial as a
# version of the model, like a `%%aiaas train` job would.
#
# 1. a grid over a RandomForest (`--block`: the cell returns when the sweep is done);
# 2. its leaderboard with `%aiaas sweep show`, and the tuned model against a default one with
#    `%aiaas models compare`;
# 3. a TPE search with ASHA early stopping over a PyTorch MLP built by `make_model(params)`;
# 4. the best forest deployed and called; clean up.

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter
import numpy as np
import pandas as pd
import torch
from torch import nn
from sklearn.datasets import make_classification

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ## 1. A grid over a RandomForest
#
# A seeded synthetic set: 2000 rows, 20 features, 3 classes. First a forest with scikit-learn's
# defaults, trained as a plain job, so there is something to compare the sweep's best with.

# %%
X, y = make_classification(n_samples=2000, n_features=20, n_informative=8, n_classes=3,
                           random_state=6)
forest = pd.DataFrame(X.astype("float32"), columns=[f"f{i}" for i in range(20)]).assign(label=y)
print(forest.shape, "- classes:", sorted(forest["label"].unique().tolist()))

# %% tags=["nbval-ignore-output"]
%%aiaas train --data forest --target label --name forest-rf --seed 6 --block
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(n_estimators=10, n_jobs=1)

# %% [markdown]
# The sweep cell defines the `model` and a `space`: every axis a list, so the search is a grid
# (2 x 3 = 6 trials). Each trial fits on the same seeded 80% and is scored on the same held-out
# 20%; `--metric` defaults to accuracy. The first 10 trees of a seeded 40-tree forest are the
# 10-tree forest, tree for tree, so the sweep fits three forests (one per `max_depth`) and reads
# each 10-tree trial off its 40-tree one: 6 trials, 3 fits, the same scores as 6 separate fits
# (the leaderboard says "one fit per n_estimators ladder"). `-o rf_sweep` keeps the `Sweep` handle (the cell
# returns at once, the leaderboard updates in place); `rf_sweep.result()` waits for the best
# trial, registered as `forest-rf` version 2.

# %% tags=["nbval-ignore-output"]
%%aiaas sweep --data forest --target label --name forest-rf --seed 6 -o rf_sweep
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(n_jobs=1)
space = {"n_estimators": [10, 40], "max_depth": [3, 6, None]}

# %% [markdown]
# ## 2. The leaderboard
#
# `%aiaas sweeps` lists every sweep with its ID; `%aiaas sweep show ID` is one sweep's
# leaderboard, best first (without an ID: the latest sweep's). Workers and seconds change from
# run to run, so that output is not checked.

# %%
version = rf_sweep.result()
print(version.ref, "-", rf_sweep.status, "-", len(rf_sweep.trials), "trials, best:", rf_sweep.best.params,
      "accuracy", round(rf_sweep.best.value, 3))

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas sweep show

# %% [markdown]
# The same leaderboard is a DataFrame, `sweep.trials` (here without the timing columns):

# %%
rf_sweep.trials[["trial", "status", "accuracy", "n_estimators", "max_depth"]].round(3)

# %% [markdown]
# The tuned forest (v2, the sweep's best) against the default one (v1): the parameters that
# differ, every metric (`*` marks the better one) and where each version came from.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas models compare forest-rf 1 2

# %%
v1, v2 = aiaas_jupyter.model("forest-rf:1"), aiaas_jupyter.model("forest-rf:2")
print("v1 accuracy", round(v1.metrics["accuracy"], 3), "| v2 accuracy", round(v2.metrics["accuracy"], 3),
      "| v2 is trial", v2.extra.get("trial"), "of the sweep")

# %% [markdown]
# ## 3. TPE with ASHA early stopping over a PyTorch MLP
#
# For a network the cell defines `make_model(params)`: each trial builds its own from the
# trial's parameters (`width`); `lr`, `batch_size` and `epochs` in the space set the training
# loop. `--search tpe` samples the ranges (`loguniform` needs no import in a sweep cell), and
# `--early-stop asha` (asynchronous successive halving, Optuna's pruner) stops a trial whose held-out
# accuracy after 1 or 4 epochs is not in the top quarter of the trials that got that far, freeing its
# worker for the next one.
#
# Which trials run and which are stopped depends on the order in which they end, so the
# leaderboard's figures change from run to run; the checks below print only what does not.

# %%
W = np.random.default_rng(7).standard_normal((16, 4))
Xb = np.random.default_rng(8).standard_normal((1500, 16)).astype("float32")
blobs = pd.DataFrame(Xb, columns=[f"x{i}" for i in range(16)]).assign(label=np.argmax(Xb @ W, axis=1))
print(blobs.shape, "- classes:", sorted(blobs["label"].unique().tolist()))

# %% tags=["nbval-ignore-output"]
%%aiaas sweep --data blobs --target label --name sweep-mlp --search tpe --trials 8 --early-stop asha --epochs 9 --batch-size 64 --seed 1 -o mlp_sweep
def make_model(params):
    w = params["width"]
    return nn.Sequential(nn.Linear(16, w), nn.ReLU(), nn.Linear(w, 4))

space = {"lr": loguniform(1e-3, 3e-2), "width": [8, 32, 64]}

# %%
mlp_sweep.result()
epochs = sum(len(t.history) for t in mlp_sweep.trial_records())
print(mlp_sweep.status, "-", len(mlp_sweep.trials), "trials;",
      "some stopped early:", epochs < 8 * 9, "| best accuracy above 0.8:", mlp_sweep.best.value > 0.8)

# %%
# NBVAL_IGNORE_OUTPUT

mlp_sweep

# %% [markdown]
# ## 4. Deploy the best forest and call it
#
# `forest-rf` version 2 is a registered model like any other: deploy it on this home's model
# server and ask it for predictions.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy forest-rf

# %%
rows = forest.drop(columns=["label"]).head(5)
preds = aiaas_jupyter.predict("forest-rf", rows)
print("predicted", preds.tolist(), "| true", forest["label"].head(5).tolist())

# %%
%aiaas predict forest-rf --input rows

# %% [markdown]
# ## Clean up
#
# Undeploy, stop the model server and close the cluster; the registry keeps both models and
# both sweeps (`%aiaas sweeps`).

# %%
%aiaas undeploy forest-rf

# %%
from aiaas_jupyter.serving.state import find_server

aiaas_jupyter.stop_server()
print("model server running:", find_server(aiaas_jupyter.get_client().registry.home) is not None)

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas sweeps

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas disconnect
