"""Argument parsing for ``%aiaas``: one argparse sub-parser per subcommand.

Lines are split with ``IPython.utils.process.arg_split`` (shell-like quoting, as the rest of
IPython does). Every parse error becomes a one-line ``UsageError`` naming the subcommand and
pointing at its ``--help``; ``--help`` prints usage and is reported as :class:`HelpShown`
instead of argparse's ``SystemExit``.
"""

from __future__ import annotations

import argparse

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

from ..train_defaults import TRAIN_DEFAULTS as D  # stdlib-only leaf: %load_ext stays light
from . import bounds as b

CELL_SUBCOMMANDS = ("preprocess", "train", "ask")

EPILOG = """examples (each runs as written; a %%aiaas line's cell follows it; text after # is a comment):
  %aiaas connect                          # the embedded Dask cluster (GPU workers if present)
  %aiaas connect tcp://10.0.0.5:8786      # or attach to a running scheduler
  %%aiaas preprocess --input data/*.csv --output clean --save clean.parquet
  df = df.dropna()

  %%aiaas train --data clean --target label --name iris-rf --block
  from sklearn.ensemble import RandomForestClassifier
  model = RandomForestClassifier(random_state=0)

  %aiaas train --form --data clean        # a form that writes that cell (and can train it)
  %aiaas jobs
  %aiaas models
  %aiaas models alias iris-rf 1 prod
  %aiaas models show iris-rf@prod
  %aiaas deploy iris-rf@prod              # serve it (starts this home's model server)
  %aiaas predict iris-rf --input X_test -o preds     # X_test: a DataFrame, array or records
  %aiaas predict iris-rf --input '[[5.1, 3.5, 1.4, 0.2]]'
  %aiaas endpoints show iris-rf           # its URLs and headers, for requests or curl
  %aiaas predict --form                   # pick a model, give the input
  %aiaas status --widget
  %aiaas deploy all-minilm-l6-v2          # the built-in embedding model, into the running server
  %aiaas embed all-minilm-l6-v2 --input '["a text", "another"]' -o vectors
  %aiaas endpoints add gpt --url https://api.openai.com/v1 --protocol openai --api-key-env OPENAI_API_KEY --model gpt-4o-mini
  %%aiaas ask gpt                         # the cell is the prompt; the answer shows as Markdown
  Summarise what a random forest is in two sentences.

  %aiaas endpoints
  %aiaas undeploy iris-rf
  %aiaas map abs range(-3, 3) -o values   # a function of the notebook over items, on the workers
  %aiaas sweeps                           # hyper-parameter sweeps (%%aiaas sweep --help)
a NAME that is deployed means the deployment; add --endpoint to call a remote endpoint of that name.
run `%aiaas SUBCOMMAND --help` for the options of one subcommand."""

