"""The one clock for every timestamp the project writes (registry rows, deployments, snapshots).

ISO-8601 in UTC with a fixed width (microseconds, ``+00:00``), so timestamps written by the
kernel, the model server and the registry compare and sort correctly as text, and two events in
the same second keep their order. Stdlib only: every layer may import it.
"""

from __future__ import annotations

import datetime as _dt


def now() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def now_iso() -> str:
    """The current time as fixed-width ISO-8601 UTC text (microseconds)."""
    return now().isoformat(timespec="microseconds")


def parse_iso(text: str) -> _dt.datetime:
    """Read back what :func:`now_iso` (or an older, seconds-precision writer) wrote."""
    return _dt.datetime.fromisoformat(text)


def age_seconds(iso: str | None) -> float:
    """Seconds since *iso* (0 when unknown)."""
    if not iso:
        return 0.0
    return (now() - parse_iso(iso)).total_seconds()


def short_time(iso: str | None) -> str:
    """A stored timestamp as local ``YYYY-MM-DD HH:MM:SS`` for tables ("" for none; unparsable: as is)."""
    if not iso:
        return ""
    try:
        return parse_iso(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso
