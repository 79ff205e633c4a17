"""The ``aiaas`` command: ``aiaas serve`` runs the model server in the foreground (until stopped,
idle for ``--idle-timeout``, or its home is removed); ``aiaas status`` and ``aiaas stop`` find
and stop the one of a registry home; ``aiaas export`` writes a registered version as a model
folder another server runs (MLServer, and so KServe and Seldon Core).

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
    e = sub.add_parser("export", help="write a registered version as a model folder for another server "
                                      "(MLServer, hence KServe / Seldon Core)")
    add_export_arguments(e)
    e.add_argument("--home", help="registry home")
    return p


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """``REF DIR --to mlserver [--name NAME] [--overwrite]``: the same for ``aiaas`` and ``%aiaas``."""
    from .protocols import EXPORT_TARGETS

    p.add_argument("ref", metavar="MODEL[:VERSION|@ALIAS]")
    p.add_argument("directory", metavar="DIR", help="the model folder to write (created; must be empty)")
    p.add_argument("--to", choices=EXPORT_TARGETS, required=True, help="the server that will serve it")
    p.add_argument("--name", metavar="NAME", help="the model's name there (default: its registry name)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in DIR")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return run_serve(args, "aiaas serve")
    if args.command == "export":
        return _export(args)
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


def _export(args) -> int:
    from .errors import AiaasError
    from .model_export import export_model
    from .registry import Registry

    try:
        folder = export_model(Registry(args.home), args.ref, args.directory, to=args.to, name=args.name,
                              overwrite=args.overwrite)
    except AiaasError as e:
        print(f"aiaas export: {e}", file=sys.stderr)
        return 1
    print(f"exported {args.ref} to {folder} (serve it: mlserver start {folder}; docs/serving.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
