"""The façade: the one Python API that magics, widgets and the server extension all call.

``AiaasClient`` is composed of the parts that do the work, and delegates to them:

* ``registry`` — the registry home (:class:`~.registry.Registry`);
* ``session`` — the connection to a Dask cluster (:class:`~.cluster_session.ClusterSession`);
* ``dispatcher`` — the jobs of this kernel and their way through Dask
  (:class:`~.job_dispatch.JobDispatcher`);
* ``sweeper`` — the hyper-parameter sweeps of this kernel (:class:`~.sweep_dispatch.SweepDispatcher`);
* ``serving`` — deploy, endpoints, predict, ask, embed (:class:`~.serving_service.ServingService`);
* ``presenter`` — how a job or a map it starts is shown (:mod:`.presenting`): by default the one
  the front-end installed (the notebook's live views in IPython; never imported here), else the
  plain one.

Module-level functions (``aiaas_jupyter.connect``, ``train``, ...) use one default instance, as
``distributed`` does with its default client.

Training data flow: the kernel checks everything it can up front (framework, data, target,
GPU capacity, names) so that bad input fails at once with one line; then the task runs on a
worker and returns plain data + safe artifact bytes; the kernel registers the model only
after the task succeeded (atomic registry write), so a failed job registers nothing.
"""

from __future__ import annotations

import os
from typing import Any

from . import cluster_snapshot
from . import settings as _settings
from .cluster_session import ClusterSession
from .data import resolve_frame, run_preprocess
from .target_check import check_target
from .display import Table
from .errors import AiaasError, ConfigError, ModelSpecError
from .job_dispatch import JobDispatcher
from .job_handle import Job
from .presenting import InstalledPresenter, Presenter
from .registry import Registry, validate_name
from .serving_service import ServingService
from .sweep_dispatch import SweepDispatcher
from .sweep_handle import Sweep
from .train_defaults import TRAIN_DEFAULTS
from .tracebacks import index_of
from .views import cluster_table, jobs_table, model_card, models_table

_D = TRAIN_DEFAULTS


def _job_setting(key: str, valid, expects: str, example: str):
    """``aiaas.jobs.<key>``, checked here: a bad value is one line now, not a worker's traceback.
    *valid* judges a number (bools never pass); None (null) always does."""
    value = _settings.config(f"jobs.{key}")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value)):
        raise ConfigError(f"aiaas.jobs.{key} must be {expects} or null, got {value!r}",
                          hint=f"e.g. DASK_AIAAS__JOBS__{key.upper().replace('-', '_')}={example}")
    return value


