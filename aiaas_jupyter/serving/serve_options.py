"""The options of ``serve`` (the model server in the foreground), declared once.

Both entry points read them: ``aiaas serve`` (:mod:`aiaas_jupyter.cli`, a front-end) and
``python -m aiaas_jupyter.serving serve`` (what :func:`.state.ensure_server` starts detached).
Declared here, in the server's own package, so the server's entry point needs nothing from the
CLI above it and both accept exactly the same options. Only argparse: no web stack at import.
"""

from __future__ import annotations

import argparse


def add_serve_arguments(s: argparse.ArgumentParser) -> argparse.ArgumentParser:
    s.add_argument("--home", help="registry home (default: $AIAAS_HOME or <jupyter data dir>/aiaas)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    s.add_argument("--tls-cert", help="PEM certificate file: serve HTTPS (with --tls-key)")
    s.add_argument("--tls-key", help="PEM private key file for --tls-cert")
    s.add_argument("--max-batch-size", type=int, default=64, help="most rows per model call (default 64)")
    s.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="longest wait for a batch to fill under load (default 2; never when idle)")
    s.add_argument("--max-body-bytes", type=int, default=8 << 20, help="request size limit (default 8 MiB)")
    s.add_argument("--timeout-s", type=float, default=30.0, help="per-request timeout (default 30)")
    s.add_argument("--idle-timeout", metavar="DURATION",
                   help="exit after this long without a request, e.g. 30m, 2h, 0 for never "
                        "(default: aiaas.server.idle-timeout, 2h)")
    s.add_argument("--workers", type=int, metavar="N", default=None,
                   help="serving processes on one port, each with its own models and batching "
                        "(default: the machine's cores)")
    s.add_argument("--embeddings", action="store_true",
                   help="also serve the built-in all-MiniLM-L6-v2 embedding model")
    s.add_argument("--deploy", nargs="+", metavar="REF", default=[],
                   help="deploy these registry refs (NAME, NAME:V, NAME@ALIAS) at start")
    return s


SERVE_HELP = "serve the registry's deployed models over HTTP (foreground)"
SERVE_DESCRIPTION = ("Serve deployed models (Open Inference Protocol v2, /predict, "
                     "OpenAI embeddings, admin API). State goes to HOME/server/.")


def run_serve(args: argparse.Namespace, prog: str) -> int:
    """Check the limits (one line on stderr, exit 2) and run the server until it stops."""
    import sys

    if args.max_batch_size < 1 or args.max_wait_ms < 0 or args.max_body_bytes < 1 or args.timeout_s <= 0:
        print(f"{prog}: limits must be positive", file=sys.stderr)
        return 2
    if args.workers is None:
        import os

        args.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not 1 <= args.workers <= 512:
        print(f"{prog}: --workers must be between 1 and 512, got {args.workers}", file=sys.stderr)
        return 2
    from .run_server import serve

    return serve(args)
