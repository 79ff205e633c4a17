"""The ``aiaas`` command: ``aiaas serve`` runs the model server in the foreground (until stopped,
idle for ``--idle-timeout``, or its home is removed); ``aiaas status`` and ``aiaas stop`` find
and stop the one of a registry home.

Only argparse at import time: the server's web stack is imported when ``serve`` runs.
The token is never printed — only the path of the file that holds it.
"""

from __future__ import annotations

import argparse
import sys

from .serving.serve_options import SERVE_DESCRIPTION, SERVE_HELP, add_serve_arguments, run_serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiaas", description="AI models as a service: the model server.")
    sub = p.add_subparsers(dest="command", required=True)
    add_serve_arguments(sub.add_parser("serve", help=SERVE_HELP, description=SERVE_DESCRIPTION))
    for name, text in (("status", "show the home's running server"), ("stop", "stop the home's server")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--home", help="registry home")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return run_serve(args, "aiaas serve")
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
