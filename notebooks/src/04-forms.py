# %% [markdown]
# # Forms: train, watch, predict and manage the cluster without magic syntax
#
# Every form is a front for the same façade the magics use, and shows the equivalent `%%aiaas` cell
# so the work stays reproducible. In JupyterLab you fill them in and click; this notebook drives
# them from code (`widget.value = ...`, `button.click()`), which runs exactly the same callbacks.

# %%
%load_ext aiaas_jupyter
from sklearn.datasets import load_iris
from aiaas_jupyter.widgets import TrainForm, PredictForm

df = load_iris(as_frame=True).frame   # 150 rows, 4 features and a 'target' column

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ## TrainForm
#
# `%aiaas train --form` (or `TrainForm()`) lists the notebook's DataFrames, the chosen frame's columns
# as targets, a catalog of models with hyper-parameter controls made from each estimator's signature,
# resources (GPUs, only when the cluster has some), the test split and the model name.

# %%
# NBVAL_IGNORE_OUTPUT

form = TrainForm(data="df", target="target", name="forms-rf")
form

# %%
form.model.value = "random_forest"
form.params["n_estimators"].value = 50
form.params["max_depth"].value = 4
print(form.magic)

# %% [markdown]
# An invalid value gives a message in the form and starts nothing:

# %%
form.params["n_estimators"].value = 0
form.train_button.click()
import re
print(re.sub("<[^>]+>", "", form.error.value))
print("job started:", form.job is not None)
form.params["n_estimators"].value = 50

# %% [markdown]
# **Train** starts the job; its progress widget (bar, epoch, live curves for PyTorch, final metrics,
# Cancel / Deploy / Copy as magic) appears in the form.

# %%
# NBVAL_IGNORE_OUTPUT

form.train_button.click()
job = form.job
job.wait()

# %%
print(job.status, job.version.ref, "accuracy", round(job.version.metrics["accuracy"], 3))

# %% [markdown]
# The cell the form shows is the same job as a magic: run it and compare.

# %%
# NBVAL_IGNORE_OUTPUT

get_ipython().run_cell(form.magic_text(block=True));

# %%
from aiaas_jupyter import get_client
again = get_client().registry.get("forms-rf:2")
print(again.ref, again.params == job.version.params, again.metrics == job.version.metrics)

# %% [markdown]
# ## PredictForm
#
# Deployed models and registered endpoints in one dropdown; the input is a variable, JSON or text.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy forms-rf:1

# %%
X = df.drop(columns="target").iloc[[0, 60, 120]]
pf = PredictForm()
pf.select("forms-rf")
pf.mode.value = "variable"
pf.refresh()
pf.variable.value = "X"
pf.predict_button.click()
print(pf.result.tolist())
pf.mode.value = "json"
pf.json.value = "[[6.3, 3.3, 6.0, 2.5]]"
pf.predict_button.click()
print(pf.result.tolist())
pf.json.value = "[[6.3, 3.3"   # a mistake: one clear line in the form's output, no exception
pf.predict_button.click()
print(pf.output.outputs[-1]["data"]["text/plain"])

# %% [markdown]
# ## ClusterWidget
#
# `%aiaas status --widget`: workers, GPUs and memory, with connect / disconnect and scale controls.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas status --widget

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas undeploy forms-rf
%aiaas disconnect
