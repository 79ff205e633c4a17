"""``TrainForm``: choose data, target, model and settings; see the cell; train on the cluster.

Built like ipywidgets' ``interactive()``: a ``VBox`` of controls, observers that keep the
dependent parts right (target columns follow the data, hyper-parameter controls follow the model
and the task), and an ``Output`` for the result. Why the cell text: a form must not be a dead end
for reproducibility, so the text area always shows the ``%%aiaas train`` cell that trains exactly
the same job (written by :func:`.roundtrip.train_magic`, the one writer of that text); "Insert as
cell" hands it to the notebook, and the Train button calls the same façade method the magic
calls, with the same source, so the registry cannot tell the two apart.

Checks happen before anything starts: a bad value shows one line in the form (an HTML with class
``aiaas-form-error``) and no job is submitted.
"""

from __future__ import annotations

import html
import ipywidgets as W

from ..train_defaults import TRAIN_DEFAULTS as DEFAULTS
from . import catalog
from .namespace import columns, data_info, frame_names, model_names
from .params import ParamControls
from .train_request import Choices, FormError, TrainRequest, cell, check

_STYLE = {"description_width": "150px"}
_TARGET_GUESSES = ("target", "label", "labels", "y", "class")
_NO_CELL = "# choose the data and the target column: the equivalent %%aiaas train cell appears here"


def _row(*children) -> W.HBox:
    return W.HBox(list(children), layout=W.Layout(align_items="center"))


