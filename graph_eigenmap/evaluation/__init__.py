"""Evaluation on the OGB leaderboard protocol: linear probes, Correct & Smooth, truncation curves, baselines
compared."""

from graph_eigenmap.evaluation.probe import (
    ProbeResult,
    evaluate_embeddings,
    evaluate_representation,
    fit_probes,
    probe_runs,
)
from graph_eigenmap.evaluation.truncation import truncation_curve

__all__ = ["ProbeResult", "evaluate_embeddings", "evaluate_representation", "fit_probes", "probe_runs",
           "truncation_curve"]