#: examples of single subcommands (their --help), in the same runnable form as EPILOG
SUBCOMMAND_EXAMPLES = {
    "deploy": """
  %aiaas deploy iris-rf                   # its latest version
  %aiaas deploy iris-rf:1                 # one version (redeploying swaps it atomically)
  %aiaas deploy iris-rf@prod              # the version the alias points at now
  %aiaas deploy all-minilm-l6-v2          # the built-in embedding model (also builtin:all-minilm-l6-v2)
  %aiaas deploy iris-rf:2 --canary 10     # version 2 takes 10% of iris-rf's requests, beside the deployed one
  %aiaas deploy iris-rf --rollback        # or --promote: version 2 becomes the deployed one""",
    "export": """
  %aiaas export iris-rf@prod exported/iris-rf --to mlserver   # then: mlserver start exported/iris-rf""",
    "endpoints": """
  %aiaas endpoints                        # deployments and remote endpoints, with their health
  %aiaas endpoints show iris-rf -o ep     # ep.predict_url, ep.headers, ep.verify (aiaas_jupyter.endpoint)
  %aiaas endpoints add gpt --url https://api.openai.com/v1 --protocol openai --api-key-env OPENAI_API_KEY --model gpt-4o-mini""",
    "predict": """
  %aiaas predict iris-rf --input X_test -o preds     # a DataFrame, array, records or texts variable
  %aiaas predict iris-rf --input '[[5.1, 3.5, 1.4, 0.2]]'
  %aiaas predict iris-rf --input @rows.csv           # or @rows.json (records)
  %aiaas predict iris-rf --form
  %aiaas predict iris-rf --input X_test --on-cluster --proba -o scored   # on the workers (a dask/pandas frame)
  %aiaas predict iris-rf --input @data/*.csv --on-cluster --save scored.parquet   # files the workers read""",
    "embed": """
  %aiaas deploy all-minilm-l6-v2          # once: the built-in model, loaded into the running server
  %aiaas embed all-minilm-l6-v2 --input '["a text", "another"]' -o vectors
  %aiaas embed all-minilm-l6-v2 --input '"one text"'
  %aiaas embed all-minilm-l6-v2 --input reviews --column text --on-cluster -o review_vectors  # on the workers""",
    "sweep": """
  %%aiaas sweep --data clean --target label --name iris-rf --block
  from sklearn.ensemble import RandomForestClassifier
  model = RandomForestClassifier(random_state=0)
  space = {"n_estimators": [20, 50], "max_depth": [2, 4, 8]}

  %aiaas sweep show                       # the leaderboard of the latest sweep (or: show ID)
  %%aiaas sweep --data clean --target label --name iris-mlp --search tpe --trials 6 --early-stop asha -o sweep
  import torch                            # a torch space may reach into the network: make_model(params)
  make_model = lambda p: torch.nn.Sequential(torch.nn.Linear(4, p["width"]), torch.nn.ReLU(), torch.nn.Linear(p["width"], 3))
  space = {"lr": loguniform(1e-3, 1e-1), "width": [16, 64]}

  %aiaas sweeps                           # every sweep, its progress and best score
  %aiaas models compare iris-rf 1 2       # what differs between two versions, metrics side by side""",
    "ask": """
  %%aiaas ask gpt -o answer               # the answer streams in as Markdown; its text also goes to `answer`
  Write one sentence about gradient boosting.
""",
}


def _examples(command: str) -> dict:
    """``add_parser`` keywords that put a subcommand's examples under its --help."""
    text = SUBCOMMAND_EXAMPLES.get(command)
    if text is None:
        return {}
    return {"epilog": "examples:" + text.rstrip(), "formatter_class": argparse.RawDescriptionHelpFormatter}


