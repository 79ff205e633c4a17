"""Every example of ``%aiaas --help`` and of each ``%aiaas SUBCOMMAND --help`` runs as written.

The examples are read from the help texts themselves (not copied here), in the order a reader
meets them — the main help, then each subcommand's — and run one after the other as cells of
one real IPython shell with the extension loaded: a real embedded LocalCluster
(``%aiaas connect``), a real model server (``%aiaas deploy``), the built-in embedding model.

What a reader brings along is prepared first, as a user would have it: CSV files under
``data/`` (iris measurements with a ``label`` column), ``rows.csv``, a DataFrame ``X_test``,
a DataFrame ``reviews`` with a ``text`` column, and ``OPENAI_API_KEY`` in the environment. Two addresses cannot be reached from a test, so
only they are rewritten, nothing else in the line: ``tcp://10.0.0.5:8786`` becomes the
address of a real LocalCluster started here, and ``https://api.openai.com/v1`` the loopback
URL of the OpenAI-compatible stand-in of tests/support/standin_server.py (which answers for the
example's model name).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re

import numpy as np
import pandas as pd
import pytest

from aiaas_jupyter.magics.parser import build_parser
from support.standin_server import running

pytestmark = pytest.mark.slow

SECRET = "sk-help-examples-8d1f0a2b3c4e5f6a"
UNREACHABLE = {"openai": "https://api.openai.com/v1", "scheduler": "tcp://10.0.0.5:8786"}


@dataclasses.dataclass(frozen=True)
class Example:
    where: str      # "%aiaas --help" or "%aiaas deploy --help"
    source: str     # the cell: a %aiaas line, or a %%aiaas line and its cell

    @property
    def label(self) -> str:
        return f"{self.where}: {self.source.splitlines()[0].split('  #')[0].strip()}"


def _parsers(parser: argparse.ArgumentParser, prog: str = "%aiaas"):
    """``(prog, parser)`` for the parser and every sub-parser below it, in help order."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def examples_in(text: str, where: str) -> list[Example]:
    """The indented lines under an ``examples`` heading: a ``%aiaas`` line is one example; a
    ``%%aiaas`` line takes the lines below it (up to a blank or the next ``%`` line) as its cell."""
    found, lines = [], text.splitlines()
    inside, i = False, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("examples"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and line.strip().startswith("%"):
            source = [line.strip()]
            if line.strip().startswith("%%"):
                while i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1].strip().startswith("%"):
                    i += 1
                    source.append(lines[i].strip())
            found.append(Example(where, "\n".join(source)))
        i += 1
    return found


def all_examples() -> list[Example]:
    out = []
    for prog, parser in _parsers(build_parser()):
        out += examples_in(parser.format_help(), f"{prog} --help")
    return out


EXAMPLES = all_examples()


def test_the_help_texts_have_runnable_examples():
    wheres = {e.where for e in EXAMPLES}
    assert {"%aiaas --help", "%aiaas deploy --help", "%aiaas endpoints --help", "%aiaas predict --help",
            "%aiaas embed --help", "%aiaas ask --help"} <= wheres
    cells = [e for e in EXAMPLES if e.source.startswith("%%")]
    assert cells and all(len(e.source.splitlines()) > 1 for e in cells), "a %%aiaas example without its cell"
    assert any("all-minilm-l6-v2" in e.source and "embed" in e.source for e in EXAMPLES)
    assert len(EXAMPLES) >= 30
    assert len({e.label for e in EXAMPLES}) == len(EXAMPLES), "two examples of one help text read the same"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Run every example in order; ``{label: (ok, error)}`` plus the shell's namespace."""
    import pandas as pd
    from distributed import LocalCluster
    from IPython.core.interactiveshell import InteractiveShell
    from sklearn.datasets import load_iris

    from aiaas_jupyter.client import AiaasClient
    from aiaas_jupyter.magics import AiaasMagics
    from aiaas_jupyter.serving import state

    work = tmp_path_factory.mktemp("help-examples")
    home = work / "home"
    iris = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    (work / "data").mkdir()
    iris.iloc[::2].to_csv(work / "data" / "iris-1.csv", index=False)
    iris.iloc[1::2].to_csv(work / "data" / "iris-2.csv", index=False)
    features = iris.drop(columns="label")
    features.iloc[:3].to_csv(work / "rows.csv", index=False)

    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("OPENAI_API_KEY", SECRET)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiaas_jupyter")
    previous = shell.magics_manager.registry.get("AiaasMagics")
    client = AiaasClient(home)
    shell.register_magics(AiaasMagics(shell, client=client))
    shell.user_ns["X_test"] = features.sample(20, random_state=0)
    shell.user_ns["reviews"] = pd.DataFrame({"text": ["a wonderful film", "dull and long"], "stars": [5, 1]})
    results: dict[str, tuple[bool, str]] = {}
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with running(SECRET) as standin:
            standin.chat_models.add("gpt-4o-mini")
            for example in EXAMPLES:
                source = example.source.replace(UNREACHABLE["openai"], f"{standin.url}/v1")
                source = source.replace(UNREACHABLE["scheduler"], cluster.scheduler_address)
                result = shell.run_cell(source)
                error = result.error_before_exec or result.error_in_exec
                results[example.label] = (error is None, f"{type(error).__name__}: {error}" if error else "")
            namespace = {k: shell.user_ns.get(k) for k in ("preds", "vectors", "answer", "ep", "clean", "scored",
                                                           "review_vectors")}
            yield {"results": results, "ns": namespace, "client": client, "home": home, "standin": standin,
                   "n_rows": len(iris), "work": work}
    finally:
        client.disconnect()
        state.stop_server(home)
        cluster.close()
        if previous is not None:
            shell.register_magics(previous)
        for name in ("X_test", "reviews", "scored", "review_vectors", "preds", "vectors", "answer", "ep", "clean", "df",
                     "model"):
            shell.user_ns.pop(name, None)
        mp.undo()
    assert state.find_server(home) is None


@pytest.mark.parametrize("label", [e.label for e in EXAMPLES])
def test_example_runs_as_written(ran, label):
    ok, error = ran["results"][label]
    assert ok, f"{label!r} failed: {error}"


def test_the_examples_did_what_they_say(ran):
    """Not only no error: the values the examples bind are right."""
    from aiaas_jupyter.serving_client.access import Access

    ns, client = ran["ns"], ran["client"]
    assert len(ns["clean"]) == ran["n_rows"]
    mv = client.registry.get("iris-rf@prod")
    assert mv.version == 1 and mv.metrics["accuracy"] > 0.8
    assert ns["preds"].shape == (20,) and set(ns["preds"].tolist()) <= {0, 1, 2}
    assert ns["vectors"].shape == (2, 384) and np.allclose(np.linalg.norm(ns["vectors"], axis=1), 1, atol=1e-3)
    scored = ns["scored"].compute()  # batch inference on the workers: the same labels as the deployment
    assert len(scored) == 20 and set(scored.prediction) <= {0, 1, 2} and scored.filter(like="proba_").shape[1] == 3
    assert len(pd.read_parquet(ran["work"] / "scored.parquet")) == ran["n_rows"]
    assert ns["review_vectors"].compute().shape == (2, 384)
    assert ns["answer"] == "**echo:** Write one sentence about gradient boosting."
    assert isinstance(ns["ep"], Access) and ns["ep"].predict_url.endswith("/predict/iris-rf")
    assert ran["standin"].seen_auth[-1] == f"Bearer {SECRET}"
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", client.dask.scheduler.address)
