"""The default recipe against GCN, an MLP and a probe on the features, on the seven shared graphs (issue 26's table).

One command per layout, at one commit:

    PYTHONPATH=. python benchmarks/default_recipe.py --layout ogb --data ../shared/data --out OUT --device cuda
    PYTHONPATH=. python benchmarks/default_recipe.py --layout npz --data ../shared/data --out OUT --device cuda

For each graph this is ``graph-eigenmap bench compare -d <graph> --methods default,features,gcn,mlp --runs 10``
(100 / 10 / 1 % labels) at the library's defaults: the ``default`` row is a fit at the defaults with its
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

GRAPHS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs", "blogcatalog", "uai")
METHODS = "default,features,gcn,mlp"
DEFAULT_ROW = "Neural Eigenmap, default recipe (chosen on valid)"
BASELINES = {"features probe": ("Features (linear probe)",), "MLP": ("MLP on features (supervised)",),
             "GCN": ("GCN (supervised)",)}
"""Each baseline's rows; with ``--with-cs`` its + C&S row competes too (the better one on valid counts)."""


def dataset_path(data: Path, layout: str, name: str) -> Path:
    return data / "ogb" / f"ogbn_{name}" if layout == "ogb" else data / "npz" / f"{name}.npz"


def run_one(args: argparse.Namespace, name: str) -> str:
    """One graph's ``bench compare`` in a subprocess; its progress goes to OUT/<name>/compare.log."""
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    module = "graph_eigenmap_cli.main" if _installed() else "cli.main"
    command = [sys.executable, "-m", module, "bench", "compare", "-d", str(dataset_path(Path(args.data), args.layout,
               name)), "--methods", METHODS, "--runs", str(args.runs), "--device", args.device, "--out", str(out)]
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(out / "compare.log", "w") as log:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log, check=True, env=environment)
    return name


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
            rows.append(dict(graph=name, label_ratio=ratio, default=default["test_acc_mean"],
                             default_std=default["test_acc_std"], chosen=default["chosen"],
                             correct_and_smooth=default["correct_and_smooth"],
                             candidates_valid=default["candidates_valid"],
                             baselines={label: row["test_acc_mean"] for label, row in baselines.items()},
                             target=target, margin=default["test_acc_mean"] - target))
    return dict(layout=layout, rows=rows)


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
             "| graph | labels | default recipe | chosen | features probe | MLP | GCN | target | margin |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        b = row["baselines"]
        chosen = row["chosen"] + (" + C&S" if row["correct_and_smooth"] else "")
        lines.append(f"| {row['graph']} | {100 * row['label_ratio']:g}% | {100 * row['default']:.1f} ± "
                     f"{100 * row['default_std']:.1f} | {chosen} | {100 * b['features probe']:.1f} | {100 * b['MLP']:.1f} "
                     f"| {100 * b['GCN']:.1f} | {100 * row['target']:.1f} | {100 * row['margin']:+.1f} |")
    missed = [row for row in report["rows"] if row["margin"] < 0]
    lines += ["", f"Targets met: {len(report['rows']) - len(missed)} of {len(report['rows'])}."]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=("ogb", "npz"), required=True)
    parser.add_argument("--data", required=True, help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--graphs", nargs="+", default=list(GRAPHS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=len(GRAPHS), help="graphs compared at once")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per graph's process")
    parser.add_argument("--with-cs", action="store_true", help="baselines' + C&S rows compete too")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild the table from OUT")
    args = parser.parse_args()
    if not args.summary_only:
        with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
            for name in pool.starmap(run_one, [(args, name) for name in args.graphs]):
                print(f"done: {name}", flush=True)
    out = Path(args.out)
    first = json.loads((out / args.graphs[0] / "compare.json").read_text())
    report = dict(table(out, args.layout, args.graphs, args.with_cs), runs=args.runs, device=first["device"],
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=_commit(),
                  command=shlex.join(["python", *sys.argv]), with_cs=args.with_cs, versions=first.get("versions"))
    (out / "default_recipe.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "default_recipe.md").write_text(markdown(report))
    print(markdown(report), flush=True)


if __name__ == "__main__":
    main()
