"""argparse ``type=`` functions that bound every number and URL of a ``%aiaas`` line.

Why at parse time: a value that passes the parser travels far before anything else looks at it
(a 30-digit ``--limit`` reached SQLite as an OverflowError, ``--timeout 1e300`` hung a connect,
``--timeout inf`` and port 99999 failed deep inside Dask and httpx). Bounding each option where
it is read turns all of those into one ``UsageError`` naming the option, before any work starts.

The bounds are generous limits of sense, not tuning: nobody waits more than a day for a
connect, lays out more than 1024 workers from a notebook or lists a million jobs in a table.
Versions stop where the registry's do (``limits.MAX_VERSION``).
"""

from __future__ import annotations

import argparse
import keyword
import math
import urllib.parse

# the façade checks the same cluster bounds (connect(timeout=..., n_workers=...)): one source
from ..cluster_args import MAX_GPUS, MAX_WORKERS  # noqa: F401  (--workers/--threads, --gpus)
from ..cluster_args import MAX_TIMEOUT_S as MAX_SECONDS  # the largest timeout: one day
# the registry refuses the same versions (a leaf, not the registry: %load_ext stays light)
from ..limits import MAX_VERSION  # noqa: F401  (models alias NAME VERSION)

MAX_COUNT = 10**6        # --limit, --chunksize, --epochs, --batch-size
MAX_RETRIES = 100
MAX_SEED = 2**32 - 1     # numpy's and scikit-learn's seed range
MAX_LR = 1e3


def whole(lo: int, hi: int):
    """A whole number in ``lo..hi`` (both included)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also int()'s limit on digits: a 5000-digit number is not a number here
            raise argparse.ArgumentTypeError(f"expected a whole number, got {_short(text)}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {_short(text)}")
        return value

    return parse


def number(lo: float, hi: float, *, low_open: bool = True, high_open: bool = False, what: str = ""):
    """A finite number between ``lo`` and ``hi`` (``inf``, ``nan`` and ``1e300`` are refused)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    expected = what or f"a number in {left}{lo:g}, {hi:g}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {_short(text)}") from None
        inside = math.isfinite(value) and (lo < value if low_open else lo <= value) \
            and (value < hi if high_open else value <= hi)
        if not inside:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {_short(text)}")
        return value

    return parse


def identifier(text: str) -> str:
    """A notebook variable name for ``-o``/``--output`` (written into the user's namespace)."""
    if not text.isidentifier() or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"must be a Python identifier, got {_short(text)}")
    return text


def http_url(text: str) -> str:
    """An absolute http(s) URL with a host and, if given, a port in 1..65535.

    The registry checks the rest (no credentials, no secrets in the query); this catches the
    URLs that used to be stored and only failed at the first call (``http://h:99999``).
    """
    try:
        parts = urllib.parse.urlsplit(text.strip())
        port = parts.port  # ValueError when not a number or outside 0..65535
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid URL {_short(text)}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an absolute http:// or https:// URL, got {_short(text)}")
    if port is not None and not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 1 to 65535, got {port}")
    return text


def _short(text: str, limit: int = 40) -> str:
    """The offending text, quoted, cut short: an error line stays one readable line."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


timeout = number(0, MAX_SECONDS, what=f"seconds > 0 and ≤ {MAX_SECONDS} (one day)")
fraction = number(0.0, 1.0, high_open=True, what="a fraction between 0 and 1")
learning_rate = number(0.0, MAX_LR, what=f"a learning rate > 0 and ≤ {MAX_LR:g}")
