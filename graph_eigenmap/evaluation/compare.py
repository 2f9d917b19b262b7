"""``bench compare``: every method on one graph, the OGB protocol, one table.

Methods (rows), each at every label ratio (columns), mean ± std over ``runs`` seeds:

* linear probes on frozen representations: the node features; exact Laplacian Eigenmap (top-k
  eigenvectors of Ā) alone and concatenated with the features; Neural Eigenmap with and without
  stop-gradient, probing the k eigenfunctions and the backbone features; Neural Eigenmap fitted
  inductively (on the subgraph of train + valid nodes only, test nodes embedded from their features);
* supervised baselines: GCN (uses the graph at test time) and an MLP on the features.

Also: truncation curves (probe on the first m eigenfunctions) with and without stop-gradient, and the
test-time cost of Neural Eigenmap against GCN. Neural Eigenmap is fitted once per variant (seed 0);
the probes use seeds 0..runs-1, as the reference.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.api import embed_features, neural_eigenmap
from graph_eigenmap.artifacts import environment, save_json
from graph_eigenmap.baselines.laplacian_eigenmap import chebyshev_eigenpairs, top_eigenpairs
from graph_eigenmap.baselines.supervised import supervised_baseline
from graph_eigenmap.data.graph import Graph, induced_subgraph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.evaluation.cost import test_time_cost
from graph_eigenmap.evaluation.probe import evaluate_embeddings
from graph_eigenmap.evaluation.truncation import plot_truncation, truncation_curve
from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr

GRAPH_AT_TEST_TIME = {"GCN (supervised)"}


def compare(graph: Graph, *, out_dir: str | Path, label_ratios=(1.0, 0.1, 0.01), runs: int = 10, k: int = 64,
            device: str | torch.device = "cpu", fit_options: dict | None = None, truncation_runs: int = 3,
            gnn_epochs: int = 300, command: str = "", log=print) -> dict:
    """Run every method on ``graph`` and write ``compare.json``, ``compare.md`` and ``truncation.png`` to ``out_dir``.

    Args:
        graph: a graph with node features, labels and a train/valid/test split.
        out_dir: output folder.
        label_ratios: fractions of the train split used for training.
        runs: seeds per method and label ratio.
        k: eigenfunctions (and exact eigenvectors) per method.
        device: where everything runs.
        fit_options: extra :class:`~graph_eigenmap.train.TrainConfig` fields for Neural Eigenmap.
        truncation_runs: seeds per point of the truncation curves (label ratio 1).
        gnn_epochs: epochs of the supervised baselines.
        command: the command line, recorded in the outputs.

    Returns:
        The JSON report as a dict.
    """
    if graph.features is None:
        raise GraphEigenmapError(f"{graph.name} has no node features; bench compare needs them for every method.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    fit_options = dict(fit_options or {})
    timings = {}

    def step(label, function, *args, **kwargs):
        start = time.perf_counter()
        log(f"[{graph.name}] {label} ...")
        value = function(*args, **kwargs)
        timings[label] = round(time.perf_counter() - start, 2)
        return value

    fits = {sg: step(f"fit Neural Eigenmap (stop-gradient {'on' if sg else 'off'})", neural_eigenmap, graph, k=k,
                     device=device, stop_gradient=sg, progress=False, **fit_options) for sg in (True, False)}
    inductive = step("fit Neural Eigenmap on train + valid only", _inductive, graph, k, device, fit_options)
    exact = step("exact Laplacian Eigenmap", exact_eigenvectors, graph, k, device)
    representations = {
        "Features (linear probe)": graph.features,
        "Laplacian Eigenmap": exact,
        "Laplacian Eigenmap + features": np.hstack([exact, graph.features]),
        "NE stop-grad: eigenfunctions": fits[True].embedding,
        "NE stop-grad: backbone": fits[True].backbone,
        "NE no stop-grad: eigenfunctions": fits[False].embedding,
        "NE no stop-grad: backbone": fits[False].backbone,
        "NE stop-grad: backbone, inductive": inductive["backbone"],
        "NE stop-grad: eigenfunctions, inductive": inductive["embedding"],
    }
    rows = []
    for ratio in label_ratios:
        for name, x in representations.items():
            rows.append(step(f"probe {name} @ {ratio}", evaluate_embeddings, x, graph, label_ratio=ratio, runs=runs,
                             device=device, method=name).to_dict())
        for kind, name in (("gcn", "GCN (supervised)"), ("mlp", "MLP on features (supervised)")):
            result = step(f"{name} @ {ratio}", supervised_baseline, graph, kind, label_ratio=ratio, runs=runs,
                          epochs=gnn_epochs, device=device)
            result.method = name
            rows.append(result.to_dict())
    curves = {label: step(f"truncation curve ({label})", truncation_curve, fits[sg].embedding, graph,
                          runs=truncation_runs, device=device)
              for sg, label in ((True, "stop-gradient"), (False, "no stop-gradient"))}
    plot_truncation(curves, out / "truncation.png", f"{graph.name}: probe on the first m eigenfunctions (k = {k})")
    cost = step("test-time cost", test_time_cost, graph, fits[True].model, device=device)
    report = dict(
        dataset=graph.name, source=graph.source, synthetic=graph.synthetic, num_nodes=graph.num_nodes,
        command=command, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", k=k, runs=runs,
        label_ratios=list(label_ratios), neural_eigenmap_config=fits[True].config.to_dict(),
        captured=dict(rayleigh_quotients_stop_gradient=[round(float(v), 4) for v in fits[True].rayleigh_quotients]),
        results=rows, truncation=curves, test_time_cost=cost, timings_s=timings, versions=environment(),
    )
    save_json(out / "compare.json", report)
    (out / "compare.md").write_text(to_markdown(report))
    return report


def exact_eigenvectors(graph: Graph, k: int, device: torch.device) -> np.ndarray:
    """``[n, k]`` exact top-k eigenvectors of Ā: per component with ARPACK, or on the GPU for big graphs."""
    kernel = normalized_adjacency(graph)
    if device.type == "cuda" and graph.num_nodes > 200_000:
        _, vectors, _ = chebyshev_eigenpairs(to_torch_csr(kernel, device=device), k)
        return vectors.float().cpu().numpy()
    return top_eigenpairs(kernel, k)[1].astype(np.float32)


def _inductive(graph: Graph, k: int, device, fit_options: dict) -> dict:
    seen = np.concatenate([graph.split["train"], graph.split["valid"]])
    subgraph, _ = induced_subgraph(graph, seen, name=f"{graph.name}-train-valid")
    fitted = neural_eigenmap(subgraph, k=k, device=device, stop_gradient=True, progress=False, **fit_options)
    embedding, backbone = embed_features(fitted.model, graph.features, "input", with_backbone=True)
    return dict(embedding=embedding, backbone=backbone)


def to_markdown(report: dict) -> str:
    """The paper's layout: methods as rows, label ratios as columns, test accuracy mean ± std in %."""
    ratios = report["label_ratios"]
    tag = " (synthetic)" if report["synthetic"] else ""
    lines = [
        f"# {report['dataset']}{tag}: test accuracy (%), {report['runs']} runs", "",
        f"Device: {report['device']}. Date: {report['date']}. k = {report['k']}.",
        f"Command: `{report['command']}`", "",
        "| method | graph at test time | " + " | ".join(f"{int(r * 100) if r * 100 >= 1 else r * 100}% labels" for r in ratios) + " |",
        "|---|---|" + "---|" * len(ratios),
    ]
    methods = list(dict.fromkeys(row["method"] for row in report["results"]))
    for method in methods:
        cells = []
        for ratio in ratios:
            row = next(r for r in report["results"] if r["method"] == method and r["label_ratio"] == ratio)
            cells.append(f"{100 * row['test_acc_mean']:.2f} ± {100 * row['test_acc_std']:.2f}")
        lines.append(f"| {method} | {'yes' if method in GRAPH_AT_TEST_TIME else 'no'} | " + " | ".join(cells) + " |")
    cost = report["test_time_cost"]
    lines += [
        "", "Test-time cost (median seconds):", "",
        "| | all test nodes | one new node | parameters |", "|---|---|---|---|",
        f"| Neural Eigenmap (MLP + probe, features only) | {cost['ne_all_test_s']:.4f} | {cost['ne_one_node_s']:.5f} | {cost['ne_parameters']:,} |",
        f"| GCN (needs the node's neighbourhood) | {cost['gcn_all_test_s']:.4f} | {cost['gcn_one_node_s']:.5f} | {cost['gcn_parameters']:,} |",
        "", "Truncation curve (stop-gradient vs not, label ratio 1): see truncation.png and compare.json.", "",
    ]
    return "\n".join(lines)
