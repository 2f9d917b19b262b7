"""``bench compare``: methods on one graph, the OGB protocol, one table that says what each method needs.

Method groups (``methods``; default: all), each at every label ratio, mean ± std over ``runs`` seeds:

* ``default``: the default recipe, what a user gets: a fit at the library's defaults (only the options given to
  ``compare`` changed), its representation and Correct & Smooth chosen on valid per label ratio
  (:mod:`graph_eigenmap.evaluation.recommend`); the row records the choice and every candidate's valid accuracy;
* ``features``: linear probe on the node features, and the probe + Correct & Smooth;
* ``le``: Laplacian Eigenmap, the exact top-k eigenvectors of Ā, alone and with the features;
* ``le-nontrivial``: the same with each component's trivial eigenvector removed (top k of the rest);
* ``ne``: Neural Eigenmap with and without stop-gradient, probing the k eigenfunctions and the
  backbone features, each also + Correct & Smooth;
* ``ne-nontrivial``: the same fits on the nontrivial kernel (each component's trivial eigenvector
  removed, ``kernel="nontrivial"``);
* ``ne-propagated``: the same fits with propagated inputs [X, ÂX, …, Â^K X] (``inputs="propagated:K"``,
  K = ``propagation_hops``); a test node then needs its neighbours' features;
* ``ne-svd``: the same fits on the features reduced to :data:`SVD_RANK` columns by truncated SVD
  (``inputs="svd:D"``); a test node needs its features only;
* ``ne-svd-propagated``: reduced, then propagated (``inputs="svd:D+propagated:K"``); a test node needs its
  neighbours' features;
* ``ne-features``: the ``ne`` fits' k eigenfunctions beside the node's features (Neural Eigenmap's
  counterpart of Laplacian Eigenmap + features); a test node needs its features only;
* ``ne-nontrivial-features``: the same with the ``ne-nontrivial`` fits;
* ``ne-inductive``: Neural Eigenmap fitted on the train + valid subgraph only, test nodes embedded
  from their features;
* ``gcn``: GCN (early stopping on valid), and GCN + Correct & Smooth;
* ``mlp``: a supervised MLP on the features, and MLP + Correct & Smooth;
* ``truncation``: probes on the first m eigenfunctions, with and without stop-gradient;
* ``cost``: test-time cost of Neural Eigenmap against GCN.

Every row states what predicting a test node needs (``needs_at_test_time``): ``features only`` (the
node's features and a fitted model), ``graph at test time`` (the node's neighbourhood), or
``transductive`` (the node must have been part of the graph used, and C&S propagates training
labels over it). Probe rows carry each run's chosen C and whether every fit converged; a representation
of eigenvectors beside the features is scaled block by block (:func:`graph_eigenmap.scaling.fit_scaling`),
the features as the features probe scales them. The probes use seeds 0..runs-1, as the reference. Neural
Eigenmap is fitted once per variant (seed 0) for every run by default, so at 100 % labels, where the runs
share their training nodes, its runs repeat one result; with ``fit_per_run`` each variant is fitted once
per run (seed r for run r, whose labels its probe reads) and the spread over runs includes the fit's own.
"""

from __future__ import annotations

import datetime
import itertools
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.api import neural_eigenmap
from graph_eigenmap.artifacts import environment
from graph_eigenmap.baselines.laplacian_eigenmap import laplacian_eigenmap
from graph_eigenmap.baselines.supervised import supervised_runs
from graph_eigenmap.data.graph import Graph, induced_subgraph
from graph_eigenmap.data.sparse import dense_features
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
from graph_eigenmap.evaluation.cost import test_time_cost
from graph_eigenmap.evaluation.probe import probe_runs
from graph_eigenmap.evaluation.recommend import choose_representation
from graph_eigenmap.evaluation.truncation import plot_truncation, truncation_curve
from graph_eigenmap.files import save_json
from graph_eigenmap.inference import embed_features
from graph_eigenmap.protocol import score_runs

