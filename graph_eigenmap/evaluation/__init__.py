"""Evaluation on the OGB leaderboard protocol: linear probes, truncation curves, baselines compared."""

from graph_eigenmap.evaluation.probe import ProbeResult, evaluate_embeddings, linear_probe
from graph_eigenmap.evaluation.truncation import truncation_curve

__all__ = ["ProbeResult", "evaluate_embeddings", "linear_probe", "truncation_curve"]
