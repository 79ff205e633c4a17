"""The adaptive batcher and the runtimes, in-process (no HTTP): batching, error isolation,
no delay for a lone request, and runtime input conventions."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from aiaas_jupyter.serving.batching import Batcher
from aiaas_jupyter.serving.runtime import InputError


class Recorder:
    """A 'model' that doubles its rows, fails on a negative value, and records each call."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[int] = []
        self.delay = delay
        self.lock = threading.Lock()

    def run(self, X, want):
        with self.lock:
            self.calls.append(len(X))
        time.sleep(self.delay)
        if (X < 0).any():
            raise ValueError("negative input")
        out = {"predict": X[:, 0] * 2}
        if "predict_proba" in want:
            out["predict_proba"] = np.column_stack([X[:, 0], -X[:, 0]])
        return out

    @staticmethod
    def concat(parts):
        return np.concatenate(parts)


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_and_split_back():
    rec = Recorder(delay=0.02)
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=0)

    async def main():
        parts = [np.full((i % 3 + 1, 1), float(i)) for i in range(40)]
        outs = await asyncio.gather(*(b.submit(p, len(p), frozenset({"predict"})) for p in parts))
        return parts, outs

    parts, outs = _run(main())
    for p, o in zip(parts, outs):
        assert o["predict"].tolist() == (p[:, 0] * 2).tolist()
    assert sum(rec.calls) == sum(len(p) for p in parts)
    assert max(rec.calls) > 3 and len(rec.calls) < 40  # really batched
    stats = b.stats()
    assert stats["requests"] == 40 and stats["max_batch_requests"] > 1 and stats["rows"] == sum(rec.calls)


def test_max_batch_size_is_respected():
    rec = Recorder(delay=0.01)
    b = Batcher(rec.run, rec.concat, max_batch_size=8, max_wait_ms=0)

    async def main():
        return await asyncio.gather(*(b.submit(np.ones((1, 1)), 1, frozenset()) for _ in range(50)))

    assert len(_run(main())) == 50
    assert max(rec.calls) <= 8 and sum(rec.calls) == 50


def test_an_error_reaches_only_its_own_request():
    rec = Recorder(delay=0.01)
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=0)

    async def main():
        values = [1.0, 2.0, -1.0, 3.0, 4.0, -5.0, 6.0]
        return await asyncio.gather(*(b.submit(np.array([[v]]), 1, frozenset({"predict"})) for v in values),
                                    return_exceptions=True)

    results = _run(main())
    assert [isinstance(r, ValueError) for r in results] == [False, False, True, False, False, True, False]
    assert [r["predict"].tolist() for r in results if isinstance(r, dict)] == [[2.0], [4.0], [6.0], [8.0], [12.0]]


def test_outputs_union_and_selection():
    rec = Recorder()
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=0)

    async def main():
        return await asyncio.gather(b.submit(np.array([[1.0]]), 1, frozenset({"predict"})),
                                    b.submit(np.array([[2.0]]), 1, frozenset({"predict", "predict_proba"})))

    a, c = _run(main())
    assert c["predict_proba"].tolist() == [[2.0, -2.0]] and a["predict"].tolist() == [2.0]


def test_a_lone_request_is_not_delayed_by_max_wait():
    rec = Recorder()
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=2000)

    async def main():
        t0 = time.perf_counter()
        await b.submit(np.ones((1, 1)), 1, frozenset())
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        await b.submit(np.ones((1, 1)), 1, frozenset())
        return first, time.perf_counter() - t0

    first, second = _run(main())
    assert first < 0.5 and second < 0.5  # a 2 s wait would show


@pytest.mark.parametrize("max_wait_ms, calls", [(0, [1, 5, 5]), (300, [1, 10])])
def test_stragglers_join_within_max_wait(max_wait_ms, calls):
    """Requests queued while a batch runs wait up to max_wait (from the oldest arrival) for
    later ones; without a wait they go as soon as the model is free."""
    rec = Recorder(delay=0.1)
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=max_wait_ms)

    async def main():
        first = asyncio.ensure_future(b.submit(np.ones((1, 1)), 1, frozenset()))
        await asyncio.sleep(0.05)  # the first batch (1 request) is running until t=0.1
        rest = [asyncio.ensure_future(b.submit(np.ones((1, 1)), 1, frozenset())) for _ in range(5)]
        await asyncio.sleep(0.1)   # t=0.15: the second batch started at t=0.1 unless waiting
        rest += [asyncio.ensure_future(b.submit(np.ones((1, 1)), 1, frozenset())) for _ in range(5)]
        await asyncio.gather(first, *rest)

    _run(main())
    assert rec.calls == calls


def test_a_cancelled_request_is_skipped():
    rec = Recorder(delay=0.05)
    b = Batcher(rec.run, rec.concat, max_batch_size=64, max_wait_ms=0)

    async def main():
        first = asyncio.ensure_future(b.submit(np.ones((1, 1)), 1, frozenset()))
        await asyncio.sleep(0.01)
        doomed = asyncio.ensure_future(b.submit(np.ones((3, 1)), 3, frozenset()))
        kept = asyncio.ensure_future(b.submit(np.ones((2, 1)), 2, frozenset()))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.gather(first, kept)

    _run(main())
    assert rec.calls == [1, 2]


# ------------------------------------------------------------------ runtimes
@pytest.fixture(scope="module")
def iris_runtime():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from aiaas_jupyter.serving.runtime import TabularRuntime

    df = load_iris(as_frame=True).frame
    X = df.drop(columns="target")
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, df["target"])
    return TabularRuntime(model, {"task": "classification"}), model, X


