"""How clusters, jobs and models are shown: plain data in, a :class:`Table` out.

Views are separate from the façade so the magics, widgets and the server extension can share
the data and each pick its own presentation.
"""

from __future__ import annotations

from .clock import short_time
from .display import Table
from .signature import summary as signature_summary


#: the metric a model is summarised by, first present wins (``%aiaas models`` and the sidebar)
HEADLINE_METRICS = ("accuracy", "val_accuracy", "r2", "f1_macro", "mse")


def headline(metrics: dict | None) -> tuple[str, float] | None:
    """``(name, value)`` of the first of :data:`HEADLINE_METRICS` in ``metrics``, else None."""
    for key in HEADLINE_METRICS:
        if metrics and key in metrics:
            return key, metrics[key]
    return None


def headline_metric(metrics: dict | None) -> str:
    found = headline(metrics)
    return f"{found[0]}={found[1]:.4g}" if found else ""


def cluster_table(summary: dict, embedded: bool) -> Table:
    gateway = summary.get("gateway")
    kind = ("embedded LocalCluster" if embedded else
            f"dask-gateway cluster {gateway['cluster']}" if gateway else "external cluster")
    title = (f"Dask {kind} at {summary['scheduler']}: {summary['n_workers']} workers, "
             f"{summary['threads']} threads, {summary['memory_gb']:.1f} GiB, {summary['gpus']} GPUs")
    rows = [(w["name"], w["address"], w["threads"], f"{w['memory_gb']:.2f} GiB", w["gpus"])
            for w in summary["workers"]]
    note = f"dashboard: {summary['dashboard']}" if summary.get("dashboard") else ""
    if summary.get("dashboard_direct"):
        note += f" (through this Jupyter server's proxy; direct: {summary['dashboard_direct']})"
    if summary.get("dashboard_note"):
        note += f" ({summary['dashboard_note']})"
    return Table(["worker", "address", "threads", "memory", "GPUs"], rows, title=title, note=note)


def retry_note(info: dict | None) -> str:
    """How a job recovered from a dying worker, in words ("" if it never had to)."""
    info = info or {}
    attempt = int(info.get("attempt") or 1)
    if attempt < 2:
        return ""
    how = (f"resumed at epoch {info['resumed_epoch']}" if info.get("resumed_epoch")
           else "restarted from scratch")
    return f"attempt {attempt}: {how} after {info.get('retry_reason') or 'its worker died'}"


def jobs_table(records) -> Table:
    rows = []
    for r in records:
        duration = f"{r.duration_s:.2f} s" if r.duration_s is not None else ""
        model = f"{r.model}:{r.version}" if r.version else (r.model or "")
        rows.append((r.id, model, r.status, f"{(r.progress or 0):.0%}", r.worker or "",
                     r.gpus or 0, short_time(r.started or r.submitted), duration, retry_note(r.info)))
    return Table(["id", "model", "status", "progress", "worker", "GPUs", "started", "duration", "note"], rows,
                 title="aiaas jobs", empty="no jobs yet: run a %%aiaas train cell")


def models_table(summaries: list[dict]) -> Table:
    rows = [(s["name"], s["latest"], s["n_versions"],
             ", ".join(f"{a}→{v}" for a, v in sorted((s.get("aliases") or {}).items())),
             s.get("framework", ""), headline_metric(s.get("metrics")), short_time(s.get("created")))
            for s in summaries]
    return Table(["model", "latest", "versions", "aliases", "framework", "metric", "created"], rows,
                 title="aiaas models", empty="no models yet: a successful %%aiaas train registers one")


def model_card(mv) -> Table:
    extra = mv.extra or {}
    rows = [
        ("model", mv.ref),
        ("aliases", ", ".join(mv.aliases)),
        ("framework", mv.framework),
        ("created", short_time(mv.created)),
        ("job", mv.job_id or ""),
        ("metrics", mv.metrics),
        ("params", mv.params),
        ("signature", signature_summary(extra.get("signature"))),
        ("data fingerprint", mv.data_fingerprint),
        ("train / test rows", f"{extra.get('n_train', '')} / {extra.get('n_test', '')}"),
        ("device", extra.get("device", "")),
        ("artifacts", ", ".join(f"{f} sha256:{h[:12]}" for f, h in mv.artifacts.items())),
        ("libraries", mv.library_versions),
        ("source", mv.source),
    ]
    return Table(["field", "value"], rows, title=f"model {mv.ref}")
