"""Which Neural Eigenmap defaults? Inputs, kernel and output layer swept on the five real graphs, both layouts, chosen on valid.

    PYTHONPATH=. python benchmarks/representation_sweep.py --data ../shared/data --out DIR [--parallel 8 --threads 2]

For each graph of ``../shared/data`` in both layouts (OGB 100-d features, ``.npz`` raw features) and each
setting of ``--inputs`` (features, propagated:1..3) × ``--kernel`` (adjacency, nontrivial), one fit at
the library's other defaults (stop-gradient on, k = 64, 500 steps). Each fit is read twice: with its
trained output layer and with the Rayleigh–Ritz output layer solved on the same backbone
(``--rayleigh-ritz``). For each reading: order violations of the exact Rayleigh quotients, and the
linear probe (OGB protocol) on all 64 eigenfunctions at 100 % labels (1 run: every run shares the
training set) and 10 % labels (3 runs), and on the first 16 at 100 %; the backbone at 100 %.
Settings are compared by **valid** accuracy; test accuracy is recorded beside it and not used.

Writes DIR/<layout>_<graph>.json per graph as it finishes, then DIR/representation_sweep.{json,md}
with the mean valid accuracy of each setting over the ten graph × layout cases and the choice.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import itertools
import json
import multiprocessing
import sys
import time
from pathlib import Path

from compare_shared import DATASETS, dataset_path  # the shared graphs and their paths in each layout

LAYOUTS = ("ogb", "npz")
INPUTS = ("features", "propagated:1", "propagated:2", "propagated:3")
KERNELS = ("adjacency", "nontrivial")
HEADS = ("trained", "rayleigh-ritz")
PREFIX = 16


def probe(x, graph, ratio: float, runs: int, device) -> dict:
    from graph_eigenmap.evaluation import evaluate_embeddings

    result = evaluate_embeddings(x, graph, label_ratio=ratio, runs=runs, device=device)
    return dict(valid=round(result.valid_acc_mean, 4), test=round(result.test_acc_mean, 4))


def read_head(head: str, embedding, quotients, graph, device) -> dict:
    """Order and probes of one reading ``[n, k]`` of a fit."""
    from graph_eigenmap.fit_outputs import order_violations

    violations = order_violations(quotients)
    return dict(head=head, rising_pairs=len(violations),
                largest_rise=round(max([v["rise"] for v in violations], default=0.0), 4),
                eigenfunctions_100=probe(embedding, graph, 1.0, 1, device),
                eigenfunctions_10=probe(embedding, graph, 0.1, 3, device),
                prefix_100=probe(embedding[:, :PREFIX], graph, 1.0, 1, device))


def run_setting(graph, inputs: str, kernel_name: str, device) -> list[dict]:
    import torch

    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.inference import embed_nodes
    from graph_eigenmap.inputs import model_input_graph
    from graph_eigenmap.kernel import full_kernel
    from graph_eigenmap.metrics import rayleigh_quotients
    from graph_eigenmap.rayleigh_ritz import rayleigh_ritz_head

    start = time.perf_counter()
    fitted = neural_eigenmap(graph, device=device, progress=False, kernel=kernel_name, inputs=inputs)
    fit_s = time.perf_counter() - start
    base = dict(inputs=inputs, kernel=kernel_name, fit_s=round(fit_s, 1),
                backbone_100=probe(fitted.backbone, graph, 1.0, 1, device))
    rows = [base | read_head("trained", fitted.embedding, fitted.rayleigh_quotients, graph, device)]
    model = copy.deepcopy(fitted.model)
    model_inputs = torch.from_numpy(model_input_graph(graph, inputs, device).features)
    kernel = full_kernel(graph, fitted.config.kernel, device)
    rayleigh_ritz_head(model, model_inputs, kernel)
    embedding, _ = embed_nodes(model, model_inputs, with_backbone=False)
    quotients = rayleigh_quotients(torch.from_numpy(embedding).to(device), kernel)
    rows.append(base | read_head("rayleigh-ritz", embedding, quotients, graph, device))
    return rows


def run_case(args: argparse.Namespace, layout: str, name: str) -> str:
    """Every setting on one graph in one layout, in its own process; writes OUT/<layout>_<name>.json."""
    import torch

    from graph_eigenmap import load_graph
    from graph_eigenmap.transfer import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    graph = load_graph(dataset_path(Path(args.data), layout, name))
    case = dict(layout=layout, graph=name, rows=[])
    started = time.perf_counter()
    for inputs, kernel_name in itertools.product(args.inputs, KERNELS):
        case["rows"] += run_setting(graph, inputs, kernel_name, device)
        print(f"[{layout}/{name}] {inputs} {kernel_name}: {time.perf_counter() - started:.0f} s", flush=True)
        (Path(args.out) / f"{layout}_{name}.json").write_text(json.dumps(case, indent=1) + "\n")
    return f"{layout}/{name}"


def _run_case_star(triple):
    return run_case(*triple)


def summarize(out: Path, command: str, device_name: str) -> dict:
    """Mean valid (and test) accuracy of each setting × head over the cases found in ``out``."""
    found = [json.loads(path.read_text()) for path in sorted(out.glob("*_*.json"))
             if path.name not in ("representation_sweep.json", "run.json")]
    settings_per_case = max((len(case["rows"]) for case in found), default=0)
    cases = [case for case in found if len(case["rows"]) == settings_per_case]  # only cases with every setting
    keys = ("eigenfunctions_100", "eigenfunctions_10", "prefix_100", "backbone_100")
    table = {}
    for case in cases:
        for row in case["rows"]:
            entry = table.setdefault((row["inputs"], row["kernel"], row["head"]),
                                     dict(cases=0, rising_pairs=0, **{f"{k}_{part}": 0.0 for k in keys
                                                                      for part in ("valid", "test")}))
            entry["cases"] += 1
            entry["rising_pairs"] += row["rising_pairs"]
            for key in keys:
                for part in ("valid", "test"):
                    entry[f"{key}_{part}"] += row[key][part]
    settings = []
    for (inputs, kernel_name, head), entry in table.items():
        count = entry.pop("cases")
        settings.append(dict(inputs=inputs, kernel=kernel_name, head=head, cases=count,
                             **{key: round(value / count, 4) for key, value in entry.items()}))
    score = lambda s: (s["eigenfunctions_100_valid"] + s["eigenfunctions_10_valid"]) / 2  # noqa: E731
    chosen = max(settings, key=score) if settings else None
    return dict(command=command, device=device_name,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                cases=[f"{c['layout']}/{c['graph']}" for c in cases],
                incomplete=[f"{c['layout']}/{c['graph']}" for c in found if c not in cases], settings=settings,
                chosen_by="mean over the cases of (valid accuracy of the 64 eigenfunctions at 100 % labels + at 10 %) / 2",
                chosen=chosen, per_case=cases, incomplete_cases=[c for c in found if c not in cases])


def to_markdown(report: dict) -> str:
    lines = ["# Neural Eigenmap defaults sweep: inputs × kernel × output layer", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             f"Cases: {', '.join(report['cases'])}"
             + (f" (left out, not every setting finished: {', '.join(report['incomplete'])})" if report["incomplete"] else "")
             + ". Stop-gradient on, k = 64, 500 steps, other settings at the "
             "library's defaults. Mean over the cases of the probe's **valid** accuracy (%) (test in brackets); "
             f"chosen by {report['chosen_by']}.", "",
             "| inputs | kernel | output layer | rising pairs (> 0.01), mean | 64 eigenfunctions, 100 % | "
             f"64 eigenfunctions, 10 % | first {PREFIX}, 100 % | backbone, 100 % |",
             "|---|---|---|---|---|---|---|---|"]
    cell = lambda s, key: f"{100 * s[key + '_valid']:.1f} ({100 * s[key + '_test']:.1f})"  # noqa: E731
    for s in sorted(report["settings"], key=lambda s: (INPUTS.index(s["inputs"]), s["kernel"], s["head"])):
        mark = " **chosen**" if s == report["chosen"] else ""
        lines.append(f"| {s['inputs']} | {s['kernel']} | {s['head']}{mark} | {s['rising_pairs']:.1f} | "
                     f"{cell(s, 'eigenfunctions_100')} | {cell(s, 'eigenfunctions_10')} | {cell(s, 'prefix_100')} | "
                     f"{cell(s, 'backbone_100')} |")
    lines += ["", "Per case (valid % of the 64 eigenfunctions at 100 % labels, trained / Rayleigh–Ritz output layer):", "",
              "| case | " + " | ".join(f"{i}, {k}" for i in INPUTS for k in KERNELS) + " |",
              "|---|" + "---|" * (len(INPUTS) * len(KERNELS))]
    for case in report["per_case"] + report["incomplete_cases"]:
        cells = []
        for inputs, kernel_name in itertools.product(INPUTS, KERNELS):
            found = {r["head"]: r for r in case["rows"] if r["inputs"] == inputs and r["kernel"] == kernel_name}
            cells.append(" / ".join(f"{100 * found[h]['eigenfunctions_100']['valid']:.1f}" if h in found else "–"
                                    for h in HEADS))
        lines.append(f"| {case['layout']}/{case['graph']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS))
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=1, help="cases run at once, each in its own process")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--summarize-only", action="store_true", help="only rebuild the summary from OUT")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    command = "PYTHONPATH=. python " + " ".join(sys.argv)
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    if args.summarize_only and (out / "run.json").exists():
        run = json.loads((out / "run.json").read_text())
        command, device_name = run["command"] + "  (summarized by: " + command + ")", run["device"]
    if not args.summarize_only:
        (out / "run.json").write_text(json.dumps(dict(command=command, device=device_name)) + "\n")
        jobs = [(args, layout, name) for name in args.datasets for layout in args.layouts]
        with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
            for case in pool.imap_unordered(_run_case_star, jobs):
                print(f"done: {case}", flush=True)
    report = summarize(out, command, device_name)
    (out / "representation_sweep.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "representation_sweep.md").write_text(to_markdown(report))
    print(to_markdown(report), flush=True)


if __name__ == "__main__":
    main()
