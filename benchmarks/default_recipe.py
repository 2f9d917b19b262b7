"""The default recipe against GCN, an MLP and a probe on the features, on the seven shared graphs (issue 26's table).

One command per layout, at one commit:

    python -m benchmarks.default_recipe --layout ogb --data ../shared/data --out OUT --device cuda
    python -m benchmarks.default_recipe --layout npz --data ../shared/data --out OUT --device cuda

For each graph this is ``graph-eigenmap bench compare -d <graph> --methods METHODS --runs 10`` (every group with a
Neural Eigenmap row, for the best variant, and the baselines; 100 / 10 / 1 % labels) at the library's defaults: the ``default`` row is a fit at the defaults with its
representation and C&S chosen on valid (what ``fit`` + ``evaluate --model`` give a user). Graphs run side by side
(``--parallel``). OUT/<graph>/compare.{json,md} hold every row; OUT/default_recipe.{json,md} the table with the
targets: at least max(GCN, MLP, features probe) − 1 point at 100 % and 10 % labels, at least GCN − 1 at 1 %, each
with and without C&S on the baselines' side taken as their best row on valid.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED_GRAPHS, commit, dataset_path, write_result
from graph_eigenmap import load_graph
from graph_eigenmap.evaluation.compare import SVD_GROUPS, SVD_RANK

METHODS = ("default,features,le-nontrivial,ne,ne-nontrivial,ne-propagated,ne-svd,ne-svd-propagated,ne-features,"
           "ne-nontrivial-features,gcn,mlp")
"""Every group with a Neural Eigenmap row (for the best variant) and the baselines; not truncation, cost, inductive."""
GRAPH_FREE_BASELINES = ("Laplacian Eigenmap, nontrivial + features", "MLP on features (supervised)")
"""Item 3: the graph-free Neural Eigenmap (best on valid among the rows that embed a node from its features alone)
against these, by the run-by-run difference and its standard error."""
DEFAULT_ROW = "Neural Eigenmap, default recipe (chosen on valid)"
BASELINES = {"features probe": ("Features (linear probe)",), "MLP": ("MLP on features (supervised)",),
             "GCN": ("GCN (supervised)",)}
"""Each baseline's rows; with ``--with-cs`` its + C&S row competes too (the better one on valid counts)."""


def methods_for(path: Path, methods: str) -> str:
    """``methods`` for the graph at ``path``, without the SVD groups where it has no more than SVD_RANK columns (the
    OGB layout's 100-d features): there they would reduce nothing, and bench compare refuses them by name."""
    if load_graph(str(path)).num_features > SVD_RANK:
        return methods
    return ",".join(group for group in methods.split(",") if group not in SVD_GROUPS)


def run_one(args: argparse.Namespace, name: str) -> str:
    """One graph's ``bench compare`` in a subprocess; its progress goes to OUT/<name>/compare.log."""
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    module = "graph_eigenmap_cli.main" if _installed() else "cli.main"
    path = dataset_path(args.data, args.layout, name)
    command = [sys.executable, "-m", module, "bench", "compare", "-d", str(path), "--methods",
               methods_for(path, args.methods), "--runs", str(args.runs), "--device", args.device, "--out", str(out),
               *shlex.split(args.compare_args)]
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(out / "compare.log", "w") as log:  # one graph failing does not stop the others
        code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log, env=environment).returncode
    return name if code == 0 else f"{name} (failed, exit {code}: see {out / 'compare.log'})"


def _installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("graph_eigenmap_cli") is not None


