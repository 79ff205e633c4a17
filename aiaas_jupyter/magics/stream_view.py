"""A streamed chat answer shown as it arrives: ``%%aiaas ask`` (issue 15 point 6).

In a Jupyter kernel the answer is one Markdown output, re-rendered in place (a display id) as
pieces arrive — at most every :data:`INTERVAL_S`, and once more at the end — so a long answer
reads like a chat window instead of a wait of seconds or minutes. Elsewhere (a terminal IPython)
the pieces are written to stdout as they come. An error in the middle leaves what had arrived on
screen and is raised as its one line.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable

#: the fastest the Markdown output is re-rendered
INTERVAL_S = 0.05


def _in_kernel(shell) -> bool:
    return type(shell).__name__ == "ZMQInteractiveShell"


def show_streamed(pieces: Iterable[str], shell) -> str:
    """Show *pieces* as they arrive; the whole answer once the stream has ended. Nothing is
    shown before the first piece: an error the endpoint answers at once (a wrong key, an
    unknown model) is only its one line."""
    it = iter(pieces)
    first = next(it, None)
    pieces = [] if first is None else _chain(first, it)
    if not _in_kernel(shell):
        parts = []
        for piece in pieces:
            parts.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return "".join(parts)
    from IPython.display import Markdown, display

    handle = display(Markdown("…"), display_id=True)
    parts: list[str] = []
    last = 0.0
    try:
        for piece in pieces:
            parts.append(piece)
            now = time.monotonic()
            if now - last >= INTERVAL_S:
                handle.update(Markdown("".join(parts) + " ▍"))
                last = now
    finally:  # on an error too: what arrived stays on screen, without the cursor
        handle.update(Markdown("".join(parts) or "*(no answer)*"))
    return "".join(parts)


def _chain(first: str, rest):
    yield first
    yield from rest
