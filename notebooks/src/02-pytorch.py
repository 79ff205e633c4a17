# %% [markdown]
# # PyTorch models with aiaas
#
# A `torch.nn.Module` trains the same way as a scikit-learn estimator: the cell (or the
# Python API) hands over `model` — and optionally `optimizer` and `loss` — and a worker runs the
# training loop, streams per-epoch progress, and registers the weights (safetensors) plus an
# ONNX export that can be served without your Python class.
#
# Three models: an MLP on a synthetic 10-class set, a binary MLP with our own optimizer and
# loss, and a small CNN on the 8×8 digits of scikit-learn.

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter
import numpy as np
import pandas as pd
import torch
from torch import nn
from sklearn.datasets import load_digits, make_classification

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ### CPU or GPU
#
# The embedded cluster gives every GPU of the machine to its own worker. A job that needs one
# asks with `--gpus 1` (magic) or `gpus=1` (Python API) and is placed on a GPU worker; on a
# machine without GPUs that request fails at once with a clear message instead of waiting
# forever. A magic line cannot be conditional, so where the notebook must run on both, use the
# Python API:

# %%
# NBVAL_IGNORE_OUTPUT

n_gpus = 1 if torch.cuda.is_available() else 0
print("this notebook trains on", "a GPU" if n_gpus else "the CPU")

# %% [markdown]
# ## 1. An MLP for 10 classes (Python API)
#
# A seeded synthetic set: 3000 rows, 64 features, 10 classes. The weights are initialised
# in the notebook, so we seed torch here too; `seed=1` seeds the split and the training loop.

# %%
X, y = make_classification(n_samples=3000, n_features=64, n_informative=40, n_classes=10,
                           n_clusters_per_class=1, class_sep=2.0, random_state=1)
blobs = pd.DataFrame(X.astype("float32"), columns=[f"x{i}" for i in range(64)]).assign(label=y)
print(blobs.shape, "-", blobs["label"].nunique(), "classes of", blobs["label"].value_counts().min(), "to", blobs["label"].value_counts().max(), "rows")

# %%
torch.manual_seed(1)
mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

job = aiaas_jupyter.train(mlp, blobs, target="label", name="blobs-mlp", gpus=n_gpus,
                          epochs=20, batch_size=64, lr=0.003, seed=1)
mlp_v = job.result()
print(mlp_v.ref, "| loss", mlp_v.params["loss"], "| optimizer", mlp_v.params["optimizer"],
      "| held-out accuracy", round(mlp_v.metrics["accuracy"], 2))

# %% [markdown]
# No loss was given: the trainer picked `CrossEntropyLoss` (integer labels, 10 outputs) and
# `AdamW` with `lr=0.003`.
#
# ## 2. A binary MLP with our own optimizer and loss (magic)
#
# The cell defines `model`, `optimizer` and `loss`; `--epochs` and `--batch-size` drive the
# loop. The model ends in a `Sigmoid`, so `BCELoss` fits.

# %%
X, y = make_classification(n_samples=2000, n_features=64, n_informative=16, random_state=3)
binary = pd.DataFrame(X.astype("float32"), columns=[f"f{i}" for i in range(64)]).assign(label=y)
print(binary.shape, "positives:", int(binary["label"].sum()))

# %% tags=["nbval-ignore-output"]
%%aiaas train --data binary --target label --name binary-mlp --epochs 10 --batch-size 32 --seed 3 --block
torch.manual_seed(3)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss = torch.nn.BCELoss()

# %% [markdown]
# Each registered version keeps its per-epoch history:

# %%
binary_v = aiaas_jupyter.model("binary-mlp")
history = pd.DataFrame(binary_v.extra["history"])
history[["epoch", "loss", "val_loss", "val_accuracy"]].round(2).set_index("epoch")

# %% [markdown]
# ## 3. A small CNN on the digits
#
# `load_digits` gives 64 pixel columns (values 0–16) and a `target`; the network reshapes each
# row to a 1×8×8 image in `forward`. The class is defined in the notebook and shipped to the
# worker with the model.

# %%
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


# %% tags=["nbval-ignore-output"]
%%aiaas train --data digits --target target --name digits-cnn --epochs 15 --batch-size 64 --lr 0.003 --seed 2 --block
torch.manual_seed(2)
model = DigitsCNN()

# %%
cnn_v = aiaas_jupyter.model("digits-cnn")
print(cnn_v.ref, "|", cnn_v.params["n_parameters"], "parameters | held-out accuracy",
      round(cnn_v.metrics["accuracy"], 2))
cnn_history = pd.DataFrame(cnn_v.extra["history"]).set_index("epoch")
cnn_history[["loss", "val_accuracy"]].round(2).iloc[::2].T      # every other epoch

# %% [markdown]
# ## The registry

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas models

# %%
ours = ("blobs-mlp", "binary-mlp", "digits-cnn")        # the registry may hold other models too
for m in aiaas_jupyter.models().records():
    if m["model"] in ours:
        print(f"{m['model']:<12} version {m['latest']}  {m['framework']}")

# %% [markdown]
# ## Load the CNN back
#
# Without arguments `load_model` returns an ONNX predictor (onnxruntime): no torch, no
# `DigitsCNN` class needed, with scikit-learn's surface: `predict` gives labels, `predict_proba`
# probabilities (softmax of the logits, as it trained with `CrossEntropyLoss`), `cnn(X)` the raw outputs.

# %%
cnn = aiaas_jupyter.load_model("digits-cnn")
sample = digits.sample(300, random_state=0)
predicted = cnn.predict(sample.drop(columns="target"))
print(cnn)
print("first ten:", predicted[:10].tolist(), "\ntrue     :", sample["target"].head(10).tolist())
print("accuracy on 300 digits:", round(float((predicted == sample["target"].to_numpy()).mean()), 2))

# %% [markdown]
# With `module=` the safetensors weights load into your own class instead:

# %%
net = aiaas_jupyter.load_model("digits-cnn", module=DigitsCNN())
with torch.no_grad():
    logits = net(torch.tensor(sample.drop(columns="target").to_numpy(), dtype=torch.float32))
print("torch and ONNX agree on", int((logits.argmax(1).numpy() == predicted).sum()), "of", len(sample))

# %% [markdown]
# Close the cluster; the three models stay in the registry.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas disconnect
