"""``python -m aiaas_jupyter.serving serve --home HOME ...``: the same as ``aiaas serve``.

Only the entry point: the server itself is :mod:`.run_server`, so the CLI and this module never
import each other.
"""

import sys

from ..cli import main

sys.exit(main())
