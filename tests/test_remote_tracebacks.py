"""Remote tracebacks show the user's own lines, whatever the pickled code's file is called.

cloudpickle (3.1.3 and later) renames the file of every code object it ships by value to
``<dynamic-code>``; the kernel maps frames back to its own cells (aiaas_jupyter.tracebacks).
"""
from __future__ import annotations

import linecache
import traceback

import cloudpickle
import pytest
from IPython.utils.capture import capture_output

from aiaas_jupyter.errors import JobFailedError
from aiaas_jupyter.tracebacks import CodeIndex, format_remote_traceback, index_of

CELL = ("class Scaler:\n"
        "    def __init__(self, k):\n"
        "        self.k = k\n"
        "\n"
        "    def apply(self, x):\n"
        "        y = x * self.k\n"
        "        return 1 / (y - y)  # the user's failing line\n"
        "\n"
        "def helper(x):\n"
        "    return [v + 1 for v in x]\n")


def _cell(name: str, source: str) -> dict:
    """Run *source* as a notebook cell would be: compiled under a linecache-known name in __main__."""
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    ns = {"__name__": "__main__"}
    exec(compile(source, name, "exec"), ns)
    return ns


def _raise_shipped(fn, *args):
    """Call a cloudpickle round-tripped copy of *fn* (what a worker runs); return (exc, tb)."""
    # the test unpickles only what it pickled itself one line up: it plays the worker, not a peer
    shipped = cloudpickle.loads(cloudpickle.dumps(fn))
    try:
        shipped(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to capture it
        return exc, exc.__traceback__
    raise AssertionError("did not raise")


def test_shipped_code_loses_its_file_and_the_index_puts_it_back():
    ns = _cell("<cell-7>", CELL)
    obj = ns["Scaler"](3)
    # indexed at submission, as the kernel does (an in-process cloudpickle round trip re-uses the
    # tracked class and rebinds its methods to the unpickled code, which a kernel never does)
    index = index_of(obj)
    exc, tb = _raise_shipped(obj.apply, 2)
    plain = "".join(traceback.format_exception(type(exc), exc, tb))
    # what the user got before: no file of the kernel's, so no line
    assert "<cell-7>" not in plain and "the user's failing line" not in plain
    text = format_remote_traceback(exc, tb, index)
    assert 'File "<cell-7>", line 7, in apply' in text
    assert "return 1 / (y - y)  # the user's failing line" in text
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")


def test_index_covers_nested_code_closures_and_containers():
    ns = _cell("<cell-8>", CELL + "\ndef outer():\n    def inner(v):\n        return v.missing\n    return inner\n")
    inner = ns["outer"]()
    index = index_of({"steps": [("a", ns["Scaler"](1))]}, [inner])
    assert index.locate("apply", 7) == "<cell-8>"
    assert index.locate("inner", 14) == "<cell-8>"
    assert index.locate("<listcomp>", 10) is None or index.locate("helper", 10) is None  # helper not shipped
    assert index.locate("apply", 99) is None and index.locate("nope", 7) is None


def test_ambiguous_or_library_frames_are_left_alone():
    a, b = _cell("<cell-a>", CELL), _cell("<cell-b>", CELL)
    index = index_of(a["Scaler"], b["Scaler"])
    assert index.locate("apply", 7) is None  # the same function in two cells: no guess
    # library code travels by reference: its frames already name real files, nothing indexed
    from sklearn.ensemble import RandomForestClassifier

    assert len(CodeIndex().add_objects(RandomForestClassifier())) == 0


def test_a_class_from_an_earlier_notebook_cell_shows_its_line_in_a_failed_job(shell, aiaas, iris_frame):
    """The model's class comes from an ordinary cell (IPython's own file name), the job from %%aiaas train."""
    shell.user_ns["iris"] = iris_frame
    shell.run_cell("from sklearn.base import BaseEstimator, ClassifierMixin\n"
                   "class Fragile(ClassifierMixin, BaseEstimator):\n"
                   "    def fit(self, X, y):\n"
                   "        return self.check(X)\n"
                   "    def check(self, X):\n"
                   "        raise ValueError(f'{len(X)} rows is too few for Fragile')\n"
                   "    def predict(self, X):\n"
                   "        return X\n")
    with pytest.raises(JobFailedError) as info:
        with capture_output():
            shell.run_cell_magic("aiaas", "train --data iris --target target --name fragile --block",
                                 "model = Fragile()")
    tb = info.value.remote_traceback
    assert "raise ValueError(f'{len(X)} rows is too few for Fragile')" in tb
    assert "return self.check(X)" in tb and "<dynamic-code>" not in tb
    assert "120 rows is too few for Fragile" in str(info.value)


def test_a_notebook_model_trained_from_the_form_shows_its_line(shell, aiaas, iris_frame):
    from aiaas_jupyter.widgets import TrainForm

    shell.user_ns["iris"] = iris_frame
    shell.run_cell("from sklearn.base import BaseEstimator, ClassifierMixin\n"
                   "class FormFragile(ClassifierMixin, BaseEstimator):\n"
                   "    def fit(self, X, y):\n"
                   "        raise RuntimeError('form model refuses to fit')\n"
                   "    def predict(self, X):\n"
                   "        return X\n"
                   "ff = FormFragile()\n")
    form = TrainForm(client=aiaas, namespace=shell.user_ns)
    form.data.value = "iris"
    form.model.value = "variable"
    form.variable.value = "ff"
    form.name.value = "form-fragile"
    form.train_button.click()
    with pytest.raises(JobFailedError) as info:
        form.job.result(timeout=120)
    assert "raise RuntimeError('form model refuses to fit')" in info.value.remote_traceback
    assert form.job.remote_traceback == info.value.remote_traceback
    with pytest.raises(Exception):
        aiaas.model("form-fragile")  # nothing registered
