"""Hyper-parameter controls, generated from the estimator itself.

Why generate instead of hand-writing one form per model: the defaults, the allowed choices and
the valid ranges already live in the estimator (``inspect.signature`` and scikit-learn's
``_parameter_constraints``), so reading them keeps the form right across library versions and
makes "a model variable from the notebook" work for any estimator. A catalog entry only says
which ~4–8 parameters are worth showing, and may tighten a range (``learning_rate`` in (0, 1]).

The widget kind follows the default and the constraints: bool → Checkbox, a parameter with string
options → Dropdown (plus None / the default when allowed), int → IntText, float → FloatText,
None-able int (``max_depth``) → a "limit" Checkbox + IntText. Ranges are *checked with a
message* rather than clamped by a BoundedIntText: a silently clamped ``0`` would train something
other than what the user typed.
"""

from __future__ import annotations

import html
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

_INT_FALLBACK = 10  # what a None-able int shows when the user first ticks "limit"


@dataclass
class ParamSpec:
    """One hyper-parameter: how to show it and which values are valid."""

    key: str                     # unique within the model (a pipeline uses step__param, as get_params does)
    name: str                    # the keyword argument
    kind: str                    # "bool" | "choice" | "int" | "float" | "optional_int"
    default: Any
    choices: tuple = ()
    intervals: tuple = ()        # (low, high, closed) ranges, None = open end; any one may hold
    label: str = ""

    def check(self, value) -> str | None:
        """A one-line message when *value* is not allowed, else None."""
        if self.kind in ("bool", "choice") or value is None:
            return None
        if self.kind in ("int", "optional_int") and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{self.key} must be a whole number, got {value!r}"
        if value != value:  # NaN
            return f"{self.key} must be a number, got nan"
        if self.intervals and not any(_inside(value, iv) for iv in self.intervals):
            return f"{self.key} must be {' or '.join(_describe(iv) for iv in self.intervals)}, got {value!r}"
        return None


def _inside(value, interval) -> bool:
    low, high, closed = interval
    if low is not None and (value < low or (value == low and closed not in ("left", "both"))):
        return False
    return not (high is not None and (value > high or (value == high and closed not in ("right", "both"))))


def _describe(interval) -> str:
    low, high, closed = interval
    if high is None:
        return f"{'≥' if closed in ('left', 'both') else '>'} {low}"
    if low is None:
        return f"{'≤' if closed in ('right', 'both') else '<'} {high}"
    return f"in {'[' if closed in ('left', 'both') else '('}{low}, {high}{']' if closed in ('right', 'both') else ')'}"


def _sklearn_constraints(cls, name: str) -> tuple[tuple, tuple, tuple, bool]:
    """(int intervals, float intervals, string options, None allowed) from ``_parameter_constraints``.

    Read by duck typing (``left``/``right``/``closed``/``type``, ``options``): the classes live in a
    private scikit-learn module. Hidden constraints (deprecated or internal) are left out.
    """
    ints, floats, options, nullable = [], [], [], False
    for c in getattr(cls, "_parameter_constraints", {}).get(name, ()):
        if c is None:
            nullable = True
        elif getattr(c, "hidden", False) or type(c).__name__ == "Hidden":
            continue
        elif hasattr(c, "closed") and isinstance(getattr(c, "type", None), type):
            iv = (c.left, c.right, c.closed)
            (ints if issubclass(c.type, numbers.Integral) else floats).append(iv)
        elif isinstance(getattr(c, "options", None), (set, frozenset)):
            dropped = set(getattr(c, "deprecated", ()) or ()) | set(getattr(c, "internal", ()) or ())
            options += sorted(o for o in c.options if o not in dropped)
    return tuple(ints), tuple(floats), tuple(options), nullable


def spec_for(owner, name: str, *, key: str | None = None, default=inspect.Parameter.empty,
             choices: tuple | None = None, intervals: tuple | None = None) -> ParamSpec:
    """The spec of parameter *name* of *owner* (an estimator class or a builder function).

    *default* overrides the signature's (an instance's current value, or a catalog's better
    start such as ``max_iter=1000``); *choices*/*intervals* override what the constraints say.
    """
    target = owner if inspect.isclass(owner) or inspect.isfunction(owner) else type(owner)
    if default is inspect.Parameter.empty:
        default = inspect.signature(target).parameters[name].default
    cls = target if inspect.isclass(target) else None
    ints, floats, options, nullable = _sklearn_constraints(cls, name) if cls else ((), (), (), False)
    key = key or name
    if choices is None and options:
        choices = tuple(options) + ((None,) if nullable else ())
    if choices:
        choices = tuple(choices) + (() if default in choices else (default,))
        return ParamSpec(key, name, "choice", default, tuple(choices), label=key)
    if isinstance(default, bool):
        return ParamSpec(key, name, "bool", default, label=key)
    if isinstance(default, numbers.Integral):
        return ParamSpec(key, name, "int", int(default), intervals=intervals or ints, label=key)
    if isinstance(default, numbers.Real):
        return ParamSpec(key, name, "float", float(default), intervals=intervals or floats, label=key)
    if default is None and (ints or intervals):
        return ParamSpec(key, name, "optional_int", None, intervals=intervals or ints, label=key)
    raise TypeError(f"no control for {key}={default!r}")