def _epoch_eval_rows() -> int | None:
    return _job_setting("epoch-eval-rows", lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1", "10000")


def _epoch_eval_share() -> float | None:
    value = _job_setting("epoch-eval-share", lambda v: 0 < v <= 1, "a number in (0, 1]", "0.02")
    return None if value is None else float(value)


class AiaasClient:
    def __init__(self, home: str | os.PathLike | None = None, *, registry: Registry | None = None,
                 presenter: Presenter | None = None):
        self.registry = registry if registry is not None else Registry(home)
        self.session = ClusterSession(self.registry.home)
        self.dispatcher = JobDispatcher(self.registry, self.session)
        self.sweeper = SweepDispatcher(self.registry, self.session)
        self.serving = ServingService(self.registry)
        # by default what the front-end installed (the notebook's views in IPython), else plain
        self.presenter = presenter if presenter is not None else InstalledPresenter(self)

    # -- cluster -------------------------------------------------------------------------
    @property
    def dask(self):
        """The ``distributed.Client`` (None when not connected)."""
        return self.session.dask

    @property
    def cluster(self):
        """The embedded cluster, when this kernel started one."""
        return self.session.cluster

    @property
    def embedded(self) -> bool:
        return self.session.embedded

    @property
    def progress_recorder(self):
        return self.dispatcher.progress_recorder

    def connect(self, address: str | None = None, *, scheduler_file: str | None = None,
                n_workers: int | None = None, threads_per_worker: int | None = None,
                gpus: int | str | None = None, timeout: float | str | None = None,
                gateway: str | None = None, cluster_name: str | None = None,
                cluster_options: dict | None = None, adapt=None) -> Table:
        """Start the embedded cluster (no address), attach to a scheduler, or create (or attach
        to, *cluster_name*) a cluster of a dask-gateway (*gateway* URL, or an address
        ``gateway://HOST:PORT``) with the gateway's *cluster_options*, *n_workers* workers or an
        *adapt* range ``(MIN, MAX)``; show its status."""
        self.session.connect(address, scheduler_file=scheduler_file, n_workers=n_workers,
                             threads_per_worker=threads_per_worker, gpus=gpus, timeout=timeout,
                             gateway=gateway, cluster_name=cluster_name, cluster_options=cluster_options,
                             adapt=adapt)
        self.dispatcher.forget_orphans()
        return self.status()

    def disconnect(self, shutdown: bool = False) -> None:
        """Close the connection. Jobs on an external cluster keep running (``%aiaas attach``), and
        so does a dask-gateway cluster unless *shutdown*."""
        self.session.disconnect(shutdown=shutdown)

    def require_dask(self):
        return self.session.require_dask()

    def cluster_summary(self) -> dict:
        return self.session.summary()

    def status(self) -> Table:
        summary = self.session.summary()
        cluster_snapshot.record(self.registry.home, summary)  # what the sidebar shows (never asks Dask)
        return cluster_table(summary, embedded=self.embedded)

    def check_versions(self, framework: str | None = None) -> list[str]:
        """Compare the packages a job needs in the kernel and on every worker; warn once."""
        return self.session.check_versions(framework)

    # -- preprocessing -------------------------------------------------------------------
    def preprocess(self, input: Any, output: str = "df", body=None, *, namespace: dict | None = None,
                   per_partition: bool = False, save: str | None = None):
        """Run *body* over *input* on the cluster; the persisted result is bound to *output*."""
        if not output.isidentifier():
            raise AiaasError(f"--output must be a Python identifier, got {output!r}")
        result = run_preprocess(self.require_dask(), input, output, body, namespace, per_partition, save)
        if namespace is not None:
            namespace[output] = result.frame
        return result

    # -- plain functions -------------------------------------------------------------------
    def map(self, func, *iterables, chunksize: int | None = None, errors: str = "raise", retries: int = 0,
            gpus: int = 0, resources: dict | None = None, block: bool = True, progress: bool = True):
        """``func(*args)`` for each item of the zipped *iterables*, on the cluster; the results in
        order (or a :class:`~.map_job.MapJob` with ``block=False``). See :mod:`.fanout`."""
        from .fanout import run_map

        dask_client = self.require_dask()
        if gpus:
            self.session.check_gpu_capacity(gpus)
            resources = {**(resources or {}), "GPU": gpus}
        self.session.ensure_versions()
        show = (lambda map_job: self.presenter.show_map(map_job, block)) if progress else None
        return run_map(dask_client, func, iterables, chunksize=chunksize, errors=errors, retries=retries,
                       resources=resources, block=block, show=show)

    # -- training ------------------------------------------------------------------------
    def train(self, model, data, target: str, *, name: str | None = None, optimizer=None, loss=None,
              test_size: float = _D["test_size"], gpus: int = _D["gpus"], epochs: int = _D["epochs"],
              batch_size: int = _D["batch_size"], lr: float | None = _D["lr"], seed: int = _D["seed"],
              source: str = "", namespace: dict | None = None, block: bool = False,
              display: bool = False, workers: int = 1, gpus_per_worker: int | None = None) -> Job:
        """Dispatch a training job; return its :class:`Job` at once (or when done, with *block*).

        *workers* > 1 trains one torch model data-parallel on that many Dask workers
        (``DistributedDataParallel``; *batch_size* is per worker), each with
        *gpus_per_worker* GPUs (default: *gpus*)."""
        from .training import detect_framework
        from .training.base import TrainSpec

        self.require_dask()
        framework = detect_framework(model)
        frame = resolve_frame(data, namespace)
        check_target(frame, target)
        name = validate_name(name or type(model).__name__.lower())
        if not 0.0 < test_size < 1.0:
            raise AiaasError(f"--test-size must be between 0 and 1, got {test_size}")
        if not isinstance(workers, int) or workers < 1:
            raise AiaasError(f"--workers must be a whole number >= 1, got {workers!r}")
        if workers > 1:
            if framework != "torch":
                raise ModelSpecError(f"--workers {workers} trains a torch model data-parallel; "
                                     f"a {framework} estimator trains on one worker", hint="drop --workers")
            gpus = gpus if gpus_per_worker is None else gpus_per_worker
        if gpus:
            self.session.check_gpu_capacity(gpus)
        self.session.ensure_versions(framework)
        spec = TrainSpec(model=model, target=target, optimizer=optimizer, loss=loss, test_size=test_size,
                         seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, gpus=gpus,
                         epoch_eval_rows=_epoch_eval_rows(), epoch_eval_share=_epoch_eval_share())
        info = {"framework": framework, "target": target, "source": source,
                "data": data if isinstance(data, str) else None,
                # what "Copy as magic" needs to write the cell back
                "train": {"test_size": test_size, "gpus": gpus, "epochs": epochs,
                          "batch_size": batch_size, "lr": lr, "seed": seed}}
        if workers > 1:
            info["train"].update(workers=workers)
        job = self.dispatcher.submit(spec, frame, name=name, info=info, gpus=gpus,
                                     code_index=index_of(model, optimizer, loss), workers=workers)
        if display:
            self.presenter.show_job(job)
        if block:
            job.wait()
        return job

    # -- jobs ----------------------------------------------------------------------------
    def jobs(self, limit: int = 50) -> Table:
        live = self.dispatcher.live_records()
        return jobs_table([live.get(r.id, r) for r in self.registry.list_jobs(limit)])

    def job(self, job_id: str) -> Job:
        return self.dispatcher.job(job_id)

    def cancel(self, job_id: str) -> Job:
        return self.dispatcher.cancel(job_id)

    def result(self, job_id: str, timeout: float | None = None):
        return self.job(job_id).result(timeout)

    def attach(self, job_id: str) -> Job:
        """Re-attach a job started by another kernel that is still on an external cluster."""
        return self.dispatcher.attach(job_id)

    # -- sweeps (see :mod:`.sweep_plan`, :mod:`.sweep_dispatch`) ----------------------------
    def sweep(self, model=None, data=None, target: str | None = None, *, space, name: str | None = None,
              metric: str | None = None, direction: str | None = None, search: str | None = None,
              trials: int | None = None, early_stop: str = "none", grace_period: int | None = None,
              max_concurrent: int | None = None, gpus_per_trial: int = 0, seed: int = _D["seed"],
              register: str = "best", make_model=None, loss=None, optimizer=None, epochs: int = _D["epochs"],
              batch_size: int = _D["batch_size"],
              lr: float | None = _D["lr"], test_size: float = _D["test_size"], source: str = "",
              namespace: dict | None = None, block: bool = False, display: bool = False) -> Sweep:
        """Search *space* for the best hyper-parameters of *model* (or of ``make_model(params)``),
        one Dask task per trial; the best trial is registered as a version of *name*. Returns the
        :class:`~.sweep_handle.Sweep` at once (or when done, with *block*)."""
        from .sweep_plan import plan_sweep

        dask_client = self.require_dask()
        if target is None:
            raise AiaasError("a sweep needs the target column", hint="--target COL")
        frame = resolve_frame(data, namespace)
        check_target(frame, target)
        if not 0.0 < test_size < 1.0:
            raise AiaasError(f"--test-size must be between 0 and 1, got {test_size}")
        if gpus_per_trial:
            self.session.check_gpu_capacity(gpus_per_trial)
        plan = plan_sweep(model, frame, target, space=space, name=name, metric=metric, direction=direction,
                          search=search, trials=trials, early_stop=early_stop, grace_period=grace_period,
                          max_concurrent=max_concurrent, slots=self.sweeper.slots(gpus_per_trial),
                          gpus_per_trial=gpus_per_trial, seed=seed,
                          register=register, make_model=make_model, loss=loss,
                          train_options={"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                         "test_size": test_size, "optimizer": optimizer},
                          source=source, data_name=data if isinstance(data, str) else None,
                          scheduler=dask_client.scheduler.address, embedded=self.session.embedded)
        self.session.ensure_versions(plan.record.info["framework"])
        sweep = self.sweeper.submit(plan, frame)
        if display:
            self.presenter.show_sweep(sweep, block)
        if block:
            sweep.wait()
        return sweep

    def sweeps(self, limit: int = 50) -> Table:
        from .sweep_views import sweeps_table

        live = self.sweeper.live_records()
        return sweeps_table([live.get(r.id, r) for r in self.registry.list_sweeps(limit)])

    def get_sweep(self, sweep_id: str) -> Sweep:
        return self.sweeper.sweep(sweep_id)

    def sweep_board(self, sweep_id: str | None = None) -> Table:
        """The leaderboard of a sweep (default: the latest) as a table (``%aiaas sweep show [ID]``)."""
        from .errors import SweepNotFoundError
        from .sweep_views import leaderboard_table

        if sweep_id is None:
            latest = self.registry.list_sweeps(1)
            if not latest:
                raise SweepNotFoundError("no sweep in this registry yet", hint="%%aiaas sweep --help")
            sweep_id = latest[0].id
        sweep = self.sweeper.sweep(sweep_id)
        return leaderboard_table(sweep.record, sweep.trial_records())

    def attach_sweep(self, sweep_id: str) -> Sweep:
        """Drive a sweep another kernel started on this external cluster (``%aiaas sweep attach``)."""
        return self.sweeper.attach(sweep_id)

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        return self.sweeper.cancel(sweep_id)

    # -- models --------------------------------------------------------------------------
    def compare(self, name: str, versions: list[int] | None = None) -> Table:
        """Versions of *name* side by side: the params that differ, every metric, lineage
        (default: every version)."""
        from .sweep_views import compare_table

        chosen = self.registry.versions(name) if not versions else \
            [self.registry.get(f"{name}:{int(v)}") for v in versions]
        return compare_table(chosen)

    def models(self) -> Table:
        return models_table(self.registry.list_models())

    def model(self, ref: str):
        """The registered :class:`~aiaas_jupyter.registry.ModelVersion` for NAME, NAME:V or NAME@ALIAS."""
        return self.registry.get(ref)

    def show(self, ref: str) -> Table:
        return model_card(self.registry.get(ref))

    def alias(self, name: str, version: int, alias: str) -> None:
        self.registry.set_alias(name, int(version), alias)

    def delete(self, ref: str) -> None:
        from .registry import parse_ref

        name, version, alias = parse_ref(ref)
        if alias is not None:
            version = self.registry.get(ref).version
        self.registry.delete(name, version)

    def load_model(self, ref: str, **kwargs):
        """Load a registered model from its safe artifact (sha256-checked).

        scikit-learn: the fitted estimator/pipeline (a pipeline trained on one text column as a
        :class:`~.artifacts.text_model.TextModel`, taking a DataFrame, Series or list of texts);
        torch: an :class:`~.artifacts.onnx_model.OnnxModel` with scikit-learn's surface, or with
        ``module=YourNet()`` that module holding the registered weights (eval mode)."""
        from .artifacts.codec import load_model_files

        mv = self.registry.get(ref)
        return load_model_files(mv.framework, self.registry.read_artifacts(mv), extra=mv.extra, **kwargs)

    def export(self, ref: str, directory, *, to: str = "mlserver", name: str | None = None,
               overwrite: bool = False):
        """Write version *ref* (``NAME``, ``NAME:V``, ``NAME@ALIAS``) as a model folder a stock
        MLServer serves (and so KServe and Seldon Core): its safe artifacts, their sha256 and the
        runtime class of this package (:mod:`.model_export`). Returns the folder's path."""
        from .model_export import export_model

        return export_model(self.registry, ref, directory, to=to, name=name, overwrite=overwrite)

    # -- serving (see :mod:`.serving_service`) ------------------------------------------------
    def deploy(self, ref: str, **server_options):
        return self.serving.deploy(ref, **server_options)

    def undeploy(self, name: str) -> None:
        self.serving.undeploy(name)

    def deployments(self) -> list[dict]:
        return self.serving.deployments()

    def stop_server(self) -> None:
        self.serving.stop_server()

    def add_endpoint(self, name: str, url: str, protocol: str, api_key_env: str | None = None,
                     model: str | None = None):
        return self.serving.add_endpoint(name, url, protocol, api_key_env=api_key_env, model=model)

    def remove_endpoint(self, name: str) -> None:
        self.serving.remove_endpoint(name)

    def endpoints(self) -> Table:
        return self.serving.endpoints()

    def endpoint(self, name: str, *, endpoint: bool = False):
        return self.serving.endpoint(name, endpoint=endpoint)

    def predict(self, name: str, data: Any, *, endpoint: bool = False, version: int | None = None,
                outputs: list[str] | None = None, timeout: float | None = None, on_cluster: bool = False,
                proba: bool = False, column: str | None = None, save: str | None = None,
                overwrite: bool = False, namespace: dict | None = None, block: bool = True,
                progress: bool = True):
        if not on_cluster:
            if proba or column or save or overwrite:
                raise AiaasError("proba=, column=, save= and overwrite= are options of on_cluster=True",
                                 hint="for probabilities from a deployment: outputs=['predict_proba']")
            return self.serving.predict(name, data, endpoint=endpoint, version=version, outputs=outputs,
                                        timeout=timeout)
        from .batch_scoring import predict_on_cluster

        if endpoint or outputs or timeout:
            raise AiaasError("endpoint=, outputs= and timeout= are options of a deployment's predict; "
                             "on_cluster=True scores with the registered version on the workers",
                             hint="probabilities on the cluster: proba=True")
        dask_client = self._ready_dask()
        ref = f"{validate_name(name)}:{version}" if version is not None else name
        job = predict_on_cluster(dask_client, self.registry, ref, data, namespace=namespace, proba=proba,
                                 column=column, save=save, overwrite=overwrite, n_threads=_threads(dask_client))
        return self._batch(job, block, progress)

    def ask(self, name: str, prompt: str, *, timeout: float | None = None, stream: bool = False, **params):
        return self.serving.ask(name, prompt, timeout=timeout, stream=stream, **params)

    def embed(self, name: str, texts: Any, *, endpoint: bool = False, timeout: float | None = None,
              on_cluster: bool = False, column: str | None = None, save: str | None = None,
              overwrite: bool = False, namespace: dict | None = None, block: bool = True,
              progress: bool = True):
        if not on_cluster:
            if column or save or overwrite:
                raise AiaasError("column=, save= and overwrite= are options of on_cluster=True")
            return self.serving.embed(name, texts, endpoint=endpoint, timeout=timeout)
        from .batch_scoring import embed_on_cluster

        if endpoint or timeout:
            raise AiaasError("endpoint= and timeout= are options of a deployment's embed; on_cluster=True "
                             "embeds with the built-in model on the workers")
        dask_client = self._ready_dask()
        job = embed_on_cluster(dask_client, name, texts, namespace=namespace, column=column, save=save,
                               overwrite=overwrite, n_threads=_threads(dask_client))
        return self._batch(job, block, progress)

    # -- batch inference helpers ---------------------------------------------------------
    def _ready_dask(self):
        dask_client = self.require_dask()
        self.session.ensure_versions()
        return dask_client

    def _batch(self, job, block: bool, progress: bool):
        """A batch job shown as a map is (a bar), and its result when *block*, else the job."""
        if progress:
            self.presenter.show_map(job, block)
        return job.result() if block else job


for _name in ("deploy", "undeploy", "deployments", "stop_server", "add_endpoint", "remove_endpoint",
              "endpoints", "endpoint", "predict", "ask", "embed"):  # one docstring: the service's
    getattr(AiaasClient, _name).__doc__ = getattr(ServingService, _name).__doc__
del _name
AiaasClient.predict.__doc__ += """
        ``on_cluster=True``: batch inference on the Dask workers with the registered version
        (``NAME``, ``NAME:V``, ``NAME@ALIAS`` or *version*), not the deployment: *data* is a dask or
        pandas DataFrame (or a notebook variable's name, or a path glob the workers read). Returns
        a dask DataFrame aligned to the input's index with ``prediction`` (and ``proba_<class>``
        columns with *proba*), held in the workers' memory; with *save* (a path or fsspec URL the
        workers write) the written dataset read back lazily. ``block=False``: the
        :class:`~.batch_job.BatchJob` at once. See :mod:`.batch_scoring`."""
AiaasClient.embed.__doc__ += """
        ``on_cluster=True``: embeddings of a text column (*column*) of a dask/pandas DataFrame on the
        Dask workers with the built-in ``all-minilm-l6-v2`` (GPU when a worker has one): a dask
        DataFrame of ``emb_0 … emb_383`` aligned to the input's index (or written to *save*)."""


_default: AiaasClient | None = None


def _threads(dask_client) -> int:
    """The cluster's worker threads (a pandas frame to score is cut in about two partitions each)."""
    return max(1, sum(dask_client.nthreads().values()))


def get_client() -> AiaasClient:
    """The kernel's default façade (created on first use); it shows jobs with the presenter the
    front-end installed (:func:`.presenting.install`)."""
    global _default
    if _default is None:
        _default = AiaasClient()
    return _default