def test_tabular_runtime_inputs(iris_runtime):
    rt, model, X = iris_runtime
    want = model.predict(X.iloc[:5])
    arr = X.iloc[:5].to_numpy()
    part, n = rt.from_tensors([("input", arr)])
    assert n == 5 and rt.run(part, frozenset())["predict"].tolist() == want.tolist()
    named = [(c, X[c].to_numpy()[:5]) for c in reversed(X.columns)]  # any order: the model's is used
    part, n = rt.from_tensors(named)
    assert rt.run(part, frozenset())["predict"].tolist() == want.tolist()
    part, n = rt.from_records(X.iloc[:5].to_dict(orient="records"))
    assert rt.run(part, frozenset())["predict"].tolist() == want.tolist()
    mixed = rt.concat([rt.from_tensors([("input", arr[:2])])[0], rt.from_tensors(
        [(c, X[c].to_numpy()[2:5]) for c in X.columns])[0]])
    assert rt.run(mixed, frozenset())["predict"].tolist() == want.tolist()
    with pytest.raises(InputError, match="expected 4 features per row, got 3"):
        rt.from_tensors([("input", arr[:, :3])])
    with pytest.raises(InputError, match="missing"):
        rt.from_tensors(named[:3])
    with pytest.raises(InputError, match="lacks feature"):
        rt.from_records([{"sepal length (cm)": 1.0}])
    with pytest.raises(InputError, match="unknown output"):
        rt.check_outputs(["nope"])


def test_text_detection():
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    from aiaas_jupyter.artifacts.text_model import takes_text

    assert takes_text(make_pipeline(TfidfVectorizer(), LogisticRegression()), {}) == (True, None)
    ct = Pipeline([("ct", ColumnTransformer([("t", TfidfVectorizer(), "review")])), ("lr", LogisticRegression())])
    assert takes_text(ct, {}) == (True, "review")
    assert takes_text(make_pipeline(StandardScaler(), LogisticRegression()), {}) == (False, None)
    assert takes_text(LogisticRegression(), {"input_kind": "text", "feature_names": ["t"]}) == (True, "t")


# ------------------------------------------------------------------ the app, in-process
def test_unexpected_errors_are_generic_500s(caplog):
    """A bug (not a bad request) is logged with its traceback and answered with a generic 500."""
    from starlette.testclient import TestClient

    from aiaas_jupyter.serving.app import create_app
    from aiaas_jupyter.serving.deployments import Deployments, LoadedModel
    from aiaas_jupyter.serving.runtime import Runtime

    class Broken(Runtime):
        def from_tensors(self, tensors):
            raise RuntimeError("secret internal detail")

    deps = Deployments("/nonexistent")
    rt = Broken()
    deps.live["broken"] = LoadedModel("broken", "broken:1", 1, "sklearn", rt, Batcher(rt.run, rt.concat))
    app = create_app(deps, "tok", timeout_s=5)
    with TestClient(app, headers={"Authorization": "Bearer tok"}) as client:
        r = client.post("/v2/models/broken/infer",
                        json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})
        assert r.status_code == 500 and r.json() == {"error": "internal server error (logged in the server log)"}
        assert "secret" not in r.text
        assert client.get("/v2/health/ready").json() == {"ready": True}
    assert "secret internal detail" in caplog.text


def test_timeout_is_504():
    from starlette.testclient import TestClient

    from aiaas_jupyter.serving.app import create_app
    from aiaas_jupyter.serving.deployments import Deployments, LoadedModel
    from aiaas_jupyter.serving.runtime import Runtime

    class Slow(Runtime):
        def from_tensors(self, tensors):
            return tensors[0][1], len(tensors[0][1])

        def concat(self, parts):
            return np.concatenate(parts)

        def run(self, X, want):
            time.sleep(1.0)
            return {"predict": X}

    deps = Deployments("/nonexistent")
    rt = Slow()
    deps.live["slow"] = LoadedModel("slow", "slow:1", 1, "sklearn", rt, Batcher(rt.run, rt.concat))
    with TestClient(create_app(deps, "tok", timeout_s=0.2), headers={"Authorization": "Bearer tok"}) as client:
        t0 = time.perf_counter()
        r = client.post("/v2/models/slow/infer",
                        json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})
        assert r.status_code == 504 and "longer than 0.2 s" in r.json()["error"]
        assert time.perf_counter() - t0 < 0.9


def test_request_after_close_is_still_answered():
    """A request that found the deployment just before a redeploy replaced (and closed) it
    still gets its answer — it used to wait for the 30 s timeout (seen as 504s under load)."""
    rec = Recorder()
    b = Batcher(rec.run, rec.concat, max_batch_size=8, max_wait_ms=0)

    async def main():
        first = await b.submit(np.array([[1.0]]), 1, frozenset())
        b.close()  # idle: its thread is shut down at once
        late = await asyncio.wait_for(b.submit(np.array([[3.0]]), 1, frozenset()), timeout=5)
        with pytest.raises(ValueError, match="negative input"):
            await asyncio.wait_for(b.submit(np.array([[-1.0]]), 1, frozenset()), timeout=5)
        return first, late

    first, late = _run(main())
    assert first["predict"].tolist() == [2.0] and late["predict"].tolist() == [6.0]
    assert rec.calls == [1, 1, 1]