def simple_params(estimator, limit: int = 8, prefer: tuple = ()) -> list[str]:
    """The parameters of an estimator *instance* worth a control: scalar values, *prefer* first."""
    try:
        params = estimator.get_params(deep=False)
    except (AttributeError, TypeError):
        return []
    shown = [p for p in prefer if p in params] + [p for p in params if p not in prefer]
    out = []
    for p in shown:
        if p in ("verbose", "n_jobs", "random_state", "warm_start", "copy_X"):
            continue
        try:
            spec_for(estimator, p, default=params[p])
        except (TypeError, KeyError):
            continue
        out.append(p)
    return out[:limit]


# -- controls ----------------------------------------------------------------------------------
_STYLE = {"description_width": "150px"}


@dataclass
class ParamControl:
    """A spec with its widget; ``value`` is the Python value whatever the widget holds."""

    spec: ParamSpec
    widget: Any
    _get: Callable[[], Any] = field(repr=False)
    _set: Callable[[Any], None] = field(repr=False)
    _watch: tuple = field(default=(), repr=False)

    @property
    def value(self):
        return self._get()

    @value.setter
    def value(self, value) -> None:
        self._set(value)

    def observe(self, callback) -> None:
        for w in self._watch:
            w.observe(callback, "value")


def make_control(spec: ParamSpec, value=inspect.Parameter.empty) -> ParamControl:
    """The widget for *spec*, showing *value* (default: the spec's default)."""
    import ipywidgets as W

    value = spec.default if value is inspect.Parameter.empty else value
    if spec.kind == "bool":
        w = W.Checkbox(value=bool(value), description=spec.label, indent=True, style=_STYLE)
        return ParamControl(spec, w, lambda: w.value, lambda v: setattr(w, "value", bool(v)), (w,))
    if spec.kind == "choice":
        labels = [c if isinstance(c, str) else repr(c) for c in spec.choices]
        w = W.Dropdown(options=list(zip(labels, range(len(labels)))), description=spec.label, style=_STYLE,
                       value=spec.choices.index(value if value in spec.choices else spec.default))
        return ParamControl(spec, w, lambda: spec.choices[w.value],
                            lambda v: setattr(w, "value", spec.choices.index(v)), (w,))
    if spec.kind in ("int", "float"):
        cls = W.IntText if spec.kind == "int" else W.FloatText
        w = cls(value=value, description=spec.label, style=_STYLE, layout=W.Layout(width="260px"))
        return ParamControl(spec, w, lambda: w.value, lambda v: setattr(w, "value", v), (w,))
    # optional_int: "limit" ticked → the number; unticked → None
    low = next((iv[0] for iv in spec.intervals if iv[0] is not None), None)
    # laid out like the other controls: the name right-aligned in the description column
    name = W.HTML(f"<div style='text-align:right;padding-right:8px'>{html.escape(spec.label)}</div>",
                  layout=W.Layout(width=_STYLE["description_width"]))
    limit = W.Checkbox(value=value is not None, description="limit", indent=False, layout=W.Layout(width="64px"))
    number = W.IntText(value=value if value is not None else max(_INT_FALLBACK, low or 0),
                       disabled=value is None, layout=W.Layout(width="90px"))
    hint = W.HTML("None (no limit)" if value is None else "")

    def toggled(change):
        number.disabled = not change.new
        hint.value = "" if change.new else "None (no limit)"

    limit.observe(toggled, "value")

    def set_value(v):
        if v is not None:
            number.value = v
        limit.value = v is not None

    box = W.HBox([name, limit, number, hint], layout=W.Layout(align_items="center"))
    return ParamControl(spec, box, lambda: number.value if limit.value else None, set_value, (limit, number))


_NO = object()


def _fits(spec: ParamSpec, value) -> bool:
    """Whether a value kept from the previous model can be shown by *spec*'s control."""
    if value is _NO:
        return False
    if spec.kind == "choice":
        return value in spec.choices
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "float":
        return isinstance(value, float)
    return (value is None and spec.kind == "optional_int") or (isinstance(value, int) and not isinstance(value, bool))


class ParamControls:
    """The controls of one model, in order; ``values()`` for the builder, ``errors()`` for the form."""

    def __init__(self, specs: list[ParamSpec], values: dict | None = None):
        import ipywidgets as W

        values = {k: v for k, v in (values or {}).items()}
        self.controls = {s.key: make_control(s, values[s.key] if _fits(s, values.get(s.key, _NO)) else s.default)
                         for s in specs}
        self.box = W.VBox([c.widget for c in self.controls.values()])

    def __getitem__(self, key: str) -> ParamControl:
        return self.controls[key]

    def __contains__(self, key: str) -> bool:
        return key in self.controls

    def __iter__(self):
        return iter(self.controls)

    def values(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def errors(self) -> list[str]:
        return [m for c in self.controls.values() if (m := c.spec.check(c.value))]

    def observe(self, callback) -> None:
        for c in self.controls.values():
            c.observe(callback)