METHOD_GROUPS = {
    "default": "the default recipe: a fit at the defaults, its representation and C&S chosen on valid",
    "features": "linear probe on the node features, and + C&S",
    "le": "Laplacian Eigenmap (exact top-k eigenvectors), alone and with the features",
    "le-nontrivial": "Laplacian Eigenmap without the components' trivial eigenvectors, alone and with the features",
    "ne": "Neural Eigenmap with and without stop-gradient, eigenfunctions and backbone, and + C&S",
    "ne-nontrivial": "Neural Eigenmap on the nontrivial kernel (trivial eigenvectors removed), and + C&S",
    "ne-propagated": "Neural Eigenmap reading propagated features [X, ÂX, ..., Â^K X], and + C&S",
    "ne-svd": "Neural Eigenmap reading the features reduced by truncated SVD, and + C&S",
    "ne-svd-propagated": "Neural Eigenmap reading the SVD-reduced features propagated, and + C&S",
    "ne-features": "Neural Eigenmap's eigenfunctions beside the node's features",
    "ne-nontrivial-features": "the same on the nontrivial kernel",
    "ne-inductive": "Neural Eigenmap fitted on the train + valid subgraph only",
    "gcn": "GCN with early stopping on valid, and + C&S",
    "mlp": "supervised MLP on the features, and + C&S",
    "truncation": "probe on the first m eigenfunctions, with and without stop-gradient",
    "cost": "test-time cost of Neural Eigenmap against GCN",
}
FEATURES_ONLY, GRAPH_AT_TEST_TIME, TRANSDUCTIVE = "features only", "graph at test time", "transductive"
SVD_RANK = 100
"""D of the ``ne-svd`` groups: the width of the shared graphs' OGB-layout features (their bag of words by
truncated SVD)."""
SVD_GROUPS = ("ne-svd", "ne-svd-propagated")
"""Left out of the default (all groups) on graphs with at most :data:`SVD_RANK` features."""
CS_SUFFIX = " + C&S"


def parse_label_ratios(text: str) -> tuple[float, ...]:
    """``"1,0.1,0.01"`` -> ``(1.0, 0.1, 0.01)``: fractions of the train labels, each in (0, 1]."""
    try:
        ratios = tuple(float(r) for r in text.split(","))
    except ValueError:
        raise GraphEigenmapError(f"`label_ratios` must be comma-separated numbers such as 1,0.1,0.01; "
                                 f"got {text!r}.") from None
    if not all(0 < r <= 1 for r in ratios):
        raise GraphEigenmapError(f"`label_ratios` must lie in (0, 1] (fractions of the train labels); got {text!r}.")
    return ratios


def parse_methods(text: str | None) -> list[str]:
    """``"ne,gcn"`` -> ``["ne", "gcn"]``; None or ``"all"`` -> every group. Unknown names raise."""
    if text is None or text.strip() == "all":
        return list(METHOD_GROUPS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHOD_GROUPS]
    if unknown or not names:
        raise GraphEigenmapError(f"`methods` takes a comma-separated list of {', '.join(METHOD_GROUPS)} (or all); "
                                 f"got {text!r}.")
    return names


