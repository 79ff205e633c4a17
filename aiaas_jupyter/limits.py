"""Limits that more than one layer enforces, written once.

The magic's parser refuses an out-of-range number at parse time (``magics/bounds``) and the
registry refuses it again for every other caller (``registry/names``); both must draw the line
in the same place, or one accepts what the other refuses. Stdlib only and import-free: the
parser reads it at ``%load_ext``, where importing the registry is not allowed.
"""

from __future__ import annotations

#: the largest model version number: SQLite stores 64-bit ints and Python's are unbounded, so a
#: reference like ``m:99999999999999999999999`` must be refused as a bad name, instead of
#: overflowing deep in sqlite3 (an OverflowError the server extension answered with a 500).
#: 2**31-1 (a signed 32-bit integer) is far beyond any real model's history and fits every int
#: type on the way.
MAX_VERSION = 2**31 - 1