def table(out: Path, layout: str, names, with_cs: bool) -> dict:
    """Per graph and label ratio: the default recipe, each baseline's row (best on valid), the target and the margin."""
    rows = []
    for name in names:
        report_path = out / name / "compare.json"
        if not report_path.exists():
            continue
        results = json.loads(report_path.read_text())["results"]
        for ratio in sorted({row["label_ratio"] for row in results}, reverse=True):
            at = {row["method"]: row for row in results if row["label_ratio"] == ratio}
            default = at[DEFAULT_ROW]
            baselines = {label: _best_on_valid(at, methods, with_cs) for label, methods in BASELINES.items()}
            target = (baselines["GCN"]["test_acc_mean"] if ratio < 0.05
                      else max(row["test_acc_mean"] for row in baselines.values())) - 0.01
            best = _best_variant(at)
            rows.append(dict(graph=name, label_ratio=ratio, default=default["test_acc_mean"],
                             best_variant=best and best["method"], best_variant_test=best and best["test_acc_mean"],
                             graph_free=_graph_free(at),
                             default_std=default["test_acc_std"], chosen=default["chosen"],
                             correct_and_smooth=default["correct_and_smooth"],
                             candidates_valid=default["candidates_valid"],
                             baselines={label: row["test_acc_mean"] for label, row in baselines.items()},
                             target=target, margin=default["test_acc_mean"] - target))
    return dict(layout=layout, rows=rows)


def _is_neural_eigenmap(method: str) -> bool:
    return method.startswith("NE ") or method.startswith("Neural Eigenmap")


def _best_variant(at: dict) -> dict | None:
    """The best Neural Eigenmap row on valid (any representation, with or without C&S), or None."""
    rows = [row for method, row in at.items() if _is_neural_eigenmap(method) and method != DEFAULT_ROW]
    return max(rows, key=lambda row: row["valid_acc_mean"]) if rows else None


def _graph_free(at: dict) -> dict | None:
    """The graph-free Neural Eigenmap (best on valid of the rows needing features only) against
    :data:`GRAPH_FREE_BASELINES`: mean run-by-run difference of test accuracy and its standard error."""
    rows = [row for method, row in at.items() if _is_neural_eigenmap(method) and method != DEFAULT_ROW
            and row.get("needs_at_test_time") == "features only"]
    if not rows:
        return None
    best = max(rows, key=lambda row: row["valid_acc_mean"])
    against = {}
    for method in GRAPH_FREE_BASELINES:
        if method in at:
            difference = np.asarray(best["test_acc"]) - np.asarray(at[method]["test_acc"])
            standard_error = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
            against[method] = dict(difference=float(difference.mean()), standard_error=standard_error,
                                   within_one_se=bool(difference.mean() >= -standard_error))
    return dict(method=best["method"], test=best["test_acc_mean"], against=against)


def _best_on_valid(at: dict, methods, with_cs: bool) -> dict:
    candidates = [at[m] for m in methods if m in at] + ([at[m + " + C&S"] for m in methods if m + " + C&S" in at]
                                                       if with_cs else [])
    return max(candidates, key=lambda row: row["valid_acc_mean"])


