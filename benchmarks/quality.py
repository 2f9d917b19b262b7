"""Quality suite: accuracy and spectrum on the shared graphs, one command for each part.

    python -m benchmarks.quality --data ../shared/data --out DIR [--parts compare spectrum truncation] [--device cuda]
    python -m benchmarks.quality --data DIR --layouts npz --datasets tiny --out OUT --small   # CI's small form

Parts (each graph of ``../shared/data`` in each layout; ``--parallel`` graphs side by side, each in its own process):

* ``compare``: ``graph-eigenmap bench compare`` on each graph (every method group, 10 runs, 100 / 10 / 1 % labels;
  Neural Eigenmap at the library's defaults unless ``--steps`` / ``--width`` / ``--depth`` / ``--estimator``), into
  OUT/compare/<layout>/<graph>/compare.{json,md}, and per layout a summary of the main rows (graphs as rows,
  100 / 10 / 1 % labels per cell) in OUT/compare/<layout>/summary.{md,json}.
* ``spectrum``: how much of the exact top-k spectrum Neural Eigenmap captures (tr(QᵀĀQ) / Σλ, Q an orthonormal basis
  of the embedding), with identity features and with the MLP on the library's default inputs and on the node's own
  features, and the order of its outputs (neighbouring exact Rayleigh quotients that rise by more than 0.01), for
  k in ``--ks``: OUT/spectrum.{json,md}.
* ``truncation``: is every prefix a good shorter code? The probe (OGB protocol, 100 % labels) on the first m outputs,
  m = 1, 2, 4, ..., k, of the stop-gradient fit and of the one without stop-gradient (mean over ``--seeds`` fits),
  beside the exact eigenvectors' curve (what a fit that learned them exactly would draw), for the adjacency and the
  nontrivial kernel: OUT/truncation.{json,md}, with whether the stop-gradient curve rises with m and beats the
  span's prefix at every m <= 16.

``spectrum`` and ``truncation`` read the OGB layout unless ``--layouts`` says otherwise (the layouts share graph,
labels and split). Every file records the provenance of :mod:`benchmarks.common` (each compare.json beside
``bench compare``'s own keys: ``commit``, ``seeds``, ``suite_command``, and CUDA among the ``versions``).
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import warnings
from pathlib import Path

from benchmarks.common import (
    LAYOUTS,
    ROOT,
    SHARED_GRAPHS,
    dataset_path,
    markdown_header,
    parse_suite_args,
    provenance,
    run_side_by_side,
    write_result,
)

PARTS = ("compare", "spectrum", "truncation")
SUMMARY_METHODS = (
    "Features (linear probe)", "Laplacian Eigenmap, top + features", "Laplacian Eigenmap, nontrivial",
    "Laplacian Eigenmap, nontrivial + features", "NE stop-grad: eigenfunctions", "NE no stop-grad: backbone",
    "NE no stop-grad: backbone + C&S", "MLP on features (supervised)", "GCN (supervised)", "GCN (supervised) + C&S",
)
"""The columns of a layout's summary, where its reports hold them."""
KERNELS = ("adjacency", "nontrivial")
LE_VARIANT = {"adjacency": "top", "nontrivial": "nontrivial"}
"""The Laplacian Eigenmap variant whose eigenvectors each kernel's stop-gradient outputs approximate."""
SMALL_PREFIX = 16
"""The stop-gradient prefix must beat the no-stop-gradient one at every m up to this."""
SMALL = ["--runs", "2", "--label-ratios", "1,0.1", "--steps", "20", "--k", "8", "--ks", "4", "8", "--max-epochs", "20",
         "--methods", "features,le-nontrivial,ne,gcn,mlp"]
"""What ``--small`` adds: a few steps, two runs, small k (CI's form)."""


