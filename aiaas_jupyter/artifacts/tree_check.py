"""Check the node tables of loaded decision trees before anything predicts with them.

``sklearn.tree._tree.Tree`` (forests, gradient boosting, decision trees) and the
``TreePredictor`` of histogram gradient boosting store child and feature indices that
scikit-learn's compiled predict loops follow without bounds checks. skops can only check
that a file holds these *types*, so a crafted registry artifact could make ``predict`` read
out of bounds, crash the kernel or the model server, or loop forever (skops lists both in
``UNTRUSTED_TYPE_REASONS``). The product trains these models, so they stay trusted, and
every loaded one is checked here instead: children point forward inside the table (trees are
stored depth-first, which also rules out cycles), split features exist in the owner's input,
categorical splits point at an existing bitset; the KD/ball trees of nearest-neighbour models
index only their own points. Anything else is refused as an unsafe
artifact, never predicted with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsafeArtifactError

_MAX_DEPTH = 64  # object nesting, not tree depth: pipelines of ensembles stay far below it


def check_trees(model: Any) -> None:
    """Raise :class:`UnsafeArtifactError` if any tree reachable from ``model`` is malformed."""
    _walk(model, None, set(), 0)


def _walk(obj: Any, n_features: int | None, seen: set[int], depth: int) -> None:
    if depth > _MAX_DEPTH or id(obj) in seen:
        return
    seen.add(id(obj))
    kind = type(obj).__module__ + "." + type(obj).__qualname__
    if kind == "sklearn.tree._tree.Tree":
        return _check_tree(obj, n_features)
    if kind == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
        return _check_predictor(obj, n_features)
    if kind in ("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree"):
        return _check_binary_tree(obj, type(obj).__name__)
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, np.ndarray):
        children = obj.ravel() if obj.dtype == object else ()
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("sklearn."):
        own = getattr(obj, "n_features_in_", None)
        n_features = int(own) if isinstance(own, (int, np.integer)) else n_features
        children = vars(obj).values()
    else:
        return
    for child in children:
        _walk(child, n_features, seen, depth + 1)


def _refuse(what: str) -> None:
    raise UnsafeArtifactError(f"refusing to load a scikit-learn artifact with a malformed tree: {what}",
                              hint="the file was not written by scikit-learn as trained; re-train and register it")


def _forward_children(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray, what: str) -> None:
    n = len(left)
    idx = np.arange(n)
    inner = ~is_leaf
    for side, child in (("left", left), ("right", right)):
        bad = inner & ((child <= idx) | (child >= n))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _refuse(f"{what} node {i} has {side} child {int(child[i])} (of {n} nodes)")


def _check_features(features: np.ndarray, inner: np.ndarray, n_features: int | None, what: str) -> None:
    bad = inner & ((features < 0) | (features >= (n_features if n_features is not None else np.inf)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _refuse(f"{what} node {i} splits on feature {int(features[i])} of {n_features}")


def _check_tree(tree: Any, n_features: int | None) -> None:
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    if not (len(left) == len(right) == tree.node_count) or tree.node_count < 1:
        _refuse(f"Tree has {tree.node_count} nodes but {len(left)} child entries")
    is_leaf = left == -1
    if ((right == -1) != is_leaf).any():
        _refuse("Tree has a node with exactly one child")
    own = int(tree.n_features)
    _forward_children(left, right, is_leaf, "Tree")
    _check_features(np.asarray(tree.feature), ~is_leaf, min(own, n_features) if n_features is not None else own,
                    "Tree")


def _check_predictor(pred: Any, n_features: int | None) -> None:
    nodes = pred.nodes
    if len(nodes) < 1:
        _refuse("TreePredictor has no nodes")
    is_leaf = nodes["is_leaf"].astype(bool)
    _forward_children(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), is_leaf, "TreePredictor")
    _check_features(nodes["feature_idx"].astype(np.int64), ~is_leaf, n_features, "TreePredictor")
    categorical = ~is_leaf & nodes["is_categorical"].astype(bool)
    n_bitsets = min(len(pred.raw_left_cat_bitsets), len(pred.binned_left_cat_bitsets))
    bad = categorical & (nodes["bitset_idx"].astype(np.int64) >= n_bitsets)
    if bad.any():
        _refuse(f"TreePredictor node {int(np.flatnonzero(bad)[0])} uses a missing category bitset")


def _check_binary_tree(tree: Any, what: str) -> None:
    """KDTree/BallTree: an implicit binary tree (children 2i+1, 2i+2) over ``idx_array``."""
    data, idx, nodes, bounds = (np.asarray(a) for a in tree.get_arrays())
    n = len(data)
    if data.ndim != 2 or idx.shape != (n,) or ((idx < 0) | (idx >= n)).any():
        _refuse(f"{what} indexes points outside its {n} points")
    m = len(nodes)
    if m < 1 or bounds.ndim != 3 or bounds.shape[1:] != (m, data.shape[1]):
        _refuse(f"{what} node arrays do not match its {m} nodes of {data.shape[1]} dimensions")
    start, end, leaf = (nodes[f].astype(np.int64) for f in ("idx_start", "idx_end", "is_leaf"))
    if ((start < 0) | (start > end) | (end > n)).any():
        _refuse(f"{what} has a node whose point range lies outside its {n} points")
    inner = np.flatnonzero(leaf == 0)
    if inner.size and 2 * int(inner.max()) + 2 >= m:
        _refuse(f"{what} node {int(inner.max())} has children beyond its {m} nodes")
