"""JobProgress: the widget every training job shows (the forms' jobs and ``%%aiaas train``).

A progress bar, status and epoch, live loss/metric curves, the final metrics, and the three
things one does next with a job: cancel it, deploy its model, or turn it back into the
``%%aiaas train`` cell that reproduces it ("Copy as magic").

Why it follows the job through ``Job.add_listener``: events arrive on Dask's threads, and
setting widget traits there is fine in ipywidgets 8 (each change is a comm message, which the
front-end routes by comm id, not by the cell that is running), so the widget needs no polling
and no kernel round trip. The curves are redrawn off Dask's event loop (:mod:`.plot`). The
text/plain and text/html of the widget carry no ids, addresses or timings, so non-widget
front-ends and nbval see a stable summary.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as w

from ..registry.jobs_table import TERMINAL
from ..train_defaults import TRAIN_DEFAULTS as DEFAULTS
from .feedback import error_html, note_html, num, one_line
from .plot import PLOT_INTERVAL, Throttled, epoch_rows, render_png
from .roundtrip import train_magic

_BAR_STYLE = {"finished": "success", "error": "danger", "cancelled": "warning", "lost": "warning"}


class JobProgress(w.VBox):
    """Live view of one :class:`~aiaas_jupyter.job_handle.Job`; ``client`` deploys (default: the kernel's)."""

    def __init__(self, job, client=None, plot_interval: float = PLOT_INTERVAL, **kwargs):
        self.job, self._client = job, client
        self.deployment = None  # what Deploy returned
        self.title = w.HTML(f"<b>aiaas job</b> <code>{html.escape(job.id)}</code> · model "
                            f"<b>{html.escape(job.record.model or '')}</b>")
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="280px"))
        self.status = w.Label("pending", layout=w.Layout(margin="0 0 0 1em"))
        self.epoch = w.Label("", layout=w.Layout(margin="0 0 0 1em"))
        self.plot = w.Image(format="png", layout=w.Layout(display="none"))
        self.metrics = w.HTML("")
        self.error = w.HTML("")
        self.cancel_button = w.Button(description="Cancel", icon="stop", tooltip="cancel the job")
        self.deploy_button = w.Button(description="Deploy", icon="rocket", disabled=True,
                                      tooltip="serve the registered model on this home's model server")
        self.copy_button = w.Button(description="Copy as magic", icon="copy",
                                    tooltip="the %%aiaas train cell that reproduces this job")
        self.message = w.HTML("")
        self.magic = w.Textarea(layout=w.Layout(display="none", width="100%", height="9em"))
        self.cancel_button.on_click(self._on_cancel)
        self.deploy_button.on_click(self._on_deploy)
        self.copy_button.on_click(self._on_copy)
        super().__init__([self.title, w.HBox([self.bar, self.status, self.epoch]), self.plot, self.metrics,
                          self.error, w.HBox([self.cancel_button, self.deploy_button, self.copy_button]),
                          self.message, self.magic], **kwargs)
        self.add_class("aiaas-job-progress")
        self._lock = threading.Lock()
        self._plotter = Throttled(self._draw_plot, plot_interval)
        self.plots_drawn = 0  # how many times the curves were drawn, and with how many epochs
        self.plotted_epochs = 0
        self._sync()
        self._remove_listener = job.add_listener(self._on_job)

    @property
    def client(self):
        """The façade Deploy uses: the one passed in, else the kernel's default."""
        if self._client is None:
            from ..client import get_client

            self._client = get_client()
        return self._client

    # -- following the job (Dask threads) -----------------------------------------------
    def _on_job(self, job, event) -> None:
        self._sync()
        if event is None:
            self._plotter.final()
            self._show_final()
        elif event.get("stage") == "epoch":
            self._plotter.request()

    def _sync(self) -> None:
        job = self.job
        with self._lock:
            status = job.status
            self.bar.value = 1.0 if status == "finished" else min(max(job.progress, 0.0), 1.0)
            self.bar.bar_style = _BAR_STYLE.get(status, "info")
            seconds = job.record.duration_s
            self.status.value = f"finished in {seconds:.2f} s" if status == "finished" and seconds else status
            ev = next((e for e in reversed(job.events) if e.get("epoch") is not None), None)
            if ev is not None:
                self.epoch.value = f"epoch {ev['epoch']}/{ev.get('epochs', '?')}"
            elif job.latest.get("stage") in ("fit", "evaluate") and status not in TERMINAL:
                self.epoch.value = f"stage: {job.latest['stage']}"
            elif status in TERMINAL:
                self.epoch.value = ""  # a model without epochs: the stage label has nothing more to say
            ended = status in TERMINAL
            self.cancel_button.disabled = ended or job.future is None
            self.deploy_button.disabled = job.version is None

    def _rows(self) -> list[dict]:
        rows = epoch_rows(self.job.events)
        if not rows and self.job.version is not None:  # a job of an earlier kernel: its stored history
            rows = epoch_rows([dict(e, stage="epoch") for e in self.job.version.extra.get("history") or []])
        return rows

    def _draw_plot(self) -> None:
        rows = self._rows()
        png = render_png(rows, title=self.job.record.model or "")
        if png is not None:
            self.plotted_epochs = len(rows)
            self.plot.value = png
            self.plot.layout.display = None
            self.plots_drawn += 1

    def _show_final(self) -> None:
        job, v = self.job, self.job.version
        if v is not None:
            rows = [("registered", f"<code>{html.escape(v.ref)}</code>")]
            rows += [(html.escape(k), num(val)) for k, val in (v.metrics or {}).items()]
            if v.extra.get("device"):
                rows.append(("device", html.escape(str(v.extra["device"]))))
            cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th>"
                            f"<td style='text-align:left'>{val}</td></tr>" for k, val in rows)
            self.metrics.value = f"<table class='aiaas-metrics'>{cells}</table>"
        if "cancelling" in self.message.value:
            self.message.value = ""
        if job.error is not None:
            self.error.value = error_html(f"{type(job.error).__name__}: {' '.join(str(job.error).split())}")

    # -- buttons (the kernel's thread) ---------------------------------------------------
    def _on_cancel(self, _=None) -> None:
        try:
            self.cancel_button.disabled = True
            self.job.cancel()
            if not self.job.done():
                self.message.value = note_html("cancelling…")
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not lost in a log
            self.message.value = error_html(one_line(exc))

    def _on_deploy(self, _=None) -> None:
        version = self.job.version
        if version is None:
            self.message.value = error_html("the job has registered no model yet; deploy it when it has finished")
            return
        self.deploy_button.disabled = True
        self.message.value = note_html(f"deploying {version.ref}…")
        try:
            dep = self.client.deploy(version.ref)
        except Exception as exc:  # noqa: BLE001
            self.message.value = error_html(one_line(exc))
        else:
            self.deployment = dep
            url = html.escape(dep.url)
            self.message.value = (f"<span class='aiaas-deployed'>deployed <b>{html.escape(dep.ref)}</b> at "
                                  f"<a href='{url}' target='_blank'><code>{url}</code></a> "
                                  f"(POST <code>{html.escape(dep.infer_url)}</code>)</span>")
        finally:
            self.deploy_button.disabled = self.job.version is None

    def magic_text(self) -> str:
        """The ``%%aiaas train`` cell that reproduces this job (arguments from the job record)."""
        info = self.job.record.info or {}
        params = dict(DEFAULTS)
        given = info.get("train")
        if given is None and self.job.version is not None:  # an older record: what the version kept
            given = {k: self.job.version.params.get(k) for k in ("epochs", "batch_size", "lr", "seed")
                     if self.job.version.params.get(k) is not None}
        params.update({k: v for k, v in (given or {}).items() if k in DEFAULTS})
        body = info.get("source") or "model = ...  # the code that defined the model was not recorded"
        return train_magic(data=info.get("data") or "DATA", target=info.get("target") or "TARGET",
                           body=body, name=self.job.record.model, **params)

    def _on_copy(self, _=None) -> None:
        try:
            text = self.magic_text()
        except Exception as exc:  # noqa: BLE001
            self.message.value = error_html(one_line(exc))
            return
        self.magic.value = text
        self.magic.layout.display = None
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:  # in JupyterLab the cell appears with the reply of the next execution
            shell.set_next_input(text)
        self.message.value = note_html("the equivalent cell is below (and is offered as the next cell)")

    def close(self) -> None:
        self._remove_listener()
        self._plotter.stop()
        super().close()

    # -- how it looks without a widget front-end -------------------------------------------
    def _summary(self) -> list[tuple[str, str]]:
        job = self.job
        out = [("model", job.record.model or ""), ("framework", (job.record.info or {}).get("framework", "")),
               ("status", job.status)]
        if self.epoch.value:
            out.append(("progress", self.epoch.value))
        if job.version is not None:
            out.append(("registered", job.version.ref))
        if job.error is not None:
            out.append(("error", type(job.error).__name__))
        return [(k, v) for k, v in out if v]

    def __repr__(self) -> str:
        return "JobProgress(" + ", ".join(f"{k}={v}" for k, v in self._summary()) + ")"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if data is None:  # a closed widget
            return None
        data["text/plain"] = repr(self)
        rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._summary())
        metrics = self.metrics.value if self.job.version is not None else ""
        data["text/html"] = f"<div class='aiaas-job'><b>aiaas job</b><table>{rows}</table>{metrics}</div>"
        return data


__all__ = ["JobProgress"]