class _Comparison:
    """The state of one comparison: lazily fitted representations, the rows so far, timed steps."""

    def __init__(self, graph: Graph, k: int, device: torch.device, fit_options: dict, runs: int, log, hops: int = 3,
                 fit_per_run: bool = False):
        self.default_options = dict(fit_options)  # the default recipe: the library's own choices
        # the graph-free groups (ne, ne-nontrivial, ne-inductive, truncation, cost) read the node's own features
        fit_options = {"inputs": "features", **fit_options}
        (self.graph, self.k, self.device,
         self.fit_options, self.runs, self.log) = graph, k, device, fit_options, runs, log
        self.hops, self.fit_per_run = hops, fit_per_run
        self.rows: list[dict] = []
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()
        self._cache: dict = {}

    def step(self, label: str, function, *args, **kwargs):
        """Run one step, logging its name before and its duration and the elapsed time after."""
        self.log(f"[{self.graph.name}] {label} ...")
        start = time.perf_counter()
        value = function(*args, **kwargs)
        self.timings[label] = round(time.perf_counter() - start, 2)
        self.log(f"[{self.graph.name}] {label}: {self.timings[label]:.1f} s "
                 f"(elapsed {time.perf_counter() - self.started:.0f} s)")
        return value

    def cached(self, key: str, label: str, function, *args, **kwargs):
        if key not in self._cache:
            self._cache[key] = self.step(label, function, *args, **kwargs)
        return self._cache[key]

    def ne_fit(self, stop_gradient: bool, seed: int = 0, **variant):
        """Neural Eigenmap with the comparison's options, overridden by ``variant`` (kernel, inputs), from ``seed``."""
        described = ", ".join(f"{key} {value}" for key, value in variant.items())
        label = (f"fit Neural Eigenmap (stop-gradient {'on' if stop_gradient else 'off'}"
                 f"{', ' + described if variant else ''}"
                 f"{f', seed {seed}' if seed else ''})")
        options = dict(self.fit_options, **variant)
        return self.cached(f"ne-{stop_gradient}-{seed}-{sorted(variant.items())}", label, neural_eigenmap, self.graph,
                           k=self.k, device=self.device, stop_gradient=stop_gradient, progress=False, seed=seed,
                           **options)

    def eigenvectors(self, variant: str) -> np.ndarray:
        return self.cached(f"le-{variant}", f"exact Laplacian Eigenmap ({variant})", laplacian_eigenmap, self.graph,
                           self.k, variant=variant, device=self.device)[1]

    def correct_and_smooth(self) -> CorrectAndSmooth:
        return self.cached("cs", "Correct & Smooth: graph on the device", CorrectAndSmooth, self.graph, self.device)

    def probe(self, name: str, x, ratio: float, needs: str, with_cs: bool, blocks=None) -> None:
        """Probe rows for representation ``x`` (and its C&S row) at one label ratio; ``blocks``: see ``fit_scaling``."""
        predictions = probe_runs(x, self.graph, label_ratio=ratio, runs=self.runs, device=self.device, blocks=blocks)
        self._score(name, predictions, ratio, needs, with_cs, probe=True)

    def probe_fits(self, name: str, represent, ratio: float, needs: str, with_cs: bool, stop_gradient: bool,
                   variant: dict) -> None:
        """Probe rows of a representation of a Neural Eigenmap variant's fits: ``represent(fitted) -> (x, blocks)``.

        One fit (seed 0) for every run, or with ``fit_per_run`` run r's probe on the fit from seed r.
        """
        if not self.fit_per_run:
            x, blocks = represent(self.ne_fit(stop_gradient, **variant))
            return self.probe(name, x, ratio, needs, with_cs, blocks=blocks)

        def predictions():
            for seed in range(self.runs):
                x, blocks = represent(self.ne_fit(stop_gradient, seed=seed, **variant))
                yield from probe_runs(x, self.graph, label_ratio=ratio, runs=1, device=self.device, blocks=blocks,
                                      first_seed=seed)
        self._score(name, predictions(), ratio, needs, with_cs, probe=True)

    def supervised(self, kind: str, name: str, ratio: float, needs: str, max_epochs: int) -> None:
        predictions = supervised_runs(self.graph, kind, label_ratio=ratio, runs=self.runs, max_epochs=max_epochs,
                                      device=self.device)
        self._score(name, predictions, ratio, needs, with_cs=True, probe=False)

    def _score(self, name, predictions, ratio, needs, with_cs, probe) -> None:
        label = f"{name} @ {ratio:g}" + (CS_SUFFIX if with_cs else "")
        result, smoothed = self.step(label, score_runs, predictions, self.graph, method=name, label_ratio=ratio,
                                     runs=self.runs, postprocess=self.correct_and_smooth() if with_cs else None,
                                     postprocessed_method=name + CS_SUFFIX)
        self.rows.append(_row(result, needs, probe))
        if smoothed is not None:
            self.rows.append(_row(smoothed, TRANSDUCTIVE, probe=False))


def _row(result, needs: str, probe: bool) -> dict:
    row = dict(result.to_dict(), needs_at_test_time=needs)
    if probe:
        runs = result.extra["runs"]
        row.update(chosen_C=[run["C"] for run in runs], probe_converged=all(run["converged"] for run in runs))
    return row


