"""Which MLP width and depth? Neural Eigenmap's backbone size swept on the five real graphs, both layouts, chosen on valid.

    PYTHONPATH=. python benchmarks/capacity_sweep.py --data ../shared/data --out DIR [--device cuda --parallel 12]

For each graph of ``../shared/data`` in both layouts (OGB 100-d features, ``.npz`` raw features), each MLP
size in :data:`CAPACITIES` (width × depth) and each configuration in :data:`CONFIGURATIONS` (the library's
defaults, and the graph-free fits ``bench compare`` reads: the node's own features as inputs, adjacency or
nontrivial kernel, stop-gradient on or off), one fit (seed 0, or ``--seed``; k = 64, 500 full-graph steps). Each fit is
read by the linear probe (OGB protocol) on its 64 eigenfunctions at 100 % labels (1 run: every run shares
the training set), 10 % (3 runs) and 1 % (3 runs), on the first 32 at 100 % (does the second half add
anything?), and on its backbone at 100 %; and by the order violations of its exact Rayleigh quotients.
Settings are compared by **valid** accuracy; test accuracy is recorded beside it and not used.

One process per graph × layout × size (``--parallel`` at a time, each with ``--threads`` torch threads)
writes DIR/<layout>_<graph>_<width>x<depth>.json after every fit, so a run stopped early keeps what it
measured; DIR/capacity_sweep.{json,md} then hold the mean over the cases that have every fit, and the
choice: the size with the best mean valid accuracy of the 64 eigenfunctions, (100 % + 10 %) / 2, over
every case and configuration. ``--summarize-only`` rebuilds the summary from the per-job files.
``--sizes 256x2 1024x2`` sweeps only those sizes (the summary then compares the sizes DIR holds); a run
with another ``--seed`` goes to a DIR of its own.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import multiprocessing
import sys
import time
import warnings
from pathlib import Path

from compare_shared import dataset_path  # the shared graphs' paths in each layout
from representation_sweep import probe  # the OGB-protocol probe's valid and test accuracy of one reading
from shared_cases import (
    case_arguments,  # --data, --out, --device, --layouts, --datasets, --steps, --parallel, --threads
)

CAPACITIES = ((256, 2), (512, 2), (1024, 2), (256, 3), (512, 3))
"""(width, depth) of the MLP; the first is the library's default."""
CONFIGURATIONS = {
    "defaults": {},
    "features, adjacency, stop-grad": dict(inputs="features"),
    "features, adjacency, no stop-grad": dict(inputs="features", stop_gradient=False),
    "features, nontrivial, stop-grad": dict(inputs="features", kernel="nontrivial"),
    "features, nontrivial, no stop-grad": dict(inputs="features", kernel="nontrivial", stop_gradient=False),
}
"""Keyword arguments of :func:`graph_eigenmap.neural_eigenmap` beside the size; "defaults" is the library's."""
READINGS = {"eigenfunctions_100": (1.0, 1, None), "eigenfunctions_10": (0.1, 3, None),
            "eigenfunctions_1": (0.01, 3, None), "first_32_100": (1.0, 1, 32)}
"""name -> (label ratio, probe runs, columns kept) of the probe on the embedding."""


def measure(graph, options: dict, device, steps: int | None, seed: int = 0) -> dict:
    """One fit of ``options`` read by the probes of :data:`READINGS`, the backbone probe and the order check."""
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.fit_outputs import order_violations

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = neural_eigenmap(graph, device=device, progress=False, seed=seed, **options,
                                 **({} if steps is None else dict(steps=steps)))
    row = dict(fit_s=round(time.perf_counter() - start, 1),
               rising_pairs=len(order_violations(fitted.rayleigh_quotients)))
    for name, (ratio, runs, columns) in READINGS.items():
        row[name] = probe(fitted.embedding[:, :columns], graph, ratio, runs, device)
    row["backbone_100"] = probe(fitted.backbone, graph, 1.0, 1, device)
    return row


