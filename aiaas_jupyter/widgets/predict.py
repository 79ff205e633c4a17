"""PredictForm: call a deployed model or a remote endpoint from a form, without writing a cell.

Pick the model (own deployments, remote endpoints, and registered models that are not served
yet — those with a Deploy button), give the input as a notebook variable, as JSON or as text,
click Predict: the answer shows as a table (Markdown for a chat endpoint's text). Everything
goes through the façade (``predict`` / ``ask`` / ``deploy``), so the form behaves exactly like
``%aiaas predict``; JSON is parsed with ``json.loads``, never evaluated. Every error shows in
the form's Output as one line (class ``aiaas-form-error``).
"""

from __future__ import annotations

import html
import json

import ipywidgets as w

from ..errors import DataError, EndpointNotFoundError
from .feedback import note_html, show, show_error

#: kinds of value the variable list offers
_INPUT_TYPES = ("DataFrame", "Series", "ndarray", "list", "tuple")
#: rows of a result table shown (the whole result stays in ``form.result``)
MAX_ROWS = 50


class PredictForm(w.VBox):
    """``client``: the façade (default: the kernel's); ``namespace``: where variables are looked up
    (default: the notebook's)."""

    def __init__(self, client=None, namespace: dict | None = None, **kwargs):
        self._client, self._namespace = client, namespace
        self.result = None  # the last prediction (numpy array, dict, JSON or the answer text)
        self._protocols: dict[str, str] = {}
        self.model = w.Dropdown(description="model", options=[], layout=w.Layout(width="420px"))
        self.hint = w.HTML("")
        self.deploy_button = w.Button(description="Deploy", icon="rocket", layout=w.Layout(display="none"))
        self.refresh_button = w.Button(icon="refresh", tooltip="reload models and variables",
                                       layout=w.Layout(width="40px"))
        self.mode = w.ToggleButtons(options=[("variable", "variable"), ("JSON", "json"), ("text", "text")],
                                    value="variable", description="input")
        self.variable = w.Dropdown(description="variable", options=[])
        self.json = w.Textarea(description="JSON", placeholder='[[5.1, 3.5, 1.4, 0.2]] or [{"col": 1.0}]',
                               layout=w.Layout(width="420px", height="6em"))
        self.text = w.Textarea(description="text", placeholder="a text to classify, or a question",
                               layout=w.Layout(width="420px", height="4em"))
        self.predict_button = w.Button(description="Predict", icon="play", button_style="primary")
        self.output = w.Output()
        self.model.observe(self._on_model, names="value")
        self.mode.observe(lambda _: self._show_mode(), names="value")
        self.deploy_button.on_click(self._on_deploy)
        self.refresh_button.on_click(lambda _: self.refresh())
        self.predict_button.on_click(self._on_predict)
        super().__init__([w.HBox([self.model, self.refresh_button, self.deploy_button]), self.hint, self.mode,
                          self.variable, self.json, self.text, self.predict_button, self.output], **kwargs)
        self.add_class("aiaas-predict-form")
        self._show_mode()
        self.refresh()

    @property
    def client(self):
        if self._client is None:
            from ..client import get_client

            self._client = get_client()
        return self._client

    @property
    def namespace(self) -> dict:
        if self._namespace is None:
            from IPython import get_ipython

            shell = get_ipython()
            return shell.user_ns if shell is not None else {}
        return self._namespace

    # -- choices ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload deployments, endpoints, registered models and the notebook's variables."""
        try:
            deployed = {d["name"]: d for d in self.client.deployments()}
            remote = self.client.registry.list_endpoints()
            models = self.client.registry.list_models()
        except Exception as exc:  # noqa: BLE001 - shown in the form
            show_error(self.output, exc)
            deployed, remote, models = {}, [], []
        self._protocols = {ep.name: ep.protocol for ep in remote}
        options = [(f"{n} — deployed ({d.get('ref', n)})", f"deployment:{n}") for n, d in sorted(deployed.items())]
        options += [(f"{ep.name} — {ep.protocol} endpoint", f"endpoint:{ep.name}") for ep in remote]
        options += [(f"{m['name']} — registered, not deployed", f"registered:{m['name']}")
                    for m in models if m["name"] not in deployed]
        current = self.model.value
        self.model.options = options
        values = [v for _, v in options]
        self.model.value = current if current in values else (values[0] if values else None)
        self._on_model()
        names = sorted(k for k, v in self.namespace.items() if _offerable(k, v))
        current = self.variable.value
        self.variable.options = names
        self.variable.value = current if current in names else (names[0] if names else None)

    def select(self, name: str) -> None:
        """Choose a model by name (a deployment first, as ``predict`` resolves names)."""
        for kind in ("deployment", "endpoint", "registered"):
            if f"{kind}:{name}" in [v for _, v in self.model.options]:
                self.model.value = f"{kind}:{name}"
                return
        raise EndpointNotFoundError(f"no deployment, endpoint or registered model named {name!r}")

    def _on_model(self, _=None) -> None:
        kind, name = _split(self.model.value)
        registered = kind == "registered"
        self.deploy_button.layout.display = None if registered else "none"
        if registered:
            self.hint.value = note_html(f"{name} is registered but not served: click Deploy "
                                        f"(or run %aiaas deploy {name})", "#b26a00")
        elif kind is None:
            self.hint.value = note_html("nothing to call yet: train a model, then deploy it", "#b26a00")
        else:
            self.hint.value = ""
        if kind == "endpoint" and self._protocols.get(name) == "openai":
            self.mode.value = "text"

    def _show_mode(self) -> None:
        for mode, box in (("variable", self.variable), ("json", self.json), ("text", self.text)):
            box.layout.display = None if self.mode.value == mode else "none"

    # -- actions ----------------------------------------------------------------------
    def _on_deploy(self, _=None) -> None:
        kind, name = _split(self.model.value)
        if kind != "registered":
            return
        show(self.output, note_html(f"deploying {name}…"), f"deploying {name}…")
        try:
            dep = self.client.deploy(name)
        except Exception as exc:  # noqa: BLE001
            show_error(self.output, exc)
            return
        self.refresh()
        self.model.value = f"deployment:{dep.name}"
        url = html.escape(dep.url)
        show(self.output, f"deployed <b>{html.escape(dep.ref)}</b> at <code>{url}</code>",
             f"deployed {dep.ref} at {dep.url}")

    def _input(self):
        mode = self.mode.value
        if mode == "variable":
            name = self.variable.value
            if not name:
                raise DataError("no variable chosen", "define a DataFrame, array or list, then click ↻")
            if name not in self.namespace:
                raise DataError(f"no variable named {name!r} in the notebook",
                                "define it, or click ↻ to reload the list")
            return self.namespace[name]
        if mode == "json":
            source = self.json.value.strip()
            if not source:
                raise DataError("the JSON input is empty", 'write e.g. [[5.1, 3.5, 1.4, 0.2]]')
            try:
                return json.loads(source)
            except json.JSONDecodeError as exc:
                raise DataError(f"the input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                                'e.g. [[5.1, 3.5, 1.4, 0.2]] or [{"text": "hi"}]') from None
        if not self.text.value.strip():
            raise DataError("the text is empty", "write the text (or question) in the box")
        return self.text.value

    def predict(self):
        """What Predict does; returns the result (also kept in ``result`` and shown)."""
        kind, name = _split(self.model.value)
        if kind is None:
            raise EndpointNotFoundError("no model chosen", "deploy a model (%aiaas deploy NAME), then click ↻")
        if kind == "registered":
            raise EndpointNotFoundError(f"model {name!r} is registered but not deployed",
                                        f"click Deploy, or run %aiaas deploy {name}")
        data = self._input()
        if kind == "endpoint" and self._protocols.get(name) == "openai":
            if not isinstance(data, str):
                raise DataError(f"endpoint {name!r} is a chat model: it takes text", "choose the text input")
            answer = self.client.ask(name, data)
            self.result = answer.text
            self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                    "data": {"text/markdown": answer.text, "text/plain": answer.text}},)
            return self.result
        result = self.client.predict(name, data, endpoint=kind == "endpoint")
        self.result = result
        frame = _as_frame(result, data)
        if frame is None:
            text = json.dumps(result, indent=1, default=str)
            show(self.output, f"<pre>{html.escape(text)}</pre>", text)
        else:
            show(self.output, frame.to_html(max_rows=MAX_ROWS, classes="aiaas-predictions", border=0),
                 frame.to_string(max_rows=MAX_ROWS))
        return result

    def _on_predict(self, _=None) -> None:
        try:
            self.predict()
        except Exception as exc:  # noqa: BLE001 - the form shows it, the kernel goes on
            show_error(self.output, exc)