class HelpShown(Exception):
    """``--help`` was asked for and printed; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None):
        if status:
            raise UsageError(f"{self.prog}: {(message or 'error').strip()}")
        raise HelpShown()


def strip_comment(line: str) -> str:
    """Drop a trailing ``# comment`` (outside quotes), as Python would in a code cell."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def build_parser() -> _Parser:
    parser = _Parser(prog="%aiaas", description="AI models as a service from the notebook: "
                     "dispatch preprocessing and training to Dask, register models, serve them and call "
                     "hosted ones.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    p = subs.add_parser("connect", help="start the embedded cluster or attach to a scheduler")
    p.add_argument("address", nargs="?", help="tcp://HOST:PORT of a running scheduler (default: embedded)")
    p.add_argument("--scheduler-file", metavar="FILE", help="JSON file written by `dask scheduler --scheduler-file`")
    p.add_argument("--workers", type=b.whole(1, b.MAX_WORKERS), metavar="N",
                   help="embedded: number of worker processes; gateway: the cluster's size")
    p.add_argument("--threads", type=b.whole(1, b.MAX_WORKERS), metavar="N", help="embedded: threads per worker")
    p.add_argument("--gpus", type=b.whole(0, b.MAX_GPUS), metavar="N",
                   help="embedded: GPU workers to lay out (default: detect)")
    p.add_argument("--timeout", type=b.timeout, metavar="SECONDS", help="connect timeout (default 10)")
    p.add_argument("--gateway", metavar="URL", help="a dask-gateway: create a cluster there (or attach: --cluster); "
                                                    "also as the address gateway://HOST:PORT")
    p.add_argument("--cluster", metavar="NAME", help="gateway: attach to this running cluster")
    p.add_argument("--cluster-options", nargs="+", metavar="KEY=VALUE", help="gateway: the new cluster's options")
    p.add_argument("--adapt", metavar="MIN:MAX", help="gateway: scale between MIN and MAX workers with the load "
                                                      "(--workers N: a fixed size)")

    p = subs.add_parser("disconnect", help="close the connection (and the embedded cluster)")
    p.add_argument("--shutdown", action="store_true", help="also stop the dask-gateway cluster (it keeps running "
                                                           "otherwise, like any external cluster)")
    p = subs.add_parser("status", help="workers, threads, memory, GPUs and the dashboard link")
    p.add_argument("--widget", action="store_true", help="a live widget (connect, scale, workers) instead of a table")

    p = subs.add_parser("preprocess", help="(cell) run the cell with `df` bound to the input, on the cluster")
    p.add_argument("--input", required=True, metavar="PATH_GLOB|URL|VAR",
                   help="CSV/Parquet files (a glob every worker can read, or a URL such as s3://...) "
                        "or a DataFrame variable")
    p.add_argument("--output", required=True, metavar="NAME",
                   help="variable that receives the persisted result")
    p.add_argument("--save", metavar="OUT.parquet", help="also write the result as Parquet")
    p.add_argument("--per-partition", action="store_true", help="run the cell as pandas code on each partition")

    p = subs.add_parser("train", help="(cell) train the `model` the cell defines, on a worker; register it")
    p.add_argument("--data", metavar="NAME", help="DataFrame variable (e.g. a preprocess output)")
    p.add_argument("--target", metavar="COL", help="column to predict")
    p.add_argument("--form", action="store_true",
                   help="(line) an interactive form that writes this cell and trains; the options pre-fill it")
    p.add_argument("--name", metavar="MODEL", help="registry name (default: the model's class name)")
    p.add_argument("--gpus", type=b.whole(0, b.MAX_GPUS), default=D["gpus"], metavar="N",
                   help="GPUs the job needs (%(default)s)")
    p.add_argument("--workers", type=b.whole(1, b.MAX_WORKERS), default=1, metavar="N",
                   help="PyTorch: train one model data-parallel on N workers (DistributedDataParallel; "
                        "--batch-size is per worker) (%(default)s)")
    p.add_argument("--gpus-per-worker", type=b.whole(0, b.MAX_GPUS), default=None, metavar="G",
                   help="with --workers: GPUs each worker needs (default: --gpus)")
    _training_options(p, epochs="PyTorch: epochs (%(default)s)",
                      seed="seed for the split and the training loop (%(default)s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--block", action="store_true", help="wait for the job to finish")
    mode.add_argument("-o", "--out", type=b.identifier, metavar="JOBVAR",
                      help="store the Job in this variable (non-blocking)")

    p = subs.add_parser("jobs", help="list jobs (id, model, status, progress, worker, GPU, times)")
    p.add_argument("--limit", type=b.whole(1, b.MAX_COUNT), default=50, metavar="N")
    for name, text in (("cancel", "cancel a running job"), ("result", "wait for a job; show its model"),
                       ("attach", "re-attach a job still running on an external cluster")):
        p = subs.add_parser(name, help=text)
        p.add_argument("job_id", metavar="ID")
        if name != "cancel":
            p.add_argument("-o", "--out", type=b.identifier, metavar="VAR", help="store the result in this variable")
        if name == "result":
            p.add_argument("--timeout", type=b.timeout, metavar="SECONDS")

    p = subs.add_parser("models", help="list, show, alias or delete registered models")
    msubs = p.add_subparsers(dest="models_command", metavar="ACTION", parser_class=_Parser)
    msubs.add_parser("list", help="every model with its latest version (the default)")
    q = msubs.add_parser("show", help="one version: NAME, NAME:VERSION or NAME@ALIAS")
    q.add_argument("ref", metavar="NAME[:VERSION|@ALIAS]")
    q = msubs.add_parser("alias", help="point ALIAS at VERSION of NAME")
    q.add_argument("name")
    q.add_argument("version", type=b.whole(1, b.MAX_VERSION))
    q.add_argument("alias")
    q = msubs.add_parser("delete", help="delete one version or a whole model")
    q.add_argument("ref", metavar="NAME[:VERSION]")

    q = msubs.add_parser("compare", help="versions side by side: the params that differ, every metric, lineage")
    q.add_argument("name", metavar="NAME")
    q.add_argument("versions", nargs="*", type=b.whole(1, b.MAX_VERSION), metavar="V",
                   help="version numbers (default: all)")

    _add_sweep(subs)
    _add_serving(subs)
    _add_map(subs)
    subs.add_parser("help", help="show this help")
    return parser


def _training_options(p, *, epochs: str, seed: str) -> None:
    """The options `train` and `sweep` share (one bundle, as ipyparallel's magics bundle theirs).
    Defaults from TRAIN_DEFAULTS, shown by %(default)s: the help cannot drift from them."""
    p.add_argument("--test-size", type=b.fraction, default=D["test_size"], metavar="F",
                   help="held-out fraction (%(default)s)")
    p.add_argument("--epochs", type=b.whole(1, b.MAX_COUNT), default=D["epochs"], metavar="E", help=epochs)
    p.add_argument("--batch-size", type=b.whole(1, b.MAX_COUNT), default=D["batch_size"], metavar="B",
                   help="PyTorch: batch size (%(default)s)")
    p.add_argument("--lr", type=b.learning_rate, default=D["lr"], metavar="LR", help="PyTorch: learning rate")
    p.add_argument("--seed", type=b.whole(0, b.MAX_SEED), default=D["seed"], help=seed)


def _add_sweep(subs) -> None:
    from ..sweep_options import DIRECTIONS, EARLY_STOPS, REGISTER, SEARCHES  # stdlib-only leaf

    p = subs.add_parser("sweep", help="(cell) search hyper-parameters of the cell's `model` over its `space` on the "
                                      "cluster; register the best. Or: show|attach|cancel ID",
                        **_examples("sweep"))
    p.add_argument("action", nargs="?", choices=("show", "attach", "cancel"),
                   help="(line) show the leaderboard of sweep ID (default: the latest), attach to it after a "
                        "kernel restart (external cluster), or cancel it")
    p.add_argument("sweep_id", nargs="?", metavar="ID")
    p.add_argument("--data", metavar="NAME", help="DataFrame variable")
    p.add_argument("--target", metavar="COL", help="column to predict")
    p.add_argument("--name", metavar="MODEL", help="registry name of the best model (default: the model's class)")
    p.add_argument("--metric", metavar="M", help="held-out metric to optimise (default accuracy / r2)")
    p.add_argument("--direction", choices=DIRECTIONS, help="max or min (default: from the metric)")
    p.add_argument("--search", choices=SEARCHES,
                   help="grid (every list combination), random or tpe (default: grid when every axis is a list)")
    p.add_argument("--trials", type=b.whole(1, b.MAX_COUNT), metavar="N",
                   help="number of trials (default: the whole grid; 20 for random/tpe)")
    p.add_argument("--early-stop", choices=EARLY_STOPS, default="none",
                   help="stop weak trials by their per-epoch metric (%(default)s)")
    p.add_argument("--grace-period", type=b.whole(1, b.MAX_COUNT), metavar="E",
                   help="epochs (steps) every trial trains before early stopping may judge it "
                        "(default: a fifth of the epochs, at least 1)")
    p.add_argument("--max-concurrent", type=b.whole(1, b.MAX_COUNT), metavar="K",
                   help="trials in flight at most (default: every worker thread / GPU)")
    p.add_argument("--gpus-per-trial", type=b.whole(0, b.MAX_GPUS), default=0, metavar="G",
                   help="GPUs each trial needs (%(default)s)")
    p.add_argument("--register", choices=REGISTER, default="best",
                   help="register the best trial as a version of MODEL (%(default)s)")
    _training_options(p, epochs="PyTorch / partial_fit: epochs per trial (%(default)s; `epochs` in the space "
                               "overrides)", seed="seed of the sampler, the split and every trial (%(default)s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--block", action="store_true", help="wait for the sweep to finish")
    mode.add_argument("-o", "--out", type=b.identifier, metavar="VAR", help="store the Sweep in this variable")
    p = subs.add_parser("sweeps", help="list sweeps (id, model, status, trials, best, version)")
    p.add_argument("--limit", type=b.whole(1, b.MAX_COUNT), default=50, metavar="N")


def _add_serving(subs) -> None:
    from ..cli import add_export_arguments
    from ..protocols import PROTOCOLS  # a stdlib-only leaf: %load_ext stays light

    p = subs.add_parser("deploy", help="serve a registered (or built-in) model on this home's model server",
                        **_examples("deploy"))
    p.add_argument("ref", metavar="MODEL[:VERSION|@ALIAS]",
                   help="a registered model, or a built-in one: all-minilm-l6-v2 (sentence embeddings)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--canary", type=b.number(0, 100, high_open=True, what="a percent between 0 and 100"),
                       metavar="PCT",
                       help="load this version beside the deployed one and send it PCT%% of MODEL's requests")
    split.add_argument("--promote", action="store_true", help="the canary becomes the deployed version")
    split.add_argument("--rollback", action="store_true", help="drop the canary: all requests to the deployed version")
    p = subs.add_parser("export", help="write a registered version as a model folder for MLServer (KServe, "
                                       "Seldon Core)", **_examples("export"))
    add_export_arguments(p)
    p = subs.add_parser("undeploy", help="stop serving a model")
    p.add_argument("name", metavar="MODEL")

    p = subs.add_parser("endpoints", help="list deployments and remote endpoints; show, add or remove one",
                        **_examples("endpoints"))
    esubs = p.add_subparsers(dest="endpoints_command", metavar="ACTION", parser_class=_Parser)
    esubs.add_parser("list", help="deployments and endpoints with their health (the default)")
    q = esubs.add_parser("show", help="URLs and auth headers to call NAME with requests/curl "
                                      "(= aiaas_jupyter.endpoint(NAME))")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--endpoint", action="store_true", help="NAME is a remote endpoint even if deployed")
    q.add_argument("-o", "--out", type=b.identifier, metavar="VAR",
                   help="store it in this variable (.predict_url, .headers, ...)")
    q = esubs.add_parser("add", help="record a remote endpoint (the API key stays in an environment variable)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--url", required=True, type=b.http_url, metavar="URL",
                   help="http(s) base URL (openai: the .../v1 root)")
    q.add_argument("--protocol", required=True, choices=PROTOCOLS, help="v2 (Open Inference), openai or rest")
    q.add_argument("--api-key-env", metavar="VAR", help="NAME of the environment variable holding the key")
    q.add_argument("--model", metavar="REMOTE_NAME", help="the model's name on the remote side (default NAME)")
    q = esubs.add_parser("remove", help="forget a remote endpoint")
    q.add_argument("name", metavar="NAME")

    for name, text in (("predict", "predictions of a deployed model or a v2/rest endpoint"),
                       ("embed", "embeddings from an embedding deployment or an openai endpoint")):
        p = subs.add_parser(name, help=text, **_examples(name))
        form = name == "predict"  # --form: NAME and --input are chosen in the form (see _REQUIRED)
        p.add_argument("name", metavar="NAME", nargs="?" if form else None)
        p.add_argument("--input", required=not form, metavar="VAR|JSON|@FILE",
                       help="a notebook variable, a JSON literal, or @file.json / @file.csv")
        if form:
            p.add_argument("--form", action="store_true", help="an interactive form: pick a model, give the input")
            p.add_argument("--proba", action="store_true",
                           help="class probabilities [N, n_classes] (v2 output predict_proba) instead of labels")
        p.add_argument("--endpoint", action="store_true", help="NAME is a remote endpoint even if deployed")
        p.add_argument("-o", "--out", type=b.identifier, metavar="VAR", help="store the result in this variable")
        c = p.add_argument_group("batch inference on the cluster (--on-cluster)")
        c.add_argument("--on-cluster", action="store_true",
                       help="score on the Dask workers with the registered version (NAME, NAME:V, NAME@ALIAS); "
                            "--input is a dask/pandas DataFrame variable or @GLOB of parquet/csv files"
                       if form else "embed a text column on the Dask workers with the built-in model; "
                                    "--input is a dask/pandas DataFrame variable or @GLOB of parquet/csv files")
        c.add_argument("--column", metavar="COL", help="the text column (default: the frame's one text column)")
        c.add_argument("--save", metavar="PATH|URL",
                       help="the workers write the result there as parquet (a local path, s3://, gs://, ...)")
        c.add_argument("--overwrite", action="store_true", help="replace what --save names")
        c.add_argument("--no-wait", action="store_true", help="return at once; -o VAR receives the BatchJob")
    p = subs.add_parser("ask", help="(cell) send the cell as a prompt to an openai endpoint; show the answer",
                        **_examples("ask"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--out", type=b.identifier, metavar="VAR", help="also store the answer text in this variable")
    p.add_argument("--no-stream", action="store_true",
                   help="wait for the whole answer instead of showing it as it arrives")


def _add_map(subs) -> None:
    p = subs.add_parser("map", help="run a function of the notebook over items on the cluster; results in order",
                        description="FUNC(item) for each item, on the workers (FUNC(a, b) for each pair when two "
                                    "ITEMS are given, as builtin map); the results in order, with a progress bar.")
    p.add_argument("func", metavar="FUNC", help="a function of the notebook (def, lambda), or e.g. np.sqrt")
    p.add_argument("items", nargs="+", metavar="ITEMS",
                   help="a notebook variable, a Python literal ([1, 2, 3]) or range(N)")
    p.add_argument("-o", "--out", type=b.identifier, metavar="VAR",
                   help="store the results (with --no-wait: the MapJob) in VAR")
    p.add_argument("--chunksize", type=b.whole(1, b.MAX_COUNT), metavar="N",
                   help="items per task (default: 1 up to 200 items, then about 16 tasks per worker thread)")
    p.add_argument("--retries", type=b.whole(0, b.MAX_RETRIES), default=0, metavar="N",
                   help="re-run a failing item N times (0)")
    p.add_argument("--gpus", type=b.whole(0, b.MAX_GPUS), default=0, metavar="N",
                   help="GPUs each task needs (0)")
    p.add_argument("--errors", choices=("raise", "return"), default="raise",
                   help="raise: stop at the first failed item (default); return: put its error in its place")
    p.add_argument("--no-wait", action="store_true", help="return at once; -o VAR receives the MapJob")


_PARSER: _Parser | None = None


def parse(line: str) -> argparse.Namespace:
    """Parse one ``%aiaas`` line; raises UsageError or HelpShown."""
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    try:
        argv = arg_split(strip_comment(line), posix=True)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"%aiaas: cannot parse the line: {exc}") from None
    if not argv:
        raise UsageError("%aiaas: missing SUBCOMMAND (see %aiaas --help)")
    args = _PARSER.parse_args(argv)
    if args.command == "help":
        _PARSER.print_help()
        raise HelpShown()
    _check_required(args)
    return args


#: arguments that are required unless ``--form`` asks for a form (which chooses them itself)
_REQUIRED = {"train": (("data", "--data"), ("target", "--target")),
             "predict": (("name", "NAME"), ("input", "--input"))}


def _check_required(args: argparse.Namespace) -> None:
    """argparse's own "required" check, for the arguments ``--form`` makes optional."""
    if getattr(args, "form", False):
        return
    missing = [flag for dest, flag in _REQUIRED.get(args.command, ()) if getattr(args, dest) is None]
    if missing:
        prog = f"%aiaas {args.command}"
        raise UsageError(f"{prog}: the following arguments are required: {', '.join(missing)} "
                         f"(see {prog} --help)")


def full_help() -> str:
    return build_parser().format_help()
