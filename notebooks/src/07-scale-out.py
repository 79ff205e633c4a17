# %% [markdown]
# # Scale out: a job that survives a dying worker, and one model on two workers
#
# 1. a PyTorch job whose worker is killed mid-training (SIGKILL, as an out-of-memory kill or a
#    preempted node would): Dask runs it again on the other worker, where it resumes from its last
#    checkpoint and ends with exactly the model an uninterrupted run gives;
# 2. the same network trained data-parallel on two workers (`--workers 2`,
#    `DistributedDataParallel`), against one worker with the same effective batch: the same
#    quality, and the scaling figure.

# %%
%load_ext aiaas_jupyter
import os
import signal
import time

import aiaas_jupyter
import numpy as np
import pandas as pd

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect --workers 2 --threads 1

# %% [markdown]
# A seeded synthetic set: 10,000 rows, 16 features, 3 classes (small enough to travel inside
# the task, so a worker's death takes no data with it).

# %%
rng = np.random.default_rng(7)
X = rng.normal(size=(10_000, 16)).astype("float32")
label = np.argmax(X[:, :3] + 0.4 * rng.normal(size=(10_000, 3)), axis=1)
points = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(label=label)
print(points.shape, "- classes:", sorted(points["label"].unique().tolist()))

# %% [markdown]
# ## 1. A job that survives a dying worker
#
# First the reference: the job uninterrupted. The cell's `torch.manual_seed` fixes the initial
# weights; `--seed` fixes the split, the shuffling and the dropout masks.

# %% tags=["nbval-ignore-output"]
%%aiaas train --data points --target label --name mlp-steady --epochs 8 --batch-size 64 --seed 3 --block
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3))

# %% [markdown]
# Now the same job, and once it has trained 3 epochs, its worker is killed. The torch trainer
# checkpoints after every epoch (weights, optimizer state and random number generators, as
# safetensors, under `aiaas.checkpoints.url`: by default the registry home's `checkpoints`
# folder with the embedded cluster). Dask notices the dead worker and runs the task on the other
# one, which finds the checkpoint and goes on from there.

# %% tags=["nbval-ignore-output"]
%%aiaas train --data points --target label --name mlp-survivor --epochs 8 --batch-size 64 --seed 3 -o job
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3))

# %%
# NBVAL_IGNORE_OUTPUT
def epochs_done(job):
    return max((e.get("epoch") or 0 for e in job.events if e.get("stage") == "epoch"), default=0)


deadline = time.time() + 120
while epochs_done(job) < 3 and time.time() < deadline:
    time.sleep(0.05)
dask_client = aiaas_jupyter.get_client().dask
victim = job.record.worker
os.kill(dask_client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)  # the worker's nanny logs its restart
version = job.result(timeout=300)

# %%
print("finished:", job.status == "finished", "| attempt:", job.record.info["attempt"],
      "| resumed at epoch 3 or later:", job.record.info["resumed_epoch"] >= 3)

# %% [markdown]
# The job view and `%aiaas jobs` (column `note`) say what happened, e.g. "attempt 2: resumed at
# epoch 3 after worker tcp://127.0.0.1:… died". The epochs before the checkpoint were not trained
# again, and the model is exactly the uninterrupted one: same metrics, same losses epoch by epoch.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas jobs

# %%
steady = aiaas_jupyter.get_client().registry.get("mlp-steady")
print("same metrics as the uninterrupted run:", version.metrics == steady.metrics)
print("same loss every epoch:", [h["loss"] for h in version.extra["history"]]
      == [h["loss"] for h in steady.extra["history"]])
print("held-out accuracy:", round(version.metrics["accuracy"], 2))

# %% [markdown]
# ## 2. One model on two workers
#
# `--workers 2` trains one model with `DistributedDataParallel` on two Dask workers (gloo on
# CPUs, NCCL on GPUs). The ranks meet at a port rank 0's worker found free; each holds only its
# share of the rows; gradients are averaged every step; one version is registered, after checking
# that both ranks ended with the same weights. `--batch-size` is per worker, so 2 x 1024 here is the
# one-worker job's 2048. The held-out rows are the ones a one-worker job holds out.
#
# A larger set this time (80,000 rows: each worker gets its own share, scattered to it) and a
# wider network, so that each step's compute outweighs averaging the gradients.

# %%
rng = np.random.default_rng(8)
X = rng.normal(size=(80_000, 16)).astype("float32")
label = np.argmax(X[:, :3] + 0.4 * rng.normal(size=(80_000, 3)), axis=1)
many = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)]).assign(label=label)

# %% tags=["nbval-ignore-output"]
%%aiaas train --data many --target label --name mlp-one --epochs 3 --batch-size 2048 --seed 3 --block
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))

# %% tags=["nbval-ignore-output"]
%%aiaas train --data many --target label --name mlp-two --epochs 3 --batch-size 1024 --seed 3 --workers 2 --block
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))

# %%
registry = aiaas_jupyter.get_client().registry
one, two = registry.get("mlp-one"), registry.get("mlp-two")
print("ranks:", [r["rank"] for r in two.extra["ranks"]], "on", len({r["worker"] for r in two.extra["ranks"]}),
      "workers, backend", two.extra["data_parallel"]["backend"])
print("accuracy, one worker:", round(one.metrics["accuracy"], 2), "| two workers:", round(two.metrics["accuracy"], 2))
print("within 1%:", abs(one.metrics["accuracy"] - two.metrics["accuracy"]) <= 0.01)

# %% [markdown]
# The scaling figure: training samples per second in each job's epochs (after the first), and the
# efficiency, (two-worker samples/s) / (2 x one-worker samples/s). On two CPU cores the two
# ranks also compete with the kernel and the scheduler; `benchmarks/w6_ddp.py` measures it at W1's
# size, and on GPUs with NCCL.

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt


def samples_per_s(version):
    later = version.extra["history"][1:]
    return sum(e["samples_per_s"] * e["seconds"] for e in later) / sum(e["seconds"] for e in later)


rates = [samples_per_s(one), samples_per_s(two)]
print(f"samples/s: one worker {rates[0]:,.0f}, two workers {rates[1]:,.0f}; "
      f"efficiency {rates[1] / (2 * rates[0]):.2f}")
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.bar(["1 worker", "2 workers"], rates, color=["#90a4ae", "#1565c0"])
ax.set_ylabel("training samples/s")
ax.set_title("data-parallel scaling")
plt.show()

# %% [markdown]
# ## Clean up

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas disconnect
