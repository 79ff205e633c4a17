"""The ``%aiaas`` / ``%%aiaas`` magic: parse, call the façade, return something to display.

Magics stay thin: everything they do is a call on :class:`~aiaas_jupyter.client.AiaasClient`,
so widgets and the server extension get the same behaviour.
"""

from __future__ import annotations

import traceback

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ..errors import ModelSpecError, TrainCellError
from ..tracebacks import format_remote_traceback, one_line
from .parser import CELL_SUBCOMMANDS, HelpShown, full_help, parse

_TRAIN_NAMES = ("model", "optimizer", "loss")
_SWEEP_NAMES = ("model", "space", "make_model", "loss", "optimizer")


def _remember_source(source: str) -> str:
    """A unique file name for a cell, registered in linecache so remote tracebacks show its lines."""
    import itertools
    import linecache

    global _CELL_COUNTER
    if "_CELL_COUNTER" not in globals():
        _CELL_COUNTER = itertools.count(1)
    name = f"<aiaas train cell {next(_CELL_COUNTER)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    return name


def _in_kernel(shell) -> bool:
    """Live in-place updates only make sense where a front-end renders display ids."""
    return type(shell).__name__ == "ZMQInteractiveShell"


@magics_class
class AiaasMagics(Magics):
    def __init__(self, shell, client=None):
        super().__init__(shell)
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from ..client import get_client

            self._client = get_client()
        return self._client

    @line_cell_magic
    @no_var_expand  # `{expr}` and `$x` stay literal: a magic line is never evaluated as code
    def aiaas(self, line: str, cell: str | None = None):
        try:
            args = parse(line)
        except HelpShown:
            return None
        if args.command is None:
            raise UsageError("%aiaas: missing SUBCOMMAND (see %aiaas --help)")
        if args.command in CELL_SUBCOMMANDS and cell is None and not getattr(args, "form", False):
            raise UsageError(f"%aiaas {args.command} runs a cell: write it as %%aiaas {args.command} ...")
        return getattr(self, "_do_" + args.command)(args, cell)

    # -- cluster -------------------------------------------------------------------------
    def _do_connect(self, args, cell):
        from ..gateway import parse_options

        return self.client.connect(args.address, scheduler_file=args.scheduler_file, n_workers=args.workers,
                                   threads_per_worker=args.threads, gpus=args.gpus, timeout=args.timeout,
                                   gateway=args.gateway, cluster_name=args.cluster,
                                   cluster_options=parse_options(args.cluster_options), adapt=args.adapt)

    def _do_disconnect(self, args, cell):
        self.client.disconnect(shutdown=args.shutdown)
        print("disconnected" + (" (the gateway cluster is shut down)" if args.shutdown else ""))

    def _do_status(self, args, cell):
        if args.widget:
            from ..widgets import ClusterWidget

            return ClusterWidget(self.client)
        return self.client.status()

    # -- work ----------------------------------------------------------------------------
    def _do_preprocess(self, args, cell):
        return self.client.preprocess(args.input, args.output, cell, namespace=self.shell.user_ns,
                                      per_partition=args.per_partition, save=args.save)

    def _do_train(self, args, cell):
        if args.form:
            return self._train_form(args, cell)
        objects = self._run_model_cell(cell)
        job = self.client.train(
            objects["model"], args.data, args.target, name=args.name, optimizer=objects.get("optimizer"),
            loss=objects.get("loss"), test_size=args.test_size, gpus=args.gpus, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, source=cell,
            namespace=self.shell.user_ns, display=False, workers=args.workers,
            gpus_per_worker=args.gpus_per_worker)
        if args.out:
            self.shell.user_ns[args.out] = job
        live = _in_kernel(self.shell)
        if live:  # one output that updates in place as events arrive
            from ..widgets.live_views import show_job

            show_job(job, self.client)
        if args.block:
            job.wait()
        if not live:  # a terminal: one picture, after the wait when blocking
            from IPython.display import display

            display(job, metadata=job.lineage())
        if args.block and job.error is not None:
            raise job.error
        return None

    def _train_form(self, args, cell):
        """``%aiaas train --form``: the TrainForm, pre-filled with the options given."""
        if cell is not None and cell.strip():
            raise UsageError("%aiaas train --form writes the cell itself: use it on a line, without a cell body")
        if args.block or args.out:
            raise UsageError("%aiaas train --form: --block and -o apply to a train cell, not to the form")
        from ..widgets import TrainForm

        return TrainForm(self.client, self.shell.user_ns, data=args.data, target=args.target, name=args.name,
                         test_size=args.test_size, gpus=args.gpus, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed)

    def _run_model_cell(self, cell: str, names: tuple = _TRAIN_NAMES, kind: str = "train") -> dict:
        """Run the cell like any other (its names stay in the notebook); pick up *names*
        (model/optimizer/loss; a sweep cell's space and make_model too).

        Earlier values of those names are set aside first, so a cell that forgets to define
        ``model`` fails clearly instead of silently re-training a previous cell's model. A cell
        that does not compile or raises is the user's own error: one line, and the cell's lines
        of its traceback under it (not this method's frames), as a preprocess cell's is.
        """
        ns = self.shell.user_ns
        filename = _remember_source(cell)
        try:
            code = compile(cell, filename, "exec")
        except SyntaxError as exc:
            raise TrainCellError(f"the {kind} cell has a syntax error: {exc.msg} (line {exc.lineno})",
                                 "".join(traceback.format_exception_only(type(exc), exc))) from None
        stash = {k: ns.pop(k) for k in names if k in ns}

        def restore() -> None:
            for k, v in stash.items():
                ns.setdefault(k, v)

        try:
            exec(code, ns)  # the user's own cell, in their namespace, as IPython would run it
        except Exception as exc:  # the user's code: any error it raises is reported as theirs
            restore()
            raise TrainCellError(f"the {kind} cell raised {one_line(exc)}",
                                 format_remote_traceback(exc, exc.__traceback__, user_only=True)) from None
        except BaseException:  # KeyboardInterrupt and the like: not an error of the cell's
            restore()
            raise
        found = {k: ns[k] for k in names if k in ns}
        restore()
        if kind == "train" and "model" not in found:
            raise ModelSpecError("the cell defines no `model`",
                                 hint="assign a scikit-learn estimator or a torch.nn.Module to `model`")
        return found

    # -- sweeps ----------------------------------------------------------------------------
    def _do_sweep(self, args, cell):
        if args.action is not None:
            return self._sweep_action(args, cell)
        if cell is None:
            raise UsageError("%aiaas sweep runs a cell: write it as %%aiaas sweep ... "
                             "(or %aiaas sweep show|attach|cancel ID)")
        missing = [flag for dest, flag in (("data", "--data"), ("target", "--target")) if getattr(args, dest) is None]
        if missing:
            raise UsageError(f"%aiaas sweep: the following arguments are required: {', '.join(missing)} "
                             "(see %aiaas sweep --help)")
        if args.sweep_id is not None:
            raise UsageError(f"%aiaas sweep: unexpected argument {args.sweep_id!r} (see %aiaas sweep --help)")
        from ..sweep_space import CELL_HELPERS

        for key, helper in CELL_HELPERS.items():  # loguniform(...) etc. without an import
            self.shell.user_ns.setdefault(key, helper)
        objects = self._run_model_cell(cell, _SWEEP_NAMES, "sweep")
        if "space" not in objects:
            raise ModelSpecError("the sweep cell defines no `space`",
                                 hint="e.g. space = {'max_depth': [4, 8, 16]} or {'lr': loguniform(1e-4, 1e-1)}")
        sweep = self.client.sweep(
            objects.get("model"), args.data, args.target, space=objects["space"], name=args.name,
            metric=args.metric, direction=args.direction, search=args.search, trials=args.trials,
            early_stop=args.early_stop, grace_period=args.grace_period, max_concurrent=args.max_concurrent,
            gpus_per_trial=args.gpus_per_trial,
            seed=args.seed, register=args.register, make_model=objects.get("make_model"),
            loss=objects.get("loss"), optimizer=objects.get("optimizer"), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, test_size=args.test_size, source=cell,
            namespace=self.shell.user_ns)
        return self._follow_sweep(sweep, args.out, args.block)

    def _follow_sweep(self, sweep, out, block: bool):
        if out:
            self.shell.user_ns[out] = sweep
        live = _in_kernel(self.shell)
        if live:  # the leaderboard, updating in place
            from ..widgets.live_views import show_sweep

            show_sweep(sweep, self.client)
        if block:
            sweep.wait()
        if not live:
            from IPython.display import display

            display(sweep)
        if block and sweep.error is not None:
            raise sweep.error
        return None

    def _sweep_action(self, args, cell):
        if cell is not None and cell.strip():
            raise UsageError(f"%aiaas sweep {args.action} takes no cell")
        if args.action == "show":
            return self.client.sweep_board(args.sweep_id)
        if args.sweep_id is None:
            raise UsageError(f"%aiaas sweep {args.action}: the sweep ID is required (see %aiaas sweeps)")
        if args.action == "cancel":
            sweep = self.client.cancel_sweep(args.sweep_id)
            print(f"sweep {sweep.id}: {sweep.status}")
            return None
        sweep = self.client.attach_sweep(args.sweep_id)
        return self._follow_sweep(sweep, args.out, args.block)

    def _do_sweeps(self, args, cell):
        return self.client.sweeps(args.limit)

    # -- plain functions -------------------------------------------------------------------
    def _do_map(self, args, cell):
        from .map_args import resolve_function, resolve_items

        if args.no_wait and not args.out:
            raise UsageError("%aiaas map --no-wait needs -o VAR to keep the MapJob (see %aiaas map --help)")
        if args.out and not args.out.isidentifier():
            raise UsageError(f"-o must be a Python identifier, got {args.out!r}")
        ns = self.shell.user_ns
        result = self.client.map(resolve_function(args.func, ns), *resolve_items(args.items, ns),
                                 chunksize=args.chunksize, errors=args.errors, retries=args.retries,
                                 gpus=args.gpus, block=not args.no_wait)
        return self._store(args.out, result)

    # -- jobs ----------------------------------------------------------------------------
    def _do_jobs(self, args, cell):
        return self.client.jobs(args.limit)

    def _do_cancel(self, args, cell):
        job = self.client.cancel(args.job_id)
        print(f"job {job.id}: {job.status}")

    def _do_result(self, args, cell):
        version = self.client.result(args.job_id, timeout=args.timeout)
        if args.out:
            self.shell.user_ns[args.out] = version
        return self.client.show(version.ref)

    def _do_attach(self, args, cell):
        job = self.client.attach(args.job_id)
        if args.out:
            self.shell.user_ns[args.out] = job
        if _in_kernel(self.shell):
            from ..widgets.live_views import show_job

            show_job(job, self.client)
            return None
        return job

    # -- models --------------------------------------------------------------------------
    def _do_models(self, args, cell):
        action = args.models_command or "list"
        if action == "list":
            return self.client.models()
        if action == "show":
            return self.client.show(args.ref)
        if action == "compare":
            return self.client.compare(args.name, args.versions or None)
        if action == "alias":
            self.client.alias(args.name, args.version, args.alias)
            print(f"{args.name}@{args.alias} → version {args.version}")
            return None
        self.client.delete(args.ref)
        print(f"deleted {args.ref}")
        return None

    # -- serving -------------------------------------------------------------------------
    def _do_deploy(self, args, cell):
        if (args.promote or args.rollback) and any(c in args.ref for c in ":@"):
            raise UsageError(f"%aiaas deploy {args.ref} --{'promote' if args.promote else 'rollback'}: "
                             "name the deployment only (MODEL), not a version")
        return self.client.deploy(args.ref, canary=args.canary, promote=args.promote, rollback=args.rollback)

    def _do_export(self, args, cell):
        folder = self.client.export(args.ref, args.directory, to=args.to, name=args.name, overwrite=args.overwrite)
        print(f"exported {args.ref} to {folder}: serve it with `mlserver start {folder}` "
              "(aiaas-jupyter and skops or onnxruntime installed beside MLServer)")

    def _do_undeploy(self, args, cell):
        self.client.undeploy(args.name)
        print(f"undeployed {args.name}")

    def _do_endpoints(self, args, cell):
        action = args.endpoints_command or "list"
        if action == "list":
            return self.client.endpoints()
        if action == "show":
            return self._store(args.out, self.client.endpoint(args.name, endpoint=args.endpoint))
        if action == "add":
            ep = self.client.add_endpoint(args.name, args.url, args.protocol, api_key_env=args.api_key_env,
                                          model=args.model)
            key = f", key from ${ep.api_key_env} ({'set' if ep.key_is_set() else 'not set'})" if ep.api_key_env else ""
            print(f"endpoint {ep.name}: {ep.protocol} at {ep.url}{key}")
            if any(m["name"] == ep.name for m in self.client.registry.list_models()):
                print(f"note: a model named {ep.name} is registered; once deployed, `%aiaas predict {ep.name}` "
                      f"calls the deployment (add --endpoint for this endpoint)")
            return None
        self.client.remove_endpoint(args.name)
        print(f"removed endpoint {args.name}")
        return None

    def _do_predict(self, args, cell):
        if args.form:
            from ..widgets import PredictForm

            form = PredictForm(self.client, self.shell.user_ns)
            if args.name:
                form.select(args.name)
            return form
        if args.on_cluster:
            return self._batch(args, self.client.predict)
        self._kernel_side(args)
        from .inputs import resolve_input

        result = self.client.predict(args.name, resolve_input(args.input, self.shell.user_ns),
                                     endpoint=args.endpoint, outputs=["predict_proba"] if args.proba else None)
        if args.proba and isinstance(result, dict) and "predict_proba" in result:
            result = result["predict_proba"]
        return self._store(args.out, result)

    def _do_embed(self, args, cell):
        if args.on_cluster:
            return self._batch(args, self.client.embed)
        self._kernel_side(args)
        from .inputs import resolve_input

        result = self.client.embed(args.name, resolve_input(args.input, self.shell.user_ns),
                                   endpoint=args.endpoint)
        return self._store(args.out, result)

    @staticmethod
    def _kernel_side(args) -> None:
        given = [flag for flag, on in (("--column", args.column), ("--save", args.save),
                                       ("--overwrite", args.overwrite), ("--no-wait", args.no_wait)) if on]
        if given:
            raise UsageError(f"%aiaas {args.command}: {', '.join(given)} go with --on-cluster")

    def _batch(self, args, call):
        """``--on-cluster``: --input is a frame variable or @GLOB (read by the workers, not here)."""
        if args.endpoint:
            raise UsageError(f"%aiaas {args.command}: --endpoint and --on-cluster do not go together "
                             "(on the cluster the registered version scores, not an endpoint)")
        spec = args.input.strip()
        if spec.startswith("@"):
            data = spec[1:]
            if not data:
                raise UsageError(f"%aiaas {args.command}: --input @: missing the path glob after @")
        elif spec.isidentifier() and spec in self.shell.user_ns:
            data = self.shell.user_ns[spec]
        else:
            raise UsageError(f"%aiaas {args.command} --on-cluster: --input must be a DataFrame variable "
                             f"or @GLOB of parquet/csv files, got {spec[:60]!r}")
        options = {"proba": args.proba} if args.command == "predict" else {}
        result = call(args.name, data, on_cluster=True, column=args.column, save=args.save,
                      overwrite=args.overwrite, block=not args.no_wait, **options)
        return self._store(args.out, result)

    def _do_ask(self, args, cell):
        if args.no_stream:
            answer = self.client.ask(args.name, cell)
            if args.out:
                self.shell.user_ns[args.out] = answer.text
            return answer
        from .stream_view import show_streamed

        text = show_streamed(self.client.ask(args.name, cell, stream=True), self.shell)
        if args.out:
            self.shell.user_ns[args.out] = text
        return None

    def _store(self, out: str | None, result):
        """``-o VAR``: bind the result in the notebook (and show nothing); else show it."""
        if not out:
            return result
        if not out.isidentifier():
            raise UsageError(f"-o must be a Python identifier, got {out!r}")
        self.shell.user_ns[out] = result
        return None


AiaasMagics.aiaas.__doc__ = full_help()