def fit_options(args: argparse.Namespace) -> dict:
    """Neural Eigenmap options given on the command line (the library's defaults for the others)."""
    chosen = dict(steps=args.steps, width=args.width, depth=args.depth, estimator=args.estimator)
    return {key: value for key, value in chosen.items() if value is not None}


def compare_one(args: argparse.Namespace, job: tuple[str, str]) -> str:
    """One graph's ``bench compare``; its progress goes to stdout and to its compare.log."""
    from graph_eigenmap import load_graph
    from graph_eigenmap.evaluation.compare import compare, parse_label_ratios
    from graph_eigenmap.transfer import resolve_device

    layout, name = job
    out = Path(args.out) / "compare" / layout / name
    out.mkdir(parents=True, exist_ok=True)
    options = fit_options(args)
    command = shlex.join(["graph-eigenmap", "bench", "compare", "-d", str(dataset_path(args.shown_data, layout, name)),
                          "--out", str(out), "--runs", str(args.runs), "--k", str(args.k), "--methods", args.methods,
                          "--label-ratios", args.label_ratios, "--max-epochs", str(args.max_epochs),
                          "--propagation-hops", str(args.propagation_hops),
                          *[part for key, value in options.items() for part in (f"--{key}", str(value))],
                          *(["--fit-per-run"] if args.fit_per_run else [])])
    device = resolve_device(args.device)
    with open(out / "compare.log", "w") as log_file:
        def log(message: str) -> None:
            print(f"[{layout}/{name}] {message}", flush=True)
            log_file.write(message + "\n")
            log_file.flush()

        report = compare(load_graph(dataset_path(args.data, layout, name)), out_dir=out, methods=args.methods.split(","),
                         label_ratios=parse_label_ratios(args.label_ratios), runs=args.runs, k=args.k, device=device,
                         fit_options=options, max_epochs=args.max_epochs, propagation_hops=args.propagation_hops,
                         fit_per_run=args.fit_per_run, command=command, log=log)
    header = provenance("quality", args.argv, device, seeds=range(args.runs))
    report.update(commit=header["commit"], seeds=header["seeds"], suite=header["suite"],
                  suite_command=header["command"], versions=dict(report.get("versions") or {}, **header["versions"]))
    (out / "compare.json").write_text(json.dumps(report, indent=1) + "\n")
    return f"{layout}/{name}"


def summary_rows(folder: Path, names) -> tuple[list[str], list[float], dict]:
    """The summary's methods, label ratios and ``{graph: {method: {ratio: test accuracy}}}`` from the reports found."""
    reports = {name: json.loads((folder / name / "compare.json").read_text()) for name in names
               if (folder / name / "compare.json").exists()}
    if not reports:
        return [], [], {}
    needs = {row["method"]: row["needs_at_test_time"] for r in reports.values() for row in r["results"]}
    methods = [m for m in SUMMARY_METHODS if m in needs]
    ratios = next(iter(reports.values()))["label_ratios"]
    table = {name: {method: {row["label_ratio"]: row["test_acc_mean"] for row in report["results"]
                             if row["method"] == method} for method in methods} for name, report in reports.items()}
    return [f"{m} ({needs[m]})" for m in methods], ratios, table


