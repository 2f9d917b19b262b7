"""Truncation curves: probe accuracy from only the first m eigenfunctions, m = 1, 2, 4, ..., k.

With stop-gradient the outputs are ordered by eigenvalue, so a prefix is the best m-dimensional
code; without it every prefix is an arbitrary slice of the span. The curve shows the difference.
"""

from __future__ import annotations

import numpy as np

from graph_eigenmap.evaluation.probe import evaluate_embeddings


def prefix_sizes(k: int) -> list[int]:
    """1, 2, 4, ... up to k, with k itself last."""
    sizes = [1]
    while sizes[-1] * 2 < k:
        sizes.append(sizes[-1] * 2)
    return sizes + [k] if sizes[-1] != k else sizes


def truncation_curve(embedding: np.ndarray, graph, *, label_ratio: float = 1.0, runs: int = 10,
                     device="cpu") -> list[dict]:
    """``[{m, test_acc_mean, test_acc_std, valid_acc_mean}]`` for each prefix of ``[n, k]`` embedding."""
    rows = []
    for m in prefix_sizes(embedding.shape[1]):
        result = evaluate_embeddings(embedding[:, :m], graph, label_ratio=label_ratio, runs=runs, device=device)
        rows.append(dict(m=m, test_acc_mean=result.test_acc_mean, test_acc_std=result.test_acc_std,
                         valid_acc_mean=result.valid_acc_mean))
    return rows


def plot_truncation(curves: dict[str, list[dict]], path, title: str) -> None:
    """One line per variant (e.g. stop-gradient, no stop-gradient), accuracy against m (log scale), as PNG."""
    import matplotlib  # deferred: matplotlib takes a second to import, and only plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: as above

    figure, axes = plt.subplots(figsize=(5, 3.5), dpi=120)
    for label, rows in curves.items():
        m = [row["m"] for row in rows]
        mean = np.array([row["test_acc_mean"] for row in rows]) * 100
        std = np.array([row["test_acc_std"] for row in rows]) * 100
        axes.errorbar(m, mean, yerr=std, marker="o", capsize=3, label=label)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("eigenfunctions used (first m)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