def run_job(args: argparse.Namespace, job: tuple[str, str, int, int]) -> str:
    """Every configuration at one size on one graph in one layout; rewrites OUT/<layout>_<graph>_<w>x<d>.json per fit."""
    import torch

    from graph_eigenmap import load_graph
    from graph_eigenmap.transfer import resolve_device

    layout, name, width, depth = job
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    graph = load_graph(dataset_path(Path(args.data), layout, name))
    result = dict(layout=layout, graph=name, width=width, depth=depth, rows=[])
    path = Path(args.out) / f"{layout}_{name}_{width}x{depth}.json"
    for configuration, options in CONFIGURATIONS.items():
        row = dict(configuration=configuration) | measure(graph, options | dict(width=width, depth=depth), device,
                                                          args.steps, args.seed)
        result["rows"].append(row)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(dict(layout=layout, graph=name, width=width, depth=depth) | row), flush=True)
    return f"{layout}/{name} {width}x{depth}"


def _jobs(args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """Largest inputs first (the raw-feature coauthor_cs and amazon_computers fits take longest), then the rest."""
    jobs = [(layout, name, w, d) for layout in args.layouts for name in args.datasets for w, d in parse_sizes(args.sizes)]
    slow = {("npz", "coauthor_cs"): 0, ("npz", "amazon_computers"): 1, ("ogb", "coauthor_cs"): 2}
    return sorted(jobs, key=lambda job: (slow.get(job[:2], 3), -job[2] * job[3]))


def parse_sizes(texts: list[str]) -> list[tuple[int, int]]:
    """``["256x2", "1024x2"]`` -> ``[(256, 2), (1024, 2)]``, each one of :data:`CAPACITIES`."""
    sizes = [tuple(int(part) for part in text.split("x")) for text in texts]
    unknown = [text for text, size in zip(texts, sizes) if size not in CAPACITIES]
    if unknown:
        raise SystemExit(f"--sizes takes sizes of {', '.join(f'{w}x{d}' for w, d in CAPACITIES)}; got {', '.join(unknown)}")
    return sizes


def summarize(out: Path) -> dict:
    """Mean valid/test accuracy per size × configuration × reading over the cases that have every fit at every size."""
    jobs = [json.loads(path.read_text()) for path in sorted(out.glob("*_*x*.json"))]
    present = {(job["width"], job["depth"]) for job in jobs}
    capacities = [size for size in CAPACITIES if size in present]  # the sizes this folder's run swept
    complete = [job for job in jobs if len(job["rows"]) == len(CONFIGURATIONS)]
    by_case: dict[tuple[str, str], list[dict]] = {}
    for job in complete:
        by_case.setdefault((job["layout"], job["graph"]), []).append(job)
    cases = sorted(case for case, found in by_case.items() if len(found) == len(capacities))
    readings = list(READINGS) + ["backbone_100"]
    table = []
    for width, depth in capacities:
        for configuration in CONFIGURATIONS:
            rows = [row for job in complete if (job["layout"], job["graph"]) in cases
                    and (job["width"], job["depth"]) == (width, depth) for row in job["rows"]
                    if row["configuration"] == configuration]
            entry = dict(width=width, depth=depth, configuration=configuration, cases=len(rows),
                         rising_pairs=round(sum(r["rising_pairs"] for r in rows) / max(1, len(rows)), 1),
                         fit_s=round(sum(r["fit_s"] for r in rows) / max(1, len(rows)), 1))
            for reading in readings:
                for part in ("valid", "test"):
                    entry[f"{reading}_{part}"] = round(sum(r[reading][part] for r in rows) / max(1, len(rows)), 4)
            table.append(entry)
    scores = {}
    for width, depth in capacities:
        entries = [e for e in table if (e["width"], e["depth"]) == (width, depth)]
        scores[f"{width}x{depth}"] = round(sum(e["eigenfunctions_100_valid"] + e["eigenfunctions_10_valid"]
                                               for e in entries) / (2 * max(1, len(entries))), 4)
    chosen = max(scores, key=scores.get) if cases else None
    per_case = {f"{job['layout']}/{job['graph']}": {} for job in complete if (job["layout"], job["graph"]) in cases}
    for job in complete:
        key = f"{job['layout']}/{job['graph']}"
        if key in per_case:
            per_case[key][f"{job['width']}x{job['depth']}"] = {
                row["configuration"]: dict(valid_100=row["eigenfunctions_100"]["valid"],
                                           test_100=row["eigenfunctions_100"]["test"],
                                           valid_10=row["eigenfunctions_10"]["valid"],
                                           test_10=row["eigenfunctions_10"]["test"]) for row in job["rows"]}
    return dict(cases=[f"{layout}/{name}" for layout, name in cases], sizes=[f"{w}x{d}" for w, d in capacities],
                table=table, scores=scores, chosen=chosen,
                per_case=per_case, incomplete_jobs=len(jobs) - len(complete))


def to_markdown(report: dict) -> str:
    lines = ["# Neural Eigenmap's MLP size: width × depth, chosen on valid", "",
             f"{report['date']}, {report['device']}. `{report['command']}`"
             + (f" (summarized by `{report['summarized_by']}`)" if "summarized_by" in report else ""), "",
             f"Cases: {', '.join(report['cases']) or 'none complete'}. One fit per setting (seed {report.get('seed', 0)}), "
             "k = 64, 500 steps. "
             "Mean over the cases of the probe's **valid** accuracy (%) (test in brackets). Chosen: the size with the "
             "best mean valid accuracy of the 64 eigenfunctions, (100 % labels + 10 %) / 2, over every case and "
             "configuration." + (f" {report['incomplete_jobs']} job(s) did not finish and are left out."
                                 if report["incomplete_jobs"] else ""), "",
             "| size | score (valid) |", "|---|---|"]
    lines += [f"| {size}{' **chosen**' if size == report['chosen'] else ''} | {100 * score:.2f} |"
              for size, score in report["scores"].items()]
    lines += ["", "| size | configuration | rising pairs | 64 eigenfunctions, 100 % | 10 % | 1 % | first 32, 100 % | "
              "backbone, 100 % | fit (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for e in report["table"]:
        cells = [f"{100 * e[f'{r}_valid']:.1f} ({100 * e[f'{r}_test']:.1f})" for r in
                 ("eigenfunctions_100", "eigenfunctions_10", "eigenfunctions_1", "first_32_100", "backbone_100")]
        lines.append(f"| {e['width']}x{e['depth']} | {e['configuration']} | {e['rising_pairs']} | " + " | ".join(cells)
                     + f" | {e['fit_s']} |")
    lines += ["", "Per case, valid % of the 64 eigenfunctions at 100 % labels / at 10 %, graph-free configurations "
              "(features inputs) best of the four:", "",
              "| case | " + " | ".join(report["scores"]) + " |", "|---|" + "---|" * len(report["scores"])]
    for case, sizes in report["per_case"].items():
        cells = []
        for size in report["scores"]:
            graph_free = [v for k, v in sizes.get(size, {}).items() if k.startswith("features")]
            best = max(graph_free, key=lambda v: v["valid_100"] + v["valid_10"]) if graph_free else None
            cells.append(f"{100 * best['valid_100']:.1f} / {100 * best['valid_10']:.1f}" if best else "")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import torch

    parser = case_arguments(__doc__.splitlines()[0])
    parser.add_argument("--summarize-only", action="store_true", help="rebuild the summary from DIR's job files")
    parser.add_argument("--sizes", nargs="+", default=[f"{w}x{d}" for w, d in CAPACITIES], help="WIDTHxDEPTH sizes to sweep")
    parser.add_argument("--seed", type=int, default=0, help="every fit's seed")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "PYTHONPATH=. python " + " ".join(sys.argv)
    header = dict(command=command, seed=args.seed, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else "CPU")
    if args.summarize_only:
        header = json.loads((out / "run.json").read_text()) | dict(summarized_by=command)
    else:
        (out / "run.json").write_text(json.dumps(header, indent=1) + "\n")
        with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
            for done in pool.imap_unordered(functools.partial(run_job, args), _jobs(args)):
                print(f"done: {done}", flush=True)
    report = header | summarize(out)
    (out / "capacity_sweep.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "capacity_sweep.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
