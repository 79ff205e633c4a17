"""The notebook's live views of jobs and maps, and the presenter that shows them.

In a Jupyter kernel a training job shows the ``JobProgress`` widget (setting
``aiaas.jobs.widget``; it updates itself over comm messages), elsewhere — or without the widget —
its HTML view, redrawn in place through a display id. A map shows a bar redrawn the same way (in
a kernel) or one line of text on stderr (:class:`~aiaas_jupyter.presenting.TextMapView`). A sweep shows its
leaderboard (:class:`~.leaderboard.SweepBoard`) in a kernel, its plain repr at the end elsewhere. Every
view follows its job through ``add_listener``; the job knows nothing of it.

Why the parent-header dance in :func:`_update`: updates come from Dask's threads, which
ipykernel would attribute to the cell that started them (``%aiaas connect``); front-ends only
listen to the cell running now, so they are sent as that cell's output (the train cell itself
while it is running).

:class:`NotebookPresenter` is what ``aiaas_jupyter/__init__.py`` installs for the default
client in a kernel (``%load_ext`` or ``import aiaas_jupyter``): the façade never imports this.
"""

from __future__ import annotations

import logging
import time

from ..presenting import PlainPresenter
from ..registry.jobs_table import TERMINAL
from ..settings import config

_log = logging.getLogger(__name__)


def _in_kernel(shell) -> bool:
    """Live in-place updates only make sense where a front-end renders display ids."""
    return type(shell).__name__ == "ZMQInteractiveShell"


def _interval() -> float:
    return float(config("jobs.display-interval"))


def _update(handle, pub, obj, **kwargs) -> None:
    """``handle.update(obj)`` as output of the cell running now (see the module docstring)."""
    token = None
    latest = getattr(pub, "_parent_header_global", None)
    if latest and hasattr(pub, "set_thread_parent"):
        token = pub.set_thread_parent(latest)
    try:
        handle.update(obj, **kwargs)
    finally:
        if token is not None:
            pub.reset_thread_parent(token)


def progress_widget(job, shell, client=None):
    """A JobProgress for *job* in a Jupyter kernel (setting ``aiaas.jobs.widget``), else None."""
    if not _in_kernel(shell) or str(config("jobs.widget")).lower() in ("false", "0", "no"):
        return None
    try:
        from .progress import JobProgress

        return JobProgress(job, client=client)
    except ImportError:  # ipywidgets / matplotlib missing: the HTML view still works
        return None
    except Exception:  # noqa: BLE001 - a widget bug must not cost the job its live view
        _log.exception("aiaas: could not build the JobProgress widget; showing the HTML view")
        return None


class LiveJobView:
    """One job's output in the current cell: the widget (rewritten once, at the end, so a saved
    notebook keeps the final text/html and the lineage) or the HTML view (redrawn, throttled)."""

    def __init__(self, job, client=None, interval: float | None = None):
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self.job = job
        self.interval = _interval() if interval is None else interval
        self._pub = getattr(shell, "display_pub", None)
        self._last_draw = 0.0
        self.widget = progress_widget(job, shell, client)
        self.handle = display(self.widget if self.widget is not None else job, display_id=True,
                              metadata=job.lineage())
        self.remove = job.add_listener(self._on_job)

    def _on_job(self, job, event) -> None:
        self.redraw(force=event is None or event.get("stage") in ("start", "done"))

    def redraw(self, force: bool = False) -> None:
        if self.handle is None:
            return
        if self.widget is not None and not (force and self.job.status in TERMINAL):
            return  # the widget follows the job by itself
        now = time.monotonic()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        _update(self.handle, self._pub, self.widget if self.widget is not None else self.job,
                metadata=self.job.lineage())


class LiveMapView:
    """A map's bar in the current cell, redrawn in place (throttled) until it ends."""

    def __init__(self, map_job, interval: float | None = None):
        from IPython import get_ipython
        from IPython.display import display

        self.map_job = map_job
        self.interval = _interval() if interval is None else interval
        self._pub = getattr(get_ipython(), "display_pub", None)
        self._last_draw = 0.0
        self.handle = display(map_job, display_id=True)
        map_job.add_listener(self._on_map)

    def _on_map(self, map_job, event) -> None:
        now = time.monotonic()
        if event is not None and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        _update(self.handle, self._pub, map_job)


def sweep_board(sweep, shell):
    """A SweepBoard for *sweep* in a Jupyter kernel (setting ``aiaas.jobs.widget``), else None."""
    if not _in_kernel(shell) or str(config("jobs.widget")).lower() in ("false", "0", "no"):
        return None
    try:
        from .leaderboard import SweepBoard

        return SweepBoard(sweep)
    except ImportError:  # ipywidgets / matplotlib missing: the HTML view still works
        return None
    except Exception:  # noqa: BLE001 - a widget bug must not cost the sweep its live view
        _log.exception("aiaas: could not build the SweepBoard widget; showing the HTML view")
        return None


class LiveSweepView:
    """A sweep's leaderboard in the current cell: the SweepBoard (which follows the sweep by
    itself; its output is rewritten once, at the end, so a saved notebook keeps the final
    text/html) or, without it, the sweep's HTML summary redrawn in place (throttled)."""

    def __init__(self, sweep, interval: float | None = None):
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self.sweep = sweep
        self.interval = _interval() if interval is None else interval
        self._pub = getattr(shell, "display_pub", None)
        self._last_draw = 0.0
        self.widget = sweep_board(sweep, shell)
        self.handle = display(self.widget if self.widget is not None else sweep, display_id=True)
        self.remove = sweep.add_listener(self._on_sweep)

    def _on_sweep(self, sweep, event) -> None:
        if self.handle is None or (self.widget is not None and event is not None):
            return
        now = time.monotonic()
        if event is not None and event.get("kind") != "trial" and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        _update(self.handle, self._pub, self.widget if self.widget is not None else sweep)


def show_sweep(sweep, client=None) -> LiveSweepView:
    """Show *sweep*'s live leaderboard in the current cell (see :class:`LiveSweepView`)."""
    return LiveSweepView(sweep)


def show_job(job, client=None) -> LiveJobView:
    """Show *job* live in the current cell (see :class:`LiveJobView`)."""
    return LiveJobView(job, client)


class NotebookPresenter(PlainPresenter):
    """The default client's presenter in IPython: live views in the cell, text elsewhere."""

    def __init__(self, client=None):
        super().__init__()
        self.client = client

    def show_job(self, job) -> None:
        from IPython import get_ipython

        if get_ipython() is None:
            return super().show_job(job)
        show_job(job, self.client)

    def show_map(self, map_job, block: bool) -> None:
        from IPython import get_ipython

        if _in_kernel(get_ipython()):
            LiveMapView(map_job)
        else:
            super().show_map(map_job, block)

    def show_sweep(self, sweep, block: bool) -> None:
        from IPython import get_ipython

        if _in_kernel(get_ipython()):
            show_sweep(sweep, self.client)
        else:  # a terminal or a script: the plain repr once it ends
            super().show_sweep(sweep, block)


__all__ = ["NotebookPresenter", "LiveJobView", "LiveMapView", "LiveSweepView", "show_job", "show_sweep",
           "progress_widget", "sweep_board"]
