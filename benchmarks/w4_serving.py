"""W4 — serving: our model server vs MLServer, same text model, same load client, same run.

The model is a TF-IDF + LogisticRegression pipeline trained (seeded) with the project's
trainer on a synthetic two-class text set and registered (skops). *Ours* is the project's
model server (``aiaas_jupyter.serving``), started with ``ensure_server`` on a throwaway registry
home, the model deployed through the admin API. *Baseline* is MLServer with
``mlserver-sklearn`` (from ``.venv-mlserver``, see scripts/mlserver_env.sh) serving the *same
fitted* vectorizer and classifier, written as the ``model.joblib`` its runtime loads (the
peer's own format, used only here), with its default settings (``parallel_workers: 0``, see
toolchain.md). A second MLServer with its adaptive batching on (``MLSERVER_BATCHING``) is
measured too, since ours batches by default: ``ratio_vs_batched`` compares with that one.

Two more sides answer issue 15's "more than one core": *ours_workers* is the same server with
one serving process per core (``aiaas.server.workers``, i.e. ``aiaas serve --workers N``), and
*ceiling* is that same N-process server and client with the built-in ``echo`` model, which does
nothing (each text comes back as its prediction): what the transport allows. The record carries
``workers_vs_one`` and ``workers_vs_ceiling`` (goal ≥ 0.8).

All are asked the same thing: Open Inference Protocol v2 REST, ``POST /v2/models/NAME/infer``
with one BYTES input of shape [1] (one sentence per request), 64 concurrent clients over
keep-alive connections on loopback, the bearer header sent to every server (MLServer ignores
it) so all receive the same bytes. The load client is one asyncio program (``python
w4_serving.py loadgen CONFIG``, a separate process, uvloop when installed) for every server:
64 connections on asyncio streams with pre-built request bytes. httpx was tried first and
dropped: it spent ~4 ms of CPU per request, so on 2 cores the client, not the servers, set the
pace (~200 req/s for every server). Each side gets a warm-up, then the timed requests are split
into rounds run in ABC / CBA order. The ratio is what means something, not the figures alone.

Every answer's status is checked, a sample (every 7th) is parsed and compared with the
in-process model's predictions. The JSON line reports throughput (req/s, ``better: "higher"``),
p50/p99 latency of every side, the error counts (must be 0) and the client's CPU share.

Run alone: ``python benchmarks/w4_serving.py [--full] [--requests N]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as c

REQUESTS = {"quick": 2_000, "full": 50_000}
CONCURRENCY = 64
ROUNDS = 2                 # timed rounds per side; sides run in ABC order, then CBA, ...
SAMPLE_EVERY = 7           # every 7th timed response is kept and checked against the model
MODEL_NAME = "w4-sentiment"
ECHO = "echo"              # the built-in model that does nothing (builtin:echo): the ceiling side
TRAIN_ROWS, SEED = 2_000, 0
N_TEXTS = 1_000            # distinct request sentences (request i sends text i % N_TEXTS)
#: MLServer's adaptive batching for the second baseline (off by default in MLServer; ours batches)
MLSERVER_BATCHING = {"max_batch_size": CONCURRENCY, "max_batch_time": 0.005}
MLSERVER_VENV = c.REPO_ROOT / ".venv-mlserver"
MLSERVER_SETUP = c.REPO_ROOT / "scripts" / "mlserver_env.sh"

POSITIVE = ("good great excellent love wonderful happy superb enjoyable brilliant pleasant "
            "delightful charming fun moving clever").split()
NEGATIVE = ("bad awful terrible hate boring sad horrible dull weak poor tedious messy "
            "annoying clumsy bland").split()
NEUTRAL = ("the a this that film movie plot story actor actress scene music ending script "
           "director was is it and very quite really rather somewhat overall").split()


# --------------------------------------------------------------------------- data & model
def make_texts(n: int, seed: int = SEED):
    """A seeded synthetic sentiment set: 6-11 neutral words plus 1-3 sentiment words, and
    15 % of the rows with one word of the other side mixed in (so it is not trivially separable).
    Returns a DataFrame with columns ``text`` and ``label`` ("negative"/"positive")."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        positive = bool(rng.integers(2))
        own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
        words = list(rng.choice(NEUTRAL, rng.integers(6, 12))) + list(rng.choice(own, rng.integers(1, 4)))
        if rng.random() < 0.15:
            words.append(str(rng.choice(other)))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return pd.DataFrame({"text": texts, "label": labels})


