"""ClusterWidget: the Dask cluster behind the kernel — look at it, connect, scale, disconnect.

It shows what ``%aiaas status`` shows (``client.cluster_summary()``: workers, threads,
memory, GPUs per worker) and offers the actions a user otherwise types: connect (an address,
or nothing for the embedded cluster), disconnect, and scale. Scaling only exists for the
embedded LocalCluster this kernel started (``cluster.scale(n)``); an external cluster is
sized by whoever runs it, so the control is disabled with a note saying so. The widget
waits for the new worker count (bounded), so what it shows after Scale is the cluster as it is.
"""

from __future__ import annotations

import html
import time

import ipywidgets as w

from .feedback import error_html, note_html, one_line

#: seconds Scale waits for the cluster to reach the asked number of workers
SCALE_TIMEOUT = 90.0


class ClusterWidget(w.VBox):
    """``client``: the façade (default: the kernel's)."""

    def __init__(self, client=None, **kwargs):
        self._client = client
        self.summary: dict | None = None  # the last cluster summary shown (None: not connected)
        self.info = w.HTML("")
        self.table = w.HTML("")
        self.address = w.Text(placeholder="tcp://host:8786 (empty: start the embedded cluster)",
                              description="scheduler", layout=w.Layout(width="420px"))
        self.connect_button = w.Button(description="Connect", icon="plug", button_style="primary")
        self.disconnect_button = w.Button(description="Disconnect", icon="times")
        self.workers = w.BoundedIntText(value=1, min=0, max=256, description="workers",
                                        layout=w.Layout(width="160px"))
        self.scale_button = w.Button(description="Scale", icon="sliders")
        self.scale_note = w.HTML("")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.message = w.HTML("")
        self.connect_button.on_click(self._guard(self._connect))
        self.disconnect_button.on_click(self._guard(self._disconnect))
        self.scale_button.on_click(self._guard(lambda: self.scale(self.workers.value)))
        self.refresh_button.on_click(self._guard(self.refresh))
        super().__init__([self.info, self.table, w.HBox([self.address, self.connect_button, self.disconnect_button]),
                          w.HBox([self.workers, self.scale_button, self.scale_note]), self.refresh_button,
                          self.message], **kwargs)
        self.add_class("aiaas-cluster-widget")
        self._guard(self.refresh)()

    @property
    def client(self):
        if self._client is None:
            from ..client import get_client

            self._client = get_client()
        return self._client

    def _guard(self, action):
        """A button callback that shows its error as one line instead of raising into the log."""
        def run(*_):
            self.message.value = ""
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self.message.value = error_html(one_line(exc))
        return run

    def refresh(self) -> None:
        """Read the cluster again (one scheduler call) and redraw."""
        from ..views import cluster_table

        connected = self.client.dask is not None and self.client.dask.status not in ("closed", "closing")
        self.summary = self.client.cluster_summary() if connected else None
        embedded = self.client.embedded
        self.disconnect_button.disabled = not connected
        can_scale = connected and embedded and hasattr(self.client.cluster, "scale")
        self.scale_button.disabled = self.workers.disabled = not can_scale
        if self.summary is None:
            self.info.value = note_html("not connected: Connect starts the embedded cluster, "
                                        "or give a scheduler address")
            self.table.value = ""
            self.scale_note.value = ""
            return
        s = self.summary
        kind = "embedded LocalCluster" if embedded else "external cluster"
        dash = (f" · <a href='{html.escape(s['dashboard'])}' target='_blank'>dashboard</a>"
                if s.get("dashboard") else "")
        self.info.value = (f"<b>Dask {kind}</b> at <code>{html.escape(s['scheduler'])}</code>: "
                           f"<span class='aiaas-workers'>{s['n_workers']} workers</span>, {s['threads']} threads, "
                           f"{s['memory_gb']:.1f} GiB, <span class='aiaas-gpus'>{s['gpus']} GPUs</span>{dash}")
        table = cluster_table(s, embedded=embedded)
        table.title = ""
        table.note = ""
        self.table.value = table._repr_html_()
        self.workers.value = s["n_workers"]
        self.scale_note.value = "" if can_scale else note_html(
            "an external cluster is scaled by whoever runs it (dask worker ..., or its cluster manager)")

    def _connect(self) -> None:
        address = self.address.value.strip() or None
        self.message.value = note_html(f"connecting to {address}…" if address else "starting the embedded cluster…")
        self.client.connect(address)
        self.message.value = ""
        self.refresh()

    def _disconnect(self) -> None:
        self.client.disconnect()
        self.refresh()

    def scale(self, n: int, timeout: float = SCALE_TIMEOUT) -> None:
        """Ask the embedded cluster for ``n`` workers and wait (bounded) until it has them."""
        from ..errors import ClusterError

        dask_client = self.client.require_dask()
        if not self.client.embedded:
            raise ClusterError("only the embedded cluster can be scaled from here",
                               hint="scale an external cluster where it runs")
        if n < 1:
            raise ClusterError(f"a cluster needs at least one worker, got {n}", hint="or Disconnect")
        self.message.value = note_html(f"scaling to {n} workers…")
        self.client.cluster.scale(n)
        deadline = time.monotonic() + timeout
        while len(dask_client.scheduler_info(n_workers=-1).get("workers", {})) != n:
            if time.monotonic() > deadline:
                self.refresh()
                raise ClusterError(f"the cluster did not reach {n} workers within {timeout:g} s "
                                   f"(it has {self.summary['n_workers'] if self.summary else 0})")
            time.sleep(0.2)
        self.message.value = ""
        self.refresh()
