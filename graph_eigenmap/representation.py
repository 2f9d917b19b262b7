"""The node representations a fit offers for downstream use, by name (:data:`graph_eigenmap.registry.REPRESENTATIONS`).

A representation is one part or several side by side: the k eigenfunctions (``embedding``), the MLP's penultimate
features (``backbone``) and the node's own ``features``. Side by side, each part is a block that the probe scales on
its own (:func:`graph_eigenmap.scaling.fit_scaling`'s ``blocks``), so the eigenfunctions are not drowned by
thousands of feature columns. The fit recommends one (:mod:`graph_eigenmap.recipe`, label-free); ``graph-eigenmap
evaluate --model`` chooses among all of them on valid labels (:mod:`graph_eigenmap.evaluation.recommend`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.registry import REPRESENTATIONS


def node_representation(name: str, *, embedding=None, backbone=None,
                        features=None) -> tuple[np.ndarray, tuple[int, ...]]:
    """The representation called ``name`` from its parts, and the widths of its blocks.

    Args:
        name: a registered representation (``"backbone"``, ``"embedding+features"``, ...).
        embedding: ``[n, k]`` eigenfunctions; backbone: ``[n, h]`` backbone features; features: ``[n, d]`` node
            features (dense, or scipy sparse: densified here). Only the parts ``name`` names are read.

    Returns:
        ``([n, w]`` float32 array (a part itself when it is the only one, not copied), ``(w_1, ...)`` block widths``)``.

    Raises:
        GraphEigenmapError: a part the representation needs is missing (a graph without features, a fit that did not
            write its backbone).
    """
    given = dict(embedding=embedding, backbone=backbone, features=features)
    parts = []
    for part in REPRESENTATIONS[name].parts:
        value = given[part]
        if value is None:
            raise GraphEigenmapError(f"the `representation={name}` needs the {part}, which is not at hand; choose "
                                     "another representation, such as 'backbone' or 'embedding'.")
        parts.append(value.toarray() if sp.issparse(value) else value)
    if len(parts) == 1:
        return parts[0], (parts[0].shape[1],)
    arrays = [np.asarray(part, dtype=np.float32) for part in parts]
    return np.hstack(arrays), tuple(array.shape[1] for array in arrays)


def needs_features(name: str) -> bool:
    """Whether the representation holds the node's own features (so a new node's features are part of it)."""
    return "features" in REPRESENTATIONS[name].parts