def compare(graph: Graph, *, out_dir: str | Path, methods=None, label_ratios=(1.0, 0.1, 0.01), runs: int = 10,
            k: int = 64, device: str | torch.device = "cpu", fit_options: dict | None = None,
            truncation_runs: int = 3, max_epochs: int = 500, propagation_hops: int = 3, fit_per_run: bool = False,
            command: str = "", log=print) -> dict:
    """Run the chosen method groups on ``graph``; write ``compare.json``, ``compare.md`` (and ``truncation.png``).

    Args:
        graph: a graph with node features, labels and a train/valid/test split.
        out_dir: output folder.
        methods: names from :data:`METHOD_GROUPS` (default: all of them).
        label_ratios: fractions of the train split used for training.
        runs: seeds per method and label ratio.
        k: eigenfunctions (and exact eigenvectors) per method.
        device: where everything runs.
        fit_options: extra :class:`~graph_eigenmap.config.TrainConfig` fields for Neural Eigenmap.
        truncation_runs: seeds per point of the truncation curves (label ratio 1).
        max_epochs: most epochs of the supervised baselines (they stop early on valid).
        propagation_hops: K of the ``ne-propagated`` group.
        fit_per_run: fit every Neural Eigenmap variant once per run (seed r for run r) instead of once.
        command: the command line, recorded in the outputs.
        log: called with one line per step (its start, then its duration and the elapsed time).

    Returns:
        The JSON report as a dict; ``results`` is a flat list of rows with ``method``,
        ``label_ratio``, ``test_acc_mean``, ``test_acc_std`` and ``needs_at_test_time``.
    """
    explicit = methods is not None
    methods = parse_methods(",".join(methods)) if explicit else list(METHOD_GROUPS)
    if graph.features is None:
        raise GraphEigenmapError(f"{graph.name} has no node features; bench compare needs them for every method.")
    reduced = [m for m in methods if m in SVD_GROUPS]
    if reduced and graph.num_features <= SVD_RANK:  # nothing to reduce
        if explicit:
            raise GraphEigenmapError(f"`methods={','.join(reduced)}` reduce the features to {SVD_RANK} columns, and "
                                     f"{graph.name} has {graph.num_features}; drop them.")
        methods = [m for m in methods if m not in SVD_GROUPS]
    needs_dense = [m for m in methods if m in DENSE_FEATURE_GROUPS]
    if needs_dense and sp.issparse(graph.features):
        dense_features(graph, f"`methods={','.join(needs_dense)}`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    session = _Comparison(graph, k, torch.device(device), dict(fit_options or {}), runs, log, propagation_hops,
                          fit_per_run)
    report = dict(
        dataset=graph.name, source=graph.source, synthetic=graph.synthetic, num_nodes=graph.num_nodes,
        command=command, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=_device_name(session.device), k=k, runs=runs, label_ratios=list(label_ratios), methods=methods,
        neural_eigenmap_fits="one per run (seed r for run r)" if fit_per_run else "one (seed 0) for every run",
        results=session.rows,
    )
    for done, ratio in enumerate(label_ratios, 1):
        _rows_at(session, methods, ratio, max_epochs)
        if done < len(label_ratios):  # a run cut short keeps the label ratios it finished
            save_json(out / "compare.json", dict(report, finished_label_ratios=list(label_ratios[:done]),
                                                 timings_s=session.timings, versions=environment()))
    report["correct_and_smooth"] = session.correct_and_smooth().settings.to_dict() if _uses_cs(methods) else None
    if {"ne", "truncation", "cost"} & set(methods):
        fitted = session.ne_fit(True)
        report.update(neural_eigenmap_config=fitted.config.to_dict(), rayleigh_quotients_stop_gradient=[
            round(float(v), 4) for v in fitted.rayleigh_quotients])
    if "truncation" in methods:
        report["truncation"] = _truncation(session, out, truncation_runs)
    if "cost" in methods:
        propagated = (session.ne_fit(True, inputs=f"propagated:{session.hops}").model if "ne-propagated" in methods
                      else None)
        report["test_time_cost"] = session.step("test-time cost", test_time_cost, graph, session.ne_fit(True).model,
                                                device=session.device, propagated_model=propagated, hops=session.hops)
    report.update(timings_s=session.timings, versions=environment())
    save_json(out / "compare.json", report)
    (out / "compare.md").write_text(to_markdown(report))
    return report


DENSE_FEATURE_GROUPS = ("features", "le", "le-nontrivial", "ne-propagated", "ne-features", "ne-nontrivial-features",
                        "gcn", "mlp", "cost")
"""Method groups that read the features densely (so not features kept sparse)."""