# -- helpers ---------------------------------------------------------------------------------

def _split(value) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    kind, _, name = str(value).partition(":")
    return kind, name


def _offerable(name: str, value) -> bool:
    if name.startswith("_") or name in ("In", "Out", "exit", "quit"):
        return False
    return type(value).__name__ in _INPUT_TYPES and (not isinstance(value, (list, tuple)) or len(value) > 0)


def _as_frame(result, data):
    """The predictions as a DataFrame (with the inputs beside them when they line up)."""
    import numpy as np
    import pandas as pd

    if isinstance(result, dict):
        try:
            return pd.DataFrame({k: list(np.asarray(v).tolist()) for k, v in result.items()})
        except ValueError:
            return None
    try:
        arr = np.asarray(result)
    except (ValueError, TypeError):
        return None
    if arr.dtype == object and arr.ndim != 1 or arr.ndim == 0 or arr.ndim > 2:
        return None
    pred = (pd.DataFrame({"prediction": arr}) if arr.ndim == 1 else
            pd.DataFrame(arr, columns=[f"prediction_{i}" for i in range(arr.shape[1])]))
    inputs = data if isinstance(data, pd.DataFrame) else (
        pd.DataFrame({"input": data}) if isinstance(data, list) and all(isinstance(t, str) for t in data) else
        pd.DataFrame({"input": [data]}) if isinstance(data, str) else None)
    if inputs is not None and len(inputs) == len(pred):
        return pd.concat([inputs.reset_index(drop=True), pred], axis=1)
    return pred

