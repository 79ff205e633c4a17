"""Held-out metrics of a scikit-learn job: accuracy and macro F1, or R², MAE and RMSE.

Why not ``sklearn.metrics`` directly: its input checks (``type_of_target``, ``check_array``,
narwhals conversions) cost ~10 ms per call on a small test set — more than a tiny model's whole
fit — and a sweep pays them once per trial and step, W0 once per job. Our inputs are always two
aligned 1-D label or value arrays, so these are the same formulas on numpy arrays, with
scikit-learn's conventions (macro F1 over the union of true and predicted labels, 0 for a label
never predicted nor present, R² of a constant target 1.0 if perfect else 0.0);
tests/test_training_steps.py checks them against scikit-learn's own on random cases.
"""

from __future__ import annotations

import numpy as np


def classification(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.size == 0:
        return {"accuracy": float("nan"), "f1_macro": float("nan")}
    labels, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
    ct, cp = codes[: t.size], codes[t.size:]
    n = len(labels)
    tp = np.bincount(ct[ct == cp], minlength=n).astype(float)
    support, predicted = np.bincount(ct, minlength=n), np.bincount(cp, minlength=n)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros(n), where=denominator > 0)
    return {"accuracy": float(np.mean(ct == cp)), "f1_macro": float(f1.mean())}


def regression(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64).reshape(-1)
    residual = t - p
    ss_res = float(np.dot(residual, residual))
    ss_tot = float(((t - t.mean()) ** 2).sum()) if t.size else 0.0
    r2 = (1.0 if ss_res == 0 else 0.0) if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return {"r2": r2, "mae": float(np.abs(residual).mean()), "rmse": float(np.sqrt(ss_res / t.size))}
