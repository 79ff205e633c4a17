"""How the façade shows a job or a map it started: a :class:`Presenter`, chosen by the front-end.

Why: a job is data and a handle; how it looks depends on where the user is (a Jupyter kernel
renders widgets and display-id updates, a script has only stderr). The façade must not import
Jupyter to find out, so it calls its ``presenter`` and the top layer installs the notebook one
(``widgets/live_views.py``, from ``aiaas_jupyter/__init__.py`` / ``%load_ext``). The plain
presenter here is the default everywhere else: a job shows nothing, a blocking map writes one
line of text on stderr (redrawn in place on a terminal).

Views follow what they show through ``add_listener``; they never reach into it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .job_handle import Job
    from .map_job import MapJob
    from .sweep_handle import Sweep


class Presenter(Protocol):
    def show_job(self, job: "Job") -> None:
        """Show a training job that was just submitted (``train(display=True)``)."""

    def show_map(self, map_job: "MapJob", block: bool) -> None:
        """Show a map's progress (``map(progress=True)``); *block*: the caller waits for it."""

    def show_sweep(self, sweep: "Sweep", block: bool) -> None:
        """Show a sweep's leaderboard as it runs (``sweep(display=True)``); *block*: the caller waits."""


class TextMapView:
    """A map as one line of text on a stream: redrawn in place on a terminal, only the final
    line in a log. Follows the map through ``add_listener``."""

    def __init__(self, map_job: "MapJob", stream=None, interval: float = 0.25):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._last_draw = 0.0
        self._final_written = False
        self._lock = threading.Lock()
        map_job.add_listener(self._on_map)

    def _on_map(self, map_job: "MapJob", event) -> None:
        self.draw(map_job, force=event is None)

    def draw(self, map_job: "MapJob", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        from .registry.jobs_table import TERMINAL

        final = map_job.status in TERMINAL
        with self._lock:
            if self._final_written or not (final or self.stream.isatty()):  # a log gets the last line only
                return
            self._final_written = final
        self.stream.write(f"\r{map_job!r}" + ("\n" if final else ""))
        self.stream.flush()


class PlainPresenter:
    """Outside a notebook: a job shows nothing, a blocking map one line on stderr."""

    def __init__(self, interval: float | None = None):
        self.interval = interval

    def _interval(self) -> float:
        from .settings import config

        return float(config("jobs.display-interval")) if self.interval is None else self.interval

    def show_job(self, job: "Job") -> None:
        return None

    def show_map(self, map_job: "MapJob", block: bool) -> None:
        if block:  # no text from a background map outside a kernel
            TextMapView(map_job, interval=self._interval())

    def show_sweep(self, sweep: "Sweep", block: bool) -> None:
        if block:  # one line when it ends, as a blocking map's: a script's log stays readable
            stream = sys.stderr
            sweep.add_listener(lambda s, event: event is None and stream.write(f"{s!r}\n"))


#: the front-end's presenter factory ``(client) -> Presenter``, installed from the top layer
_installed: "Callable[[object], Presenter] | None" = None


def install(factory: "Callable[[object], Presenter] | None") -> None:
    """Make *factory* the default client's presenter (``aiaas_jupyter/__init__.py`` does, in IPython)."""
    global _installed
    _installed = factory


class InstalledPresenter:
    """The default client's presenter: whatever the front-end installed when a job is shown
    (so ``import aiaas_jupyter`` and ``%load_ext`` may come in either order), else plain."""

    def __init__(self, client=None):
        self.client = client

    def current(self) -> Presenter:
        return _installed(self.client) if _installed is not None else PlainPresenter()

    def show_job(self, job: "Job") -> None:
        self.current().show_job(job)

    def show_map(self, map_job: "MapJob", block: bool) -> None:
        self.current().show_map(map_job, block)

    def show_sweep(self, sweep: "Sweep", block: bool) -> None:
        self.current().show_sweep(sweep, block)


__all__ = ["Presenter", "PlainPresenter", "TextMapView", "InstalledPresenter", "install"]