def _rows_at(session: _Comparison, methods: list[str], ratio: float, max_epochs: int) -> None:
    graph = session.graph
    if "default" in methods:
        session.rows.append(session.step(f"default recipe @ {ratio:g}", _default_recipe_row, session, ratio))
    if "features" in methods:
        session.probe("Features (linear probe)", graph.features, ratio, FEATURES_ONLY, with_cs=True)
    for variant, group in (("top", "le"), ("nontrivial", "le-nontrivial")):
        if group in methods:
            vectors = session.eigenvectors(variant)
            name = f"Laplacian Eigenmap, {variant}"
            session.probe(name, vectors, ratio, TRANSDUCTIVE, with_cs=False)
            beside, blocks = _beside_features(vectors, graph)
            session.probe(name + " + features", beside, ratio, TRANSDUCTIVE, with_cs=False, blocks=blocks)
    variants = (("ne", "", {}, FEATURES_ONLY),
                ("ne-nontrivial", ", nontrivial kernel", dict(kernel="nontrivial"), FEATURES_ONLY),
                ("ne-propagated", f", propagated:{session.hops}", dict(inputs=f"propagated:{session.hops}"),
                 GRAPH_AT_TEST_TIME),
                ("ne-svd", f", svd:{SVD_RANK}", dict(inputs=f"svd:{SVD_RANK}"), FEATURES_ONLY),
                ("ne-svd-propagated", f", svd:{SVD_RANK}+propagated:{session.hops}",
                 dict(inputs=f"svd:{SVD_RANK}+propagated:{session.hops}"), GRAPH_AT_TEST_TIME))
    for group, suffix, variant, needs in variants:
        if group not in methods:
            continue
        for stop_gradient in (True, False):
            prefix = ("NE stop-grad" if stop_gradient else "NE no stop-grad") + suffix
            session.probe_fits(f"{prefix}: eigenfunctions", lambda fitted: (fitted.embedding, None), ratio, needs,
                               True, stop_gradient, variant)
            session.probe_fits(f"{prefix}: backbone", lambda fitted: (fitted.backbone, None), ratio, needs,
                               True, stop_gradient, variant)
    beside_groups = (("ne-features", "", {}),
                     ("ne-nontrivial-features", ", nontrivial kernel", dict(kernel="nontrivial")))
    for (group, suffix, variant), stop_gradient in itertools.product(beside_groups, (True, False)):
        if group in methods:
            prefix = ("NE stop-grad" if stop_gradient else "NE no stop-grad") + suffix
            session.probe_fits(f"{prefix}: eigenfunctions + features",
                               lambda fitted: _beside_features(fitted.embedding, graph),
                               ratio, FEATURES_ONLY, False, stop_gradient, variant)
    if "ne-inductive" in methods:
        inductive = session.cached("ne-inductive", "fit Neural Eigenmap on train + valid only", _inductive, session)
        session.probe("NE stop-grad: eigenfunctions, inductive", inductive["embedding"], ratio, FEATURES_ONLY,
                      with_cs=False)
        session.probe("NE stop-grad: backbone, inductive", inductive["backbone"], ratio, FEATURES_ONLY, with_cs=False)
    if "gcn" in methods:
        session.supervised("gcn", "GCN (supervised)", ratio, GRAPH_AT_TEST_TIME, max_epochs)
    if "mlp" in methods:
        session.supervised("mlp", "MLP on features (supervised)", ratio, FEATURES_ONLY, max_epochs)


def _default_recipe_row(session: _Comparison, ratio: float) -> dict:
    """The default recipe's row: a fit at the library's defaults (once), its representation and C&S chosen on valid
    (:func:`~graph_eigenmap.evaluation.recommend.choose_representation`); what a test node needs follows the choice."""
    fitted = session.cached("default-fit", "fit Neural Eigenmap at the defaults", neural_eigenmap, session.graph,
                            k=session.k, device=session.device, progress=False, **session.default_options)
    parts = dict(embedding=fitted.embedding, backbone=fitted.backbone, recommended=fitted.config.representation)
    chosen = choose_representation(parts, session.graph, label_ratio=ratio, runs=session.runs, device=session.device)
    row = chosen["probe_cs" if chosen["correct_and_smooth"] else "probe"]
    needs = TRANSDUCTIVE if chosen["correct_and_smooth"] else \
        GRAPH_AT_TEST_TIME if fitted.config.inputs.hops else FEATURES_ONLY
    return dict(row, method="Neural Eigenmap, default recipe (chosen on valid)", needs_at_test_time=needs,
                chosen=chosen["chosen"], correct_and_smooth=chosen["correct_and_smooth"],
                candidates_valid=chosen["candidates"], recommended_by_fit=chosen["recommended_by_fit"],
                inputs=str(fitted.config.inputs))