def markdown(report: dict) -> str:
    lines = [f"# The default recipe, {report['layout']} layout: test accuracy (%), {report['runs']} runs",
             "", f"Device: {report['device']}. Date: {report['date']}. Commit: {report['commit']}.",
             f"Command: `{report['command']}`", "",
             "Default recipe: a fit at the defaults, its representation (and C&S) chosen on valid. Target: "
             "max(GCN, MLP, features probe) − 1 at 100 % and 10 % labels, GCN − 1 at 1 %"
             + (" (baselines: their better row on valid, with or without C&S)." if report["with_cs"] else "."), "",
             "| graph | labels | default recipe | chosen | features probe | MLP | GCN | target | margin "
             "| best variant | default − best |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        b = row["baselines"]
        chosen = row["chosen"] + (" + C&S" if row["correct_and_smooth"] else "")
        best = "–" if row.get("best_variant_test") is None else f"{100 * row['best_variant_test']:.1f}"
        gap = "–" if row.get("best_variant_test") is None else f"{100 * (row['default'] - row['best_variant_test']):+.1f}"
        lines.append(f"| {row['graph']} | {100 * row['label_ratio']:g}% | {100 * row['default']:.1f} ± "
                     f"{100 * row['default_std']:.1f} | {chosen} | {100 * b['features probe']:.1f} | {100 * b['MLP']:.1f} "
                     f"| {100 * b['GCN']:.1f} | {100 * row['target']:.1f} | {100 * row['margin']:+.1f} | {best} | {gap} |")
    missed = [row for row in report["rows"] if row["margin"] < 0]
    lines += ["", f"Targets met: {len(report['rows']) - len(missed)} of {len(report['rows'])}."]
    if report.get("missing"):
        lines += [f"Not finished within the run: {', '.join(report['missing'])}."]
    if report.get("partial"):
        lines += ["Cut short (only these label ratios finished): " + "; ".join(
            f"{name} ({', '.join(f'{100 * r:g} %' for r in ratios)})" for name, ratios in report["partial"].items())
            + "."]
    within = [row for row in report["rows"] if row.get("best_variant_test") is not None and row["label_ratio"] > 0.05]
    near = [row for row in within if row["default"] >= row["best_variant_test"] - 0.02]
    lines += [f"Within 2 points of the best variant (chosen on valid) at 100 % and 10 % labels: {len(near)} of "
              f"{len(within)}.", "", "## Graph-free Neural Eigenmap (features only at test time)", "",
              "Best on valid of the Neural Eigenmap rows that embed a node from its features alone, against Laplacian "
              "Eigenmap (nontrivial) + features and the MLP: mean run-by-run difference of test accuracy ± its "
              "standard error (points).", "",
              "| graph | labels | graph-free NE | row | vs LE nontrivial + features | vs MLP |", "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        free = row.get("graph_free")
        if not free:
            continue
        cells = []
        for method in GRAPH_FREE_BASELINES:
            c = free["against"].get(method)
            cells.append("–" if c is None else f"{100 * c['difference']:+.1f} ± {100 * c['standard_error']:.1f}"
                         + ("" if c["within_one_se"] else " (behind)"))
        lines.append(f"| {row['graph']} | {100 * row['label_ratio']:g}% | {100 * free['test']:.1f} | {free['method']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def readme_table(report: dict) -> str:
    """The README's short form of ``report``: one line per graph, test accuracy at 100 / 10 / 1 % labels."""
    lines = ["| graph | default recipe | features probe | MLP | GCN | best Neural Eigenmap variant |",
             "|---|---|---|---|---|---|"]
    graphs = dict.fromkeys(row["graph"] for row in report["rows"])
    for graph in graphs:
        rows = sorted((row for row in report["rows"] if row["graph"] == graph), key=lambda row: -row["label_ratio"])

        def cell(value) -> str:
            return " / ".join("–" if value(row) is None else f"{100 * value(row):.1f}" for row in rows)

        lines.append(f"| {graph} | {cell(lambda row: row['default'])} | "
                     + " | ".join(cell(lambda row, b=b: row["baselines"][b]) for b in ("features probe", "MLP", "GCN"))
                     + f" | {cell(lambda row: row.get('best_variant_test'))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=("ogb", "npz"), required=True)
    parser.add_argument("--data", required=True, help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--graphs", nargs="+", default=list(SHARED_GRAPHS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--methods", default=METHODS, help="bench compare's method groups")
    parser.add_argument("--compare-args", default="", help="more bench compare options (the small form in CI: "
                        "'--steps 20 --k 4 --label-ratios 1,0.1')")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=len(SHARED_GRAPHS), help="graphs compared at once")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per graph's process")
    parser.add_argument("--with-cs", action="store_true", help="baselines' + C&S rows compete too")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild the table from OUT")
    args = parser.parse_args()
    if not args.summary_only:
        with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
            for name in pool.starmap(run_one, [(args, name) for name in args.graphs]):
                print(f"done: {name}", flush=True)
    out = Path(args.out)
    finished = [name for name in args.graphs if (out / name / "compare.json").exists()]
    if not finished:
        sys.exit(f"no graph of {args.graphs} has {out}/<graph>/compare.json yet")
    first = json.loads((out / finished[0] / "compare.json").read_text())
    partial = {name: json.loads((out / name / "compare.json").read_text()).get("finished_label_ratios")
               for name in finished}
    report = dict(table(out, args.layout, finished, args.with_cs), missing=sorted(set(args.graphs) - set(finished)),
                  partial={name: ratios for name, ratios in partial.items() if ratios is not None},
                  runs=args.runs, device=first["device"],
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=commit(),
                  command=shlex.join(["python", "-m", "benchmarks.default_recipe", *sys.argv[1:]]), with_cs=args.with_cs, versions=first.get("versions"))
    write_result(out, "default_recipe", report, markdown(report))
    print(markdown(report), flush=True)


if __name__ == "__main__":
    main()
