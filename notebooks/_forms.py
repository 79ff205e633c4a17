"""The cells of ``04-forms.ipynb``: the widget forms, driven by code cells so nbval can check
them (a person clicks; here ``button.click()`` does the same thing through the same callbacks)."""

from __future__ import annotations


def cells(md, code, volatile, IGNORE):
    return [
        md("""
# Forms: train, watch, predict and manage the cluster without magic syntax

Every form is a front for the same façade the magics use, and shows the equivalent `%%aiaas` cell
so the work stays reproducible. In JupyterLab you fill them in and click; this notebook drives
them from code (`widget.value = ...`, `button.click()`), which runs exactly the same callbacks.
"""),
        code("""
%load_ext aiaas_jupyter
from sklearn.datasets import load_iris
from aiaas_jupyter.widgets import TrainForm, PredictForm

df = load_iris(as_frame=True).frame   # 150 rows, 4 features and a 'target' column
"""),
        code(IGNORE + """
%aiaas connect
"""),
        md("""
## TrainForm

`%aiaas train --form` (or `TrainForm()`) lists the notebook's DataFrames, the chosen frame's columns
as targets, a catalog of models with hyper-parameter controls made from each estimator's signature,
resources (GPUs, only when the cluster has some), the test split and the model name.
"""),
        code(IGNORE + """
form = TrainForm(data="df", target="target", name="forms-rf")
form
"""),
        code("""
form.model.value = "random_forest"
form.params["n_estimators"].value = 50
form.params["max_depth"].value = 4
print(form.magic)
"""),
        md("""
An invalid value gives a message in the form and starts nothing:
"""),
        code("""
form.params["n_estimators"].value = 0
form.train_button.click()
import re
print(re.sub("<[^>]+>", "", form.error.value))
print("job started:", form.job is not None)
form.params["n_estimators"].value = 50
"""),
        md("""
**Train** starts the job; its progress widget (bar, epoch, live curves for PyTorch, final metrics,
Cancel / Deploy / Copy as magic) appears in the form.
"""),
        code(IGNORE + """
form.train_button.click()
job = form.job
job.wait()
"""),
        code("""
print(job.status, job.version.ref, "accuracy", round(job.version.metrics["accuracy"], 3))
"""),
        md("""
The cell the form shows is the same job as a magic: run it and compare.
"""),
        code(IGNORE + """
get_ipython().run_cell(form.magic_text(block=True));
"""),
        code("""
from aiaas_jupyter import get_client
again = get_client().registry.get("forms-rf:2")
print(again.ref, again.params == job.version.params, again.metrics == job.version.metrics)
"""),
        md("""
## PredictForm

Deployed models and registered endpoints in one dropdown; the input is a variable, JSON or text.
"""),
        code(IGNORE + """
%aiaas deploy forms-rf:1
"""),
        code("""
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
"""),
        md("""
## ClusterWidget

`%aiaas status --widget`: workers, GPUs and memory, with connect / disconnect and scale controls.
"""),
        code(IGNORE + """
%aiaas status --widget
"""),
        code(IGNORE + """
%aiaas undeploy forms-rf
%aiaas disconnect
"""),
    ]
