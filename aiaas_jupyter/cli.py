"""The ``aiaas`` command: ``aiaas serve`` runs the model server in the foreground (until stopped,
idle for ``--idle-timeout``, or its home is removed); ``aiaas status`` and ``aiaas stop`` find
and stop the one of a registry home.

Only argparse at import time: the server's web stack is imported when ``serve`` runs.
The token is never printed — only the path of the file that holds it.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiaas", description="AI models as a service: the model server.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry's deployed models over HTTP (foreground)",
                       description="Serve deployed models (Open Inference Protocol v2, /predict, "
                                   "OpenAI embeddings, admin API). State goes to HOME/server/.")
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
    s.add_argument("--embeddings", action="store_true",
                   help="also serve the built-in all-MiniLM-L6-v2 embedding model")
    s.add_argument("--deploy", nargs="+", metavar="REF", default=[],
                   help="deploy these registry refs (NAME, NAME:V, NAME@ALIAS) at start")
    for name, text in (("status", "show the home's running server"), ("stop", "stop the home's server")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--home", help="registry home")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        if args.max_batch_size < 1 or args.max_wait_ms < 0 or args.max_body_bytes < 1 or args.timeout_s <= 0:
            print("aiaas serve: limits must be positive", file=sys.stderr)
            return 2
        from .serving.run_server import serve

        return serve(args)
    from .serving import state

    if args.command == "status":
        info = state.find_server(args.home)
        if info is None:
            print("no model server running")
            return 1
        print(f"{info.url} pid {info.pid} started {info.started} version {info.version} "
              f"(token in {state.server_dir(args.home) / 'token'})")
        return 0
    print("stopped" if state.stop_server(args.home) else "no model server running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