def make_pipeline(column: str = "text"):
    """TF-IDF (word 1-2 grams) + LogisticRegression, reading the ``column`` of a DataFrame.

    The project's trainer hands the model the feature columns as a DataFrame, so the
    vectorizer sits in a one-column ColumnTransformer; our server recognises that shape and
    serves it with one BYTES input (see aiaas_jupyter/artifacts/text_model.py ``takes_text``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("tfidf", ColumnTransformer([("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                                                   column)])),
                     ("clf", LogisticRegression(max_iter=1000))])


def as_text_pipeline(model):
    """The same fitted vectorizer and classifier as a plain ``Pipeline`` that takes a list of
    strings (what MLServer's scikit-learn runtime passes for a BYTES input): no refit."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = model.steps[0][1]
    if not isinstance(first, ColumnTransformer):
        return model
    (_, vectorizer, _), = first.transformers_[:1]
    return Pipeline([("tfidf", vectorizer), *model.steps[1:]])


def predict_texts(model, texts: list[str]):
    """The in-process reference answers for ``texts`` (whichever input form ``model`` takes)."""
    return as_text_pipeline(model).predict(list(texts))


def train_and_register(home: str | Path, name: str = MODEL_NAME, rows: int = TRAIN_ROWS, also=()):
    """Train the pipeline with the project's trainer (as a Dask worker would) and register it
    as the kernel does (``AiaasClient._register``), in *home* and in each home of *also*.
    Returns (ModelVersion, fitted pipeline), the pipeline loaded back from the registered skops
    artifact: the exact model served."""
    from aiaas_jupyter.registry import Registry
    from aiaas_jupyter.artifacts.codec import SKOPS_FILE, load_sklearn
    from aiaas_jupyter.training import TrainSpec, run_training

    df = make_texts(rows)
    res = run_training(TrainSpec(model=make_pipeline(), target="label", seed=SEED), df, lambda event: None)
    extra = dict(res.extra)
    extra.update(n_train=res.n_train, n_test=res.n_test, device=res.device, history=res.history,
                 target="label")
    for h in (*also, home):
        version = Registry(h).register(
            name, framework=res.framework, artifacts=res.artifacts, params=res.params,
            metrics=res.metrics, library_versions=res.library_versions,
            data_fingerprint=res.data_fingerprint, source="benchmarks/w4_serving.py", job_id=None,
            extra=extra)
    return version, load_sklearn(res.artifacts[SKOPS_FILE])


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_mlserver_env() -> Path:
    """``.venv-mlserver`` (created by scripts/mlserver_env.sh, which ``dev.sh test`` runs)."""
    exe = MLSERVER_VENV / "bin" / "mlserver"
    if not exe.exists():
        c.log("W4: .venv-mlserver missing; running scripts/mlserver_env.sh (~40 s)")
        subprocess.run(["bash", str(MLSERVER_SETUP)], check=True, stdout=subprocess.DEVNULL)
    return exe


def write_mlserver_repo(root: Path, name: str, model, http_port: int, grpc_port: int,
                        metrics_port: int, batching: dict | None = None) -> Path:
    """An MLServer model repository: settings.json + NAME/{model.joblib, model-settings.json}.

    joblib (pickle) is MLServer's own format for scikit-learn models; it is written here for
    the peer only, from the model this process loaded from our safe skops artifact.
    ``batching`` (``max_batch_size``, ``max_batch_time``) turns on MLServer's adaptive batching."""
    import joblib

    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
        "metrics_port": metrics_port, "metrics_endpoint": None,
        # MLServer 1.7.1's parallel workers crash with the current uvloop (toolchain.md)
        "parallel_workers": 0, "debug": False, "load_models_at_startup": True}))
    d = root / name
    d.mkdir(exist_ok=True)
    joblib.dump(model, d / "model.joblib")
    (d / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"}, **(batching or {})}))
    return root


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s\n{tail}")


@contextlib.contextmanager
def mlserver(model, name: str, workdir: Path, timeout: float = 120.0, batching: dict | None = None,
             tag: str = "mlserver"):
    """MLServer serving ``model`` as ``name`` on free loopback ports; yields its base URL."""
    exe = ensure_mlserver_env()
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    repo = write_mlserver_repo(workdir / f"{tag}-models", name, model, http_port, grpc_port,
                               metrics_port, batching)
    log = workdir / f"{tag}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(MLSERVER_METRICS_ENDPOINT="", PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(exe), "start", str(repo)], cwd=repo, stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_http(f"{url}/v2/models/{name}/ready", timeout, proc, log)
        yield url
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group we started (MLServer forks helpers), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def our_server(home: str | Path, ref: str, name: str, workers: int = 1):
    """Our server on ``home`` (``ensure_server``, with ``workers`` serving processes), ``ref``
    deployed as ``name`` via the admin API; yields (base URL, bearer token). Stopped afterwards."""
    import dask.config
    import httpx

    from aiaas_jupyter.serving import state

    with dask.config.set({"aiaas.server.workers": workers}):
        info = state.ensure_server(home)
    try:
        token = state.read_token(home)
        r = httpx.post(f"{info.url}/admin/deployments", json={"name": name, "ref": ref},
                       headers={"Authorization": f"Bearer {token}"}, timeout=120)
        if r.status_code != 200:
            raise RuntimeError(f"POST /admin/deployments → {r.status_code}: {r.text[:500]}")
        yield info.url, token
    finally:
        state.stop_server(home)


def input_name(url: str, name: str, headers: dict) -> str:
    """The model's (first) input name from its OIP v2 metadata; "text" when it declares none."""
    import httpx

    r = httpx.get(f"{url}/v2/models/{name}", headers=headers, timeout=30)
    r.raise_for_status()
    inputs = r.json().get("inputs") or []
    return inputs[0]["name"] if inputs else "text"


# --------------------------------------------------------------------------- load client
def infer_body(input_name: str, text: str) -> bytes:
    return json.dumps({"inputs": [{"name": input_name, "shape": [1], "datatype": "BYTES",
                                   "data": [text]}]}).encode()


def _predict_of(body: bytes):
    """The single label of an OIP v2 answer (raises on anything else)."""
    outs = json.loads(body)["outputs"]
    out = next(o for o in outs if o["name"] == "predict")
    if len(out["data"]) != 1:
        raise ValueError(f"expected one prediction, got {out['data'][:5]}")
    return out["data"][0]


class _RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the request bytes are built once,
    the answer is read by Content-Length. About a tenth of httpx's CPU per request, which
    matters when the client shares 2 cores with the server under test."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        import asyncio

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                raise RuntimeError("chunked answers are not supported by the raw load client")
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True  # read this answer, reconnect for the next
        if length is None:
            raise RuntimeError("answer without Content-Length")
        body = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def loadgen_main(config_path: str) -> int:
    """The load client (its own process): ``warmup`` then ``n`` requests over ``concurrency``
    keep-alive connections; prints one JSON object with timings, errors and sampled answers.

    Every answer's status is checked; every ``sample_every``-th timed answer is parsed and kept
    (text index, label) for the caller to compare with the model, and a malformed one counts as
    an error. ``client`` is ``raw`` (asyncio streams, default) or ``httpx``."""
    import asyncio
    import urllib.parse

    cfg = json.loads(Path(config_path).read_text())
    texts, n, warmup, conc = cfg["texts"], cfg["n"], cfg["warmup"], cfg["concurrency"]
    kind = cfg.get("client", "raw")
    headers = {"Content-Type": "application/json", **cfg.get("headers", {})}
    bodies = [infer_body(cfg["input_name"], t) for t in texts]
    sample_every = cfg.get("sample_every", SAMPLE_EVERY)
    url = urllib.parse.urlsplit(cfg["url"])
    host, port = url.hostname, url.port or 80
    head = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())).encode()
    raws = [head + f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]

    async def phase(send, count: int, record: bool):
        latencies: list[float] = []
        errors: list[str] = []
        samples: list[tuple[int, object]] = []  # (text index, answer)
        nxt = 0

        async def worker(conn):
            nonlocal nxt
            while nxt < count:
                i = nxt
                nxt += 1
                t0 = time.perf_counter()
                try:
                    status, body = await send(conn, i % len(bodies))
                    dt = time.perf_counter() - t0
                    if status != 200:
                        errors.append(f"{status}: {body[:200]!r}")
                        continue
                    if record and i % sample_every == 0:
                        samples.append((i % len(bodies), _predict_of(body)))
                except Exception as exc:  # noqa: BLE001 - count it, keep loading
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    if kind == "raw":
                        conn.close()  # a fresh connection for the next request
                    continue
                if record:
                    latencies.append(dt)

        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(conn) for conn in conns))
        return time.perf_counter() - t0, time.process_time() - cpu0, latencies, errors, samples

    async def main():
        nonlocal conns
        if kind == "httpx":
            import httpx

            limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
            client = httpx.AsyncClient(limits=limits, timeout=60.0)
            conns = [client] * conc

            async def send(c, j):
                r = await c.post(cfg["url"], content=bodies[j], headers=headers)
                return r.status_code, r.content
        else:
            client = None
            conns = [_RawConnection(host, port) for _ in range(conc)]

            async def send(c, j):
                return await asyncio.wait_for(c.request(raws[j]), 60.0)
        try:
            _, _, _, w_errors, _ = await phase(send, warmup, record=False)
            seconds, cpu, lat, errors, samples = await phase(send, n, record=True)
        finally:
            if client is not None:
                await client.aclose()
            else:
                for c in conns:
                    c.close()
        return {"n": n, "seconds": seconds, "client_cpu_s": cpu, "rps": n / seconds, "latencies": lat,
                "errors": len(errors) + len(w_errors), "error_examples": (w_errors + errors)[:5],
                "samples": samples, "client": kind}

    conns: list = []
    try:
        import uvloop

        out = uvloop.run(main())
        out["loop"] = "uvloop"
    except ImportError:
        out = asyncio.run(main())
        out["loop"] = "asyncio"
    # the report (with every latency) goes to a file: not through a pipe that other output shares
    tmp = Path(cfg["out"] + ".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(cfg["out"])
    return 0


def run_load(url: str, name: str, headers: dict, in_name: str, texts: list[str], n: int,
             warmup: int, workdir: Path, tag: str, client: str = "raw",
             concurrency: int = CONCURRENCY) -> dict:
    """One load-client process against one server; returns its report."""
    cfg, out = workdir / f"load-{tag}.json", workdir / f"report-{tag}.json"
    cfg.write_text(json.dumps({"url": f"{url}/v2/models/{name}/infer", "headers": headers,
                               "input_name": in_name, "texts": texts, "n": n, "warmup": warmup,
                               "concurrency": concurrency, "sample_every": SAMPLE_EVERY,
                               "client": client, "out": str(out)}))
    proc = subprocess.run([sys.executable, __file__, "loadgen", str(cfg)], capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"load client failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    if proc.stdout.strip() or proc.stderr.strip():
        c.log(f"W4 load client ({tag}) said: {(proc.stdout + proc.stderr).strip()[-1000:]}")
    return json.loads(out.read_text())


# --------------------------------------------------------------------------- the workload
def _merge(reports: list[dict]) -> dict:
    lat = [x for r in reports for x in r["latencies"]]
    seconds = sum(r["seconds"] for r in reports)
    n = sum(r["n"] for r in reports)
    samples = [tuple(pair) for r in reports for pair in r["samples"]]
    return {"n": n, "seconds": seconds, "rps": n / seconds, "p50_ms": 1e3 * c.percentile(lat, 50),
            "p99_ms": 1e3 * c.percentile(lat, 99), "mean_ms": 1e3 * sum(lat) / max(len(lat), 1),
            "errors": sum(r["errors"] for r in reports),
            "error_examples": [e for r in reports for e in r["error_examples"]][:5],
            "samples": samples, "rounds_rps": [r["rps"] for r in reports],
            "client_cpu_share": sum(r["client_cpu_s"] for r in reports) / seconds}


def _check_samples(side: str, samples: list[tuple[int, object]], texts: list[str], model) -> int:
    """Compare the sampled answers with the in-process model (*model* None: the echo model,
    whose answer is the text itself); returns how many were checked."""
    if not samples:
        raise AssertionError(f"W4 {side}: no answer was sampled")
    asked = [texts[i] for i, _ in samples]
    expected = asked if model is None else predict_texts(model, asked)
    wrong = [(texts[i], got, str(e)) for (i, got), e in zip(samples, expected) if str(got) != str(e)]
    if wrong:
        raise AssertionError(f"W4 {side}: {len(wrong)} of {len(samples)} sampled answers differ from "
                             f"the in-process model, e.g. {wrong[:3]}")
    return len(samples)


def run(size: str, repeat: int | None = None) -> dict:
    """``repeat`` overrides the number of timed requests per side (smoke tests)."""
    import numpy as np

    load_start = os.getloadavg()[0]   # other processes' load (the end figure includes ours)
    n_total = repeat or REQUESTS[size]
    per_round = [n_total // ROUNDS + (1 if r < n_total % ROUNDS else 0) for r in range(ROUNDS)]
    warmup = min(500, max(CONCURRENCY * 2, n_total // 10))
    home = c.ensure_aiaas_home()
    workdir = Path(tempfile.mkdtemp(prefix="aiaas-w4-"))
    homes = {"ours_workers": workdir / "home-workers", "ceiling": workdir / "home-ceiling"}
    n_workers = c.cpu_count()
    frame = make_texts(N_TEXTS, seed=SEED + 1)
    texts = frame["text"].tolist()
    sides = ("ours", "ours_workers", "ceiling", "baseline", "baseline_batched")
    names = {side: ECHO if side == "ceiling" else MODEL_NAME for side in sides}
    try:
        c.log("W4: training and registering the TF-IDF + LogisticRegression pipeline")
        version, model = train_and_register(home, also=[homes["ours_workers"]])
        peer_model = as_text_pipeline(model)
        peer_answers = peer_model.predict(texts)
        if not (peer_answers == model.predict(frame[["text"]])).all():
            raise AssertionError("the plain pipeline for MLServer disagrees with the registered one")
        accuracy = float(np.mean(peer_answers == frame["label"]))
        ref = f"{MODEL_NAME}:{version.version}"
        with contextlib.ExitStack() as stack:
            # the servers start side by side: each spends seconds importing its libraries
            # and loading the model, and nothing is timed before all of them answer
            starting = {"baseline": mlserver(peer_model, MODEL_NAME, workdir),
                        "baseline_batched": mlserver(peer_model, MODEL_NAME, workdir, batching=MLSERVER_BATCHING,
                                                     tag="mlserver-batched"),
                        "ours": our_server(home, ref, MODEL_NAME),
                        "ours_workers": our_server(homes["ours_workers"], ref, MODEL_NAME, workers=n_workers),
                        # the same server, processes and client, with a model that does nothing
                        "ceiling": our_server(homes["ceiling"], "builtin:echo", ECHO, workers=n_workers)}
            with ThreadPoolExecutor(len(starting)) as pool:
                started = {side: pool.submit(stack.enter_context, cm) for side, cm in starting.items()}
            urls = {side: future.result() for side, future in started.items()}  # a failed start raises here
            tokens = {side: urls[side][1] for side in ("ours", "ours_workers", "ceiling")}
            urls.update({side: urls[side][0] for side in tokens})
            # the bearer header goes to every server (MLServer ignores it): the same bytes
            headers = {side: {"Authorization": f"Bearer {tokens.get(side, tokens['ours'])}"} for side in sides}
            inputs = {side: input_name(urls[side], names[side], headers[side]) for side in sides}
            c.log(f"W4: {CONCURRENCY} clients, {warmup} warm-up + {n_total} timed requests per side "
                  f"in {ROUNDS} rounds (ABC, CBA, ...); {n_workers} serving processes for ours_workers and "
                  "ceiling; " + ", ".join(f"{s} {urls[s]}" for s in sides))
            reports: dict[str, list[dict]] = {side: [] for side in sides}
            for r, n in enumerate(per_round):
                for side in (sides if r % 2 == 0 else sides[::-1]):
                    rep = run_load(urls[side], names[side], headers[side], inputs[side], texts, n, warmup,
                                   workdir, f"{side}-{r}")
                    c.log(f"W4 round {r} {side}: {rep['rps']:.0f} req/s, errors {rep['errors']}")
                    reports[side].append(rep)
        merged = {side: _merge(reps) for side, reps in reports.items()}
        checked = {side: _check_samples(side, merged[side]["samples"], texts, None if side == "ceiling" else model)
                   for side in sides}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for side, m in merged.items():
        if m["errors"]:
            c.log(f"W4 {side}: {m['errors']} errors, e.g. {m['error_examples']}")
    ours, base, batched = merged["ours"], merged["baseline"], merged["baseline_batched"]
    extra = {}
    for side in sides:
        m = merged[side]
        extra.update({f"{side}_rps": m["rps"], f"{side}_p50_ms": m["p50_ms"], f"{side}_p99_ms": m["p99_ms"],
                      f"{side}_mean_ms": m["mean_ms"], f"{side}_errors": m["errors"],
                      f"{side}_rounds_rps": m["rounds_rps"],
                      # CPU seconds the load client used per wall second (1.0 = one core): how
                      # much of the cores the client took from the server under test
                      f"{side}_client_cpu_share": m["client_cpu_share"],
                      f"checked_{side}": checked[side]})
    workers, ceiling = merged["ours_workers"], merged["ceiling"]
    return c.result(
        "W4", size, ours["rps"], base["rps"], better="higher", unit="req/s",
        requests=n_total, concurrency=CONCURRENCY, warmup_requests=warmup, rounds=ROUNDS,
        **extra,
        ratio_vs_batched=ours["rps"] / batched["rps"], serving_processes=n_workers,
        # issue 15 point 7: N processes against 1, and against the same server with a no-op model
        workers_vs_one=workers["rps"] / ours["rps"], workers_vs_ceiling=workers["rps"] / ceiling["rps"],
        workers_vs_baseline=workers["rps"] / base["rps"],
        mlserver_batching=MLSERVER_BATCHING, model_accuracy=accuracy,
        baseline_server="mlserver " + _mlserver_version() + " + mlserver-sklearn, parallel_workers 0",
        protocol="OIP v2 REST, BYTES [1]",
        load_client="asyncio streams, HTTP/1.1 keep-alive (separate process)",
        loadavg_1m_start=load_start, loadavg_1m_end=os.getloadavg()[0], cpus=c.cpu_count())


def _mlserver_version() -> str:
    with contextlib.suppress(Exception):
        out = subprocess.run([str(MLSERVER_VENV / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('mlserver'))"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    return "?"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "loadgen":
        sys.exit(loadgen_main(sys.argv[2]))
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--requests", type=int, default=None, help="timed requests per side")
    a = ap.parse_args()
    c.prepare_environment()
    c.emit(run("full" if a.full else "quick", a.requests))