def summary(folder: Path, layout: str, names) -> str:
    """One Markdown table: graphs as rows, the main methods as columns, 100 / 10 / 1 % labels per cell."""
    columns, ratios, table = summary_rows(folder, names)
    if not table:
        return "no results\n"
    first = json.loads((folder / next(iter(table)) / "compare.json").read_text())
    lines = [f"# bench compare, {layout} layout: test accuracy (%), mean of {first['runs']} runs at "
             + " / ".join(f"{100 * r:g}%" for r in ratios) + " labels", "",
             f"Device: {first['device']}. Generated by `python -m benchmarks.quality` from each graph's compare.json.", "",
             "| graph | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, methods in table.items():
        cells = [" / ".join(f"{100 * rows[r]:.1f}" if r in rows else "–" for r in ratios) for rows in methods.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_compare(args: argparse.Namespace, layouts, names) -> dict:
    jobs = [(layout, name) for layout in layouts for name in names]
    for done in run_side_by_side(functools.partial(compare_one, args), jobs, args.parallel, args.threads):
        print(f"done: {done}", flush=True)
    summaries = {}
    for layout in layouts:
        folder = Path(args.out) / "compare" / layout
        columns, ratios, table = summary_rows(folder, names)
        report = dict(provenance("quality", args.argv, args.device_used, seeds=range(args.runs)), part="compare",
                      layout=layout, label_ratios=ratios, methods=columns, test_acc_mean=table)
        write_result(folder, "summary", report, summary(folder, layout, names))
        summaries[layout] = report
    return summaries


def spectrum_case(args: argparse.Namespace, job: tuple[str, str]) -> list[dict]:
    """Captured spectrum and order of Neural Eigenmap's outputs on one graph, for each k and input."""
    from graph_eigenmap import load_graph, neural_eigenmap, normalized_adjacency
    from graph_eigenmap.baselines import top_eigenpairs
    from graph_eigenmap.fit_outputs import order_violations
    from graph_eigenmap.metrics import captured_spectrum
    from graph_eigenmap.transfer import resolve_device

    layout, name = job
    graph, device = load_graph(dataset_path(args.data, layout, name)), resolve_device(args.device)
    kernel = normalized_adjacency(graph)
    rows = []
    for k in args.ks:
        exact, _ = top_eigenpairs(kernel, k)
        for features, inputs in (("identity", None), ("input", "auto"), ("input", "features")):
            options = dict(features=features, **({} if inputs is None else dict(inputs=inputs)), **fit_options(args))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = neural_eigenmap(graph, k=k, device=device, progress=False, seed=0, **options)
            quotients = result.rayleigh_quotients
            rows.append(dict(layout=layout, graph=name, k=k, features=features,
                             inputs=str(result.config.inputs) if features == "input" else "-",
                             estimator=result.config.estimator, steps=result.config.steps,
                             captured_spectrum=round(captured_spectrum(result.embedding, kernel, exact), 4),
                             order_violations=len(order_violations(quotients)),
                             rayleigh_first=[round(float(v), 4) for v in quotients[:4]],
                             exact_first=[round(float(v), 4) for v in exact[:4]],
                             rayleigh_last=round(float(quotients[-1]), 4), exact_last=round(float(exact[-1]), 4),
                             wall_time_s=round(result.metadata["wall_time_s"], 1)))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def spectrum_markdown(report: dict) -> str:
    lines = markdown_header("Captured spectrum of Neural Eigenmap on the shared graphs", report) + [
        "Captured spectrum = tr(QᵀĀQ) / (sum of the exact top-k eigenvalues of D^-1/2 A D^-1/2); 1.0 = the top-k "
        "eigenspace. Order violations: neighbouring outputs whose exact Rayleigh quotient rises by more than 0.01.", "",
        "| layout | graph | k | features | inputs | estimator | steps | captured | order violations | RQ first 4 | "
        "exact first 4 | RQ k-th | exact k-th | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['layout']} | {r['graph']} | {r['k']} | {r['features']} | {r['inputs']} | {r['estimator']} | "
                     f"{r['steps']} | {r['captured_spectrum']:.4f} | {r['order_violations']} | {r['rayleigh_first']} | "
                     f"{r['exact_first']} | {r['rayleigh_last']} | {r['exact_last']} | {r['wall_time_s']} |")
    return "\n".join(lines) + "\n"


def curve(graph, embedding, device) -> list[dict]:
    """``[{m, valid, test}]``: the probe (100 % labels, one run) on the first m columns, m = 1, 2, 4, ..., k."""
    from graph_eigenmap.evaluation.truncation import truncation_curve

    return [dict(m=row["m"], valid=round(row["valid_acc_mean"], 4), test=round(row["test_acc_mean"], 4))
            for row in truncation_curve(embedding, graph, runs=1, device=device)]


def mean_curve(curves: list[list[dict]]) -> list[dict]:
    """The point-by-point mean of curves over fit seeds."""
    return [dict(m=points[0]["m"], **{key: round(sum(p[key] for p in points) / len(points), 4)
                                      for key in ("valid", "test")}) for points in zip(*curves)]


def largest_fall(points: list[dict]) -> float:
    """The largest fall of test accuracy from one prefix to the next (0 for a curve that never falls)."""
    return round(max([0.0] + [a["test"] - b["test"] for a, b in zip(points, points[1:])]), 4)


def verdict(ordered: list[dict], span: list[dict]) -> dict:
    """Whether the stop-gradient curve rises with m, and beats the span's prefix at every m <= 16."""
    small = [a["test"] - b["test"] for a, b in zip(ordered, span) if a["m"] <= SMALL_PREFIX]
    return dict(monotone=largest_fall(ordered) == 0, largest_fall=largest_fall(ordered),
                beats_span_small=min(small) > 0, smallest_margin=round(min(small), 4))


def truncation_case(args: argparse.Namespace, job: tuple[str, str]) -> dict:
    """Both kernels on one graph: the learned curves (stop-gradient and not, mean over seeds) and the exact one."""
    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.baselines import laplacian_eigenmap
    from graph_eigenmap.transfer import resolve_device

    layout, name = job
    graph, device = load_graph(dataset_path(args.data, layout, name)), resolve_device(args.device)
    kernels = {}
    for kernel in KERNELS:
        learned = {}
        for stop_gradient in (True, False):
            curves = []
            for seed in range(args.seeds):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitted = neural_eigenmap(graph, k=args.k, device=device, progress=False, kernel=kernel,
                                             stop_gradient=stop_gradient, seed=seed, **fit_options(args))
                curves.append(curve(graph, fitted.embedding, device))
            learned[stop_gradient] = mean_curve(curves)
        _, vectors = laplacian_eigenmap(graph, args.k, variant=LE_VARIANT[kernel], device=device)
        exact = curve(graph, vectors.astype("float32"), device)
        kernels[kernel] = dict(stop_gradient=learned[True], no_stop_gradient=learned[False], exact=exact,
                               exact_largest_fall=largest_fall(exact), **verdict(learned[True], learned[False]))
        print(json.dumps(dict(layout=layout, graph=name, kernel=kernel) | verdict(learned[True], learned[False])),
              flush=True)
    return dict(layout=layout, graph=name, kernels=kernels)


def truncation_markdown(report: dict) -> str:
    lines = markdown_header("Truncation curves: stop-gradient prefixes against the span's and the exact eigenvectors'",
                            report) + [
        f"Test accuracy (%) of the probe on the first m outputs (100 % labels): stop-gradient / no stop-gradient / exact "
        f"eigenvectors; learned curves the mean of {report['fits_per_curve']} fit(s). Monotone: the stop-gradient curve "
        f"never falls as m grows. Beats: it is above the no-stop-gradient prefix at every m ≤ {SMALL_PREFIX}.", ""]
    for kernel in KERNELS:
        cases = [c for c in report["cases"] if kernel in c["kernels"]]
        if not cases:
            continue
        sizes = [row["m"] for row in cases[0]["kernels"][kernel]["stop_gradient"]]
        verdicts = [c["kernels"][kernel] for c in cases]
        lines += [f"## {kernel} kernel", "",
                  f"Monotone on {sum(v['monotone'] for v in verdicts)} of {len(cases)} cases; beats the span's prefix "
                  f"at every m ≤ {SMALL_PREFIX} on {sum(v['beats_span_small'] for v in verdicts)} of {len(cases)}; "
                  f"the exact curve is monotone on {sum(v['exact_largest_fall'] == 0 for v in verdicts)}.", "",
                  "| layout | graph | " + " | ".join(f"m = {m}" for m in sizes) + " | monotone | beats at m ≤ 16 |",
                  "|---|---|" + "---|" * len(sizes) + "---|---|"]
        for case, v in zip(cases, verdicts):
            cells = [f"{100 * a['test']:.1f} / {100 * b['test']:.1f} / {100 * c['test']:.1f}"
                     for a, b, c in zip(v["stop_gradient"], v["no_stop_gradient"], v["exact"])]
            lines.append(f"| {case['layout']} | {case['graph']} | " + " | ".join(cells) +
                         f" | {'yes' if v['monotone'] else 'no (' + str(round(100 * v['largest_fall'], 1)) + ')'} | "
                         f"{'yes' if v['beats_span_small'] else 'no (' + str(round(100 * v['smallest_margin'], 1)) + ')'} |")
        lines.append("")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--layouts", nargs="+", default=None, choices=LAYOUTS,
                        help="default: both for compare, ogb for spectrum and truncation")
    parser.add_argument("--datasets", nargs="+", default=list(SHARED_GRAPHS))
    parser.add_argument("--small", action="store_true", help="CI's small form: " + " ".join(SMALL))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=1, help="graphs run at once, each in its own process")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--runs", type=int, default=10, help="compare: seeds per method and label ratio")
    parser.add_argument("--label-ratios", default="1,0.1,0.01", help="compare: fractions of the train split")
    parser.add_argument("--methods", default="features,le,le-nontrivial,ne,ne-nontrivial,ne-propagated,ne-features,"
                                             "ne-nontrivial-features,ne-svd,ne-svd-propagated,gcn,mlp",
                        help="compare: bench compare's method groups")
    parser.add_argument("--k", type=int, default=64, help="compare and truncation: eigenfunctions")
    parser.add_argument("--ks", nargs="+", type=int, default=[16, 64], help="spectrum: the k of each fit")
    parser.add_argument("--seeds", type=int, default=1, help="truncation: fits per learned curve (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=None, help="Neural Eigenmap steps (default: the library's)")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--estimator", default=None)
    parser.add_argument("--max-epochs", type=int, default=500, help="compare: the supervised baselines' epochs")
    parser.add_argument("--propagation-hops", type=int, default=3, help="compare: K of the ne-propagated group")
    parser.add_argument("--fit-per-run", action="store_true", help="compare: each Neural Eigenmap variant per run")
    return parse_suite_args(parser, argv, SMALL)


def main(argv: list[str] | None = None) -> dict:
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.transfer import resolve_device

    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device_used = resolve_device(args.device)
    data = Path(args.data)
    args.shown_data = Path("../shared/data") if data.resolve() == (ROOT.parent / "shared" / "data").resolve() else data
    out, reports = Path(args.out), {}
    if "compare" in args.parts:
        reports["compare"] = run_compare(args, args.layouts or LAYOUTS, args.datasets)
    jobs = [(layout, name) for layout in args.layouts or ("ogb",) for name in args.datasets]
    if "spectrum" in args.parts:
        rows = run_side_by_side(functools.partial(spectrum_case, args), jobs, args.parallel, args.threads)
        report = dict(provenance("quality", argv, args.device_used, seeds=[0]), part="spectrum",
                      rows=[row for case in rows for row in case])
        write_result(out, "spectrum", report, spectrum_markdown(report))
        reports["spectrum"] = report
    if "truncation" in args.parts:
        cases = run_side_by_side(functools.partial(truncation_case, args), jobs, args.parallel, args.threads)
        report = dict(provenance("quality", argv, args.device_used, seeds=range(args.seeds)), part="truncation",
                      k=args.k, fits_per_curve=args.seeds, cases=cases)
        write_result(out, "truncation", report, truncation_markdown(report))
        reports["truncation"] = report
    return reports


if __name__ == "__main__":
    main()