def _show(widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


class TrainForm(W.VBox):
    """An interactive ``%%aiaas train``: ``TrainForm(client, namespace)``; ``.job``, ``.magic``."""

    def __init__(self, client=None, namespace: dict | None = None, *, data: str | None = None,
                 target: str | None = None, model: str = "random_forest", name: str | None = None,
                 test_size: float = DEFAULTS["test_size"], gpus: int = DEFAULTS["gpus"],
                 epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"],
                 lr: float | None = DEFAULTS["lr"], seed: int = DEFAULTS["seed"]):
        self._client, self._namespace = client, namespace
        self.job = None                 # the last Job submitted
        self.progress = None            # what the Output shows for it
        self._info = None               # DataInfo of the chosen data/target
        self._params_for = None         # (model, task, variable) the controls were made for
        self._quiet = True              # no recomputation while dropdowns are being refilled
        self.params = ParamControls([])

        self.data = W.Dropdown(description="data", options=[], value=None, style=_STYLE)
        self.refresh_button = W.Button(description="↻", tooltip="look again for DataFrames, model "
                                       "variables and the cluster's GPUs", layout=W.Layout(width="40px"))
        self.target = W.Dropdown(description="target", options=[], value=None, style=_STYLE)
        self.task = W.HTML()
        self.model = W.Dropdown(description="model", style=_STYLE, value=model,
                                options=[(e.label, k) for k, e in catalog.ENTRIES.items()])
        self.variable = W.Dropdown(description="variable", options=[], value=None, style=_STYLE)
        self.params_box = W.VBox()
        self.epochs = W.IntText(value=epochs, description="epochs", style=_STYLE)
        self.batch_size = W.IntText(value=batch_size, description="batch size", style=_STYLE)
        self.lr = W.FloatText(value=lr or 1e-3, description="learning rate", style=_STYLE)
        self.torch_box = W.VBox([self.epochs, self.batch_size, self.lr])
        self.test_size = W.FloatSlider(value=test_size, min=0.05, max=0.95, step=0.05, description="test split",
                                       readout_format=".2f", style=_STYLE)
        self.seed = W.IntText(value=seed, description="seed", style=_STYLE)
        self.gpus = W.IntSlider(value=0, min=0, max=0, description="GPUs", style=_STYLE, disabled=True)
        self.gpu_note = W.HTML()
        self.name = W.Text(value=name or "", description="model name", style=_STYLE)
        self.code = W.Textarea(disabled=True, rows=6, layout=W.Layout(width="100%"))
        self.insert_button = W.Button(description="Insert as cell", icon="plus",
                                      tooltip="put this cell into the notebook (below the next cell run)")
        # no icon: its glyph would become part of the button's accessible name ("Train")
        self.train_button = W.Button(description="Train", button_style="primary").add_class("aiaas-train-button")
        self.notice = W.HTML()
        self.error = W.HTML().add_class("aiaas-form-error")
        self.output = W.Output()
        super().__init__(children=[
            _row(self.data, self.refresh_button), _row(self.target, self.task), self.model, self.variable,
            self.params_box, self.torch_box, self.test_size, self.seed, _row(self.gpus, self.gpu_note),
            self.name, self.code, _row(self.train_button, self.insert_button, self.notice), self.error, self.output])
        self.add_class("aiaas-train-form")

        for w in (self.epochs, self.batch_size, self.lr, self.test_size, self.seed, self.gpus, self.name):
            w.observe(self._changed, "value")
        self.data.observe(self._data_changed, "value")
        self.target.observe(self._target_changed, "value")
        self.model.observe(self._model_changed, "value")
        self.variable.observe(self._model_changed, "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.insert_button.on_click(lambda _b: self.insert_cell())
        self.train_button.on_click(lambda _b: self.submit())

        self._wanted_gpus = gpus
        self._quiet = False
        self.refresh()
        if data is not None:
            self._select(self.data, data, f"no DataFrame named {data!r} in the notebook")
        if target is not None and self.data.value is not None:
            self._select(self.target, target, f"target column {target!r} is not in {self.data.value}")

    # -- the notebook and the cluster ----------------------------------------------------
    @property
    def namespace(self) -> dict:
        if self._namespace is None:
            from IPython import get_ipython

            shell = get_ipython()
            self._namespace = shell.user_ns if shell is not None else {}
        return self._namespace

    @property
    def client(self):
        if self._client is None:
            from ..client import get_client

            self._client = get_client()
        return self._client

    def refresh(self) -> None:
        """Look again for DataFrames and model variables (keeping the choices still there)."""
        quiet, self._quiet = self._quiet, True
        for dropdown, names in ((self.data, frame_names(self.namespace)),
                                (self.variable, model_names(self.namespace))):
            keep = dropdown.value
            dropdown.options = names
            dropdown.value = keep if keep in names else None
        self._quiet = quiet
        self._refresh_resources()
        self._data_changed()

    def _refresh_resources(self) -> None:
        """The GPU slider goes up to what one worker has (a job runs on one worker)."""
        dask = getattr(self.client, "dask", None)
        if dask is None or dask.status != "running":
            most, note = 0, "not connected: Train starts the embedded cluster (no GPUs chosen)"
        else:
            summary = self.client.cluster_summary()
            most = summary["max_gpus_per_worker"]
            note = (f"up to {most} per worker ({summary['gpus']} on the cluster)" if most
                    else "no GPUs on this cluster")
        want = self._wanted_gpus if self._wanted_gpus is not None else self.gpus.value
        if most:
            self._wanted_gpus = None  # a pre-filled --gpus applies once, when the cluster is known
        self.gpus.max = most
        self.gpus.value = min(want, most)
        self.gpus.disabled = most == 0
        self.gpu_note.value = f"<small>{html.escape(note)}</small>"

    def _select(self, dropdown, value, missing: str) -> None:
        """Pre-fill a choice; one that does not exist leaves nothing chosen (no guess trains)."""
        dropdown.value = value if value in dropdown.options else None
        if dropdown.value is None:
            self._fail(missing)

    # -- keeping the parts in step -------------------------------------------------------
    def _frame(self):
        return self.namespace.get(self.data.value) if self.data.value is not None else None

    def _data_changed(self, _change=None) -> None:
        if self._quiet:
            return
        frame = self._frame()
        cols = columns(frame) if frame is not None else []
        keep = self.target.value
        quiet, self._quiet = self._quiet, True
        self.target.options = cols
        guess = next((c for c in _TARGET_GUESSES if c in cols), cols[-1] if cols else None)
        self.target.value = keep if keep in cols else guess
        self._quiet = quiet
        self._target_changed()

    def _target_changed(self, _change=None) -> None:
        if self._quiet:
            return
        frame, target = self._frame(), self.target.value
        self._info = data_info(frame, target) if frame is not None and target is not None else None
        self.task.value = f"<i>{self._info.describe()}</i>" if self._info else ""
        self._model_changed()

    def _ctx(self) -> catalog.Context:
        var = self.variable.value if self.model.value == "variable" else None
        return catalog.Context(task=self._info.task if self._info else "classification", info=self._info,
                               seed=self.seed.value, var=var, obj=self.namespace.get(var) if var else None)

    def _model_changed(self, _change=None) -> None:
        """New hyper-parameter controls when the model, the task or the variable changed."""
        if self._quiet:
            return
        entry, ctx = catalog.get(self.model.value), self._ctx()
        key = (self.model.value, ctx.task, ctx.var)
        if key != self._params_for:
            self._params_for = key
            self.params = ParamControls(entry.specs(ctx), self.params.values())
            self.params.observe(self._changed)
            self.params_box.children = (self.params.box,)
        _show(self.variable, self.model.value == "variable")
        _show(self.torch_box, entry.framework_of(ctx) == "torch")
        self._changed()

    def _changed(self, _change=None) -> None:
        if self._quiet:
            return
        self.error.value = self.notice.value = ""
        self.name.placeholder = self.choices().suggested_name() or ""
        text = self.magic
        self.code.value = text or _NO_CELL
        self.code.rows = max(3, text.count("\n") + 1)

    # -- the cell --------------------------------------------------------------------------
    def choices(self) -> Choices:
        """The form's values as plain data (see :mod:`.train_request`)."""
        return Choices(self.data.value, self.target.value, self.name.value, self.model.value, self._ctx(),
                       self.params.values(), self.test_size.value, self.gpus.value, self.epochs.value,
                       self.batch_size.value, self.lr.value, self.seed.value)

    def magic_text(self, *, block: bool = False, out: str | None = None) -> str:
        """The ``%%aiaas train`` cell for the current values ("" until data and target are chosen)."""
        return cell(self.choices(), block=block, out=out)

    @property
    def magic(self) -> str:
        return self.magic_text()

    def request(self, build: bool = True) -> TrainRequest:
        """The checked submission, or :class:`FormError` with the first problem (see ``check``)."""
        return check(self.choices(), self.namespace, self.params.errors(), build)

    # -- actions ---------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.error.value = (f"<span style='color:var(--jp-error-color1, #c62828)'>⚠ "
                            f"{html.escape(message)}</span>")

    def insert_cell(self) -> str | None:
        """Hand the cell to the notebook (``set_next_input``); returns the text, None when invalid."""
        from IPython import get_ipython

        try:
            text = self.request(build=False).magic
        except FormError as exc:
            self._fail(str(exc))
            return None
        shell = get_ipython()
        if shell is None:
            self._fail("no IPython shell to insert the cell into: copy the text above")
            return None
        shell.set_next_input(text)
        # Jupyter delivers it with the reply to the next execution (a click is not one)
        self.notice.value = "<small>the cell appears below the next cell you run</small>"
        return text

    def submit(self):
        """The Train button: check, connect if needed, submit; show the job's progress. The Job or None."""
        from ..errors import AiaasError

        if self.train_button.disabled:
            return None
        self.error.value = ""
        try:
            req = self.request()
        except FormError as exc:
            self._fail(str(exc))
            return None
        self.train_button.disabled, self.train_button.description = True, "Submitting…"
        try:
            client = self.client
            if client.dask is None or client.dask.status != "running":
                client.connect()
                self._refresh_resources()
            job = client.train(req.model, req.data, req.target, name=req.name, source=req.body,
                               namespace=self.namespace, **req.options)
        except AiaasError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - whatever stopped the submission, shown in one line
            self._fail(f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self.train_button.disabled, self.train_button.description = False, "Train"
        self.job = job
        self._show_progress(job, client)
        return job

    def _show_progress(self, job, client) -> None:
        from IPython.display import display

        try:
            from .progress import JobProgress
        except ModuleNotFoundError as exc:  # that widget not installed: the job's own live view
            if exc.name != f"{__package__}.progress":
                raise
            JobProgress = None
        self.output.clear_output()
        with self.output:
            if JobProgress is None:
                from .live_views import show_job

                self.progress = job
                show_job(job, client)
            else:
                self.progress = JobProgress(job, client=client)
                display(self.progress)
