"""``python -m aiaas_jupyter.serving serve --home HOME ...``: the same as ``aiaas serve``.

Only the entry point, with the same options (:mod:`.serve_options`); the server itself is
:mod:`.run_server`. It imports nothing above the serving package.
"""

import argparse
import sys

from .serve_options import SERVE_DESCRIPTION, SERVE_HELP, add_serve_arguments, run_serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aiaas_jupyter.serving",
                                description="Run this registry home's model server.")
    sub = p.add_subparsers(dest="command", required=True)
    add_serve_arguments(sub.add_parser("serve", help=SERVE_HELP, description=SERVE_DESCRIPTION))
    return run_serve(p.parse_args(argv), "aiaas serve")


sys.exit(main())