def _beside_features(vectors, graph: Graph) -> tuple[np.ndarray, tuple[int, int]]:
    """``[n, k]`` vectors and the ``[n, f]`` features side by side, ``[n, k + f]``, and the probe's block widths
    ``(k, f)``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.hstack([vectors, np.asarray(graph.features, dtype=np.float32)]), (vectors.shape[1], graph.num_features)


def _uses_cs(methods) -> bool:
    return bool({"features", "ne", "ne-nontrivial", "ne-propagated", "ne-svd", "ne-svd-propagated", "gcn", "mlp"}
                & set(methods))


def _truncation(session: _Comparison, out: Path, truncation_runs: int) -> dict:
    curves = {label: session.step(f"truncation curve ({label})", truncation_curve, session.ne_fit(sg).embedding,
                                  session.graph, runs=truncation_runs, device=session.device)
              for sg, label in ((True, "stop-gradient"), (False, "no stop-gradient"))}
    plot_truncation(curves, out / "truncation.png",
                    f"{session.graph.name}: probe on the first m eigenfunctions (k = {session.k})")
    return curves


def _inductive(session: _Comparison) -> dict:
    graph = session.graph
    seen = np.concatenate([graph.split["train"], graph.split["valid"]])
    subgraph, _ = induced_subgraph(graph, seen, name=f"{graph.name}-train-valid")
    fitted = neural_eigenmap(subgraph, k=session.k, device=session.device, stop_gradient=True, progress=False,
                             **session.fit_options)
    embedding, backbone = embed_features(fitted.model, graph.features, "input", with_backbone=True)
    return dict(embedding=embedding, backbone=backbone)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def to_markdown(report: dict) -> str:
    """The paper's layout: methods as rows, label ratios as columns, test accuracy mean ± std in %."""
    ratios = report["label_ratios"]
    tag = " (synthetic)" if report["synthetic"] else ""
    lines = [
        f"# {report['dataset']}{tag}: test accuracy (%), {report['runs']} runs", "",
        f"Device: {report['device']}. Date: {report['date']}. k = {report['k']}.",
        f"Command: `{report['command']}`", "",
        *([f"Neural Eigenmap fits: {report['neural_eigenmap_fits']}.", ""]
          if report.get("neural_eigenmap_fits") else []),
        "| method | needs at test time | " + " | ".join(f"{_percent(r)} labels" for r in ratios) + " |",
        "|---|---|" + "---|" * len(ratios),
    ]
    for method in dict.fromkeys(row["method"] for row in report["results"]):
        rows = {row["label_ratio"]: row for row in report["results"] if row["method"] == method}
        cells = [f"{100 * rows[r]['test_acc_mean']:.2f} ± {100 * rows[r]['test_acc_std']:.2f}" if r in rows else ""
                 for r in ratios]
        needs = next(iter(rows.values()))["needs_at_test_time"]
        lines.append(f"| {method} | {needs} | " + " | ".join(cells) + " |")
    unconverged = sorted({row["method"] for row in report["results"] if row.get("probe_converged") is False})
    lines += ["", "Probes: scikit-learn's objective, C chosen on valid per run (`chosen_C` in compare.json); "
              + (f"not every fit converged for: {', '.join(unconverged)}." if unconverged else "every fit converged.")]
    if report.get("correct_and_smooth"):
        settings = report["correct_and_smooth"]
        lines.append(f"C&S (PyG CorrectAndSmooth): {settings['correction_layers']} correction and "
                     f"{settings['smoothing_layers']} smoothing layers, autoscale {settings['autoscale']}, α₁ in "
                     f"{settings['correction_alphas']} × α₂ in {settings['smoothing_alphas']} chosen on valid per run; "
                     "only each run's training labels are propagated.")
    if "test_time_cost" in report:
        lines += _cost_lines(report["test_time_cost"])
    if "truncation" in report:
        lines += ["", "Truncation curve (stop-gradient vs not, label ratio 1): see truncation.png and compare.json."]
    return "\n".join(lines) + "\n"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _cost_lines(cost: dict) -> list[str]:
    return [
        "", "Test-time cost (median seconds):", "",
        "| | all test nodes | one new node | parameters |", "|---|---|---|---|",
        f"| Neural Eigenmap (MLP + probe, features only) | {cost['ne_all_test_s']:.4f} | "
        f"{cost['ne_one_node_s']:.5f} | {cost['ne_parameters']:,} |",
        f"| GCN (needs the node's neighbourhood) | {cost['gcn_all_test_s']:.4f} | {cost['gcn_one_node_s']:.5f} | "
        f"{cost['gcn_parameters']:,} |",
    ] + ([f"| Neural Eigenmap, propagated:{cost['propagation_hops']} (needs the node's edges; all test nodes: "
          f"propagation over the graph included) | {cost['ne_propagated_all_test_s']:.4f} | "
          f"{cost['ne_propagated_one_node_s']:.5f} | {cost['ne_propagated_parameters']:,} |"]
         if "ne_propagated_all_test_s" in cost else [])
