"""Is every prefix a good shorter code? Truncation curves at the library's defaults, stop-gradient against none.

    PYTHONPATH=. python benchmarks/truncation_at_defaults.py --data ../shared/data --out DIR [--device cuda --parallel 10 --seeds 3]

For each of the five shared graphs in both layouts and each kernel (adjacency, nontrivial), two fits
at the library's other defaults (k = 64, inputs ``auto``, same seed): with stop-gradient (ordered
outputs) and without (only the span). Each fit's first m outputs, m = 1, 2, 4, ..., 64, are probed
(OGB protocol, 100 % labels, one run). With ``--seeds N`` each of the two is fitted N times (seeds
0..N-1) and the curves are averaged: one fit's curve moves by a point or more from seed to seed, as
much as the margins the verdict reads. The promise checked: with stop-gradient the curve rises with m
(test accuracy never falls from one m to the next) and beats the no-stop-gradient prefix at every
m ≤ 16. Writes DIR/<layout>_<graph>.json per case as it finishes, then DIR/truncation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import warnings

from shared_cases import case_arguments, run_cases, write_report

KERNELS = ("adjacency", "nontrivial")
SMALL_PREFIX = 16
"""The stop-gradient prefix must beat the no-stop-gradient one at every m up to this."""


def curve(graph, kernel: str, stop_gradient: bool, device, steps: int | None, seed: int = 0,
          width: int | None = None) -> list[dict]:
    """``[{m, valid, test}]``: the probe on the first m outputs of one fit (``seed``), m = 1, 2, 4, ..., 64."""
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.evaluation.truncation import truncation_curve

    options = {key: value for key, value in dict(steps=steps, width=width).items() if value is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = neural_eigenmap(graph, device=device, progress=False, kernel=kernel, stop_gradient=stop_gradient,
                                 seed=seed, **options)
    return [dict(m=row["m"], valid=round(row["valid_acc_mean"], 4), test=round(row["test_acc_mean"], 4))
            for row in truncation_curve(fitted.embedding, graph, runs=1, device=device)]


def mean_curve(curves: list[list[dict]]) -> list[dict]:
    """The point-by-point mean of curves over fit seeds."""
    return [dict(m=points[0]["m"], **{key: round(sum(p[key] for p in points) / len(points), 4) for key in ("valid", "test")})
            for points in zip(*curves)]


def verdict(ordered: list[dict], span: list[dict]) -> dict:
    """Whether the stop-gradient curve rises with m, and beats the span's prefix at every m <= 16."""
    drops = [a["test"] - b["test"] for a, b in zip(ordered, ordered[1:])]
    small = [(a["test"] - b["test"]) for a, b in zip(ordered, span) if a["m"] <= SMALL_PREFIX]
    return dict(monotone=max(drops) <= 0, largest_drop=round(max(0.0, max(drops)), 4),
                beats_span_small=min(small) > 0, smallest_margin=round(min(small), 4))


def run_case(args: argparse.Namespace, layout: str, name: str, graph, device) -> dict:
    """Both kernels on one graph in one layout."""
    kernels = {}
    for kernel in args.kernels:
        per_seed = {sg: [curve(graph, kernel, sg, device, args.steps, seed, args.width) for seed in range(args.seeds)] for sg in (True, False)}
        ordered, span = mean_curve(per_seed[True]), mean_curve(per_seed[False])
        kernels[kernel] = dict(stop_gradient=ordered, no_stop_gradient=span, **verdict(ordered, span))
        if args.seeds > 1:
            kernels[kernel].update(stop_gradient_per_seed=per_seed[True], no_stop_gradient_per_seed=per_seed[False])
        print(json.dumps(dict(layout=layout, graph=name, kernel=kernel) | verdict(ordered, span)), flush=True)
    return dict(kernels=kernels)


def main() -> None:
    parser = case_arguments(__doc__.splitlines()[0])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    parser.add_argument("--seeds", type=int, default=1, help="fits per curve (seeds 0..N-1), averaged")
    parser.add_argument("--width", type=int, default=None, help="MLP width instead of the default (a lead, not the defaults)")
    args = parser.parse_args()
    write_report(args.out, "truncation", run_cases(run_case, args) | dict(seeds=args.seeds, width=args.width), to_markdown)


def to_markdown(report: dict) -> str:
    lines = ["# Truncation curves at the library's defaults: stop-gradient prefixes against the span's", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "Test accuracy (%) of the probe on the first m outputs (100 % labels), stop-gradient / no stop-gradient"
             + (f", mean over {report['seeds']} fits (seeds 0..{report['seeds'] - 1}). " if report.get("seeds", 1) > 1 else ". ") +
             f"Monotone: the stop-gradient curve never falls as m grows. Beats: it is above the no-stop-gradient "
             f"prefix at every m ≤ {SMALL_PREFIX}."
             + (f" MLP width {report['width']} (not the default)." if report.get("width") else ""), ""]
    for kernel in KERNELS:
        cases = [c for c in report["cases"] if kernel in c["kernels"]]
        if not cases:
            continue
        sizes = [row["m"] for row in cases[0]["kernels"][kernel]["stop_gradient"]]
        verdicts = [c["kernels"][kernel] for c in cases]
        lines += [f"## {kernel} kernel", "",
                  f"Monotone on {sum(v['monotone'] for v in verdicts)} of {len(cases)} cases; beats the span's prefix "
                  f"at every m ≤ {SMALL_PREFIX} on {sum(v['beats_span_small'] for v in verdicts)} of {len(cases)}.", "",
                  "| layout | graph | " + " | ".join(f"m = {m}" for m in sizes) + " | monotone | beats at m ≤ 16 |",
                  "|---|---|" + "---|" * len(sizes) + "---|---|"]
        for case, v in zip(cases, verdicts):
            cells = [f"{100 * a['test']:.1f} / {100 * b['test']:.1f}" for a, b in zip(v["stop_gradient"], v["no_stop_gradient"])]
            lines.append(f"| {case['layout']} | {case['graph']} | " + " | ".join(cells) +
                         f" | {'yes' if v['monotone'] else 'no (' + str(round(100 * v['largest_drop'], 1)) + ')'} | "
                         f"{'yes' if v['beats_span_small'] else 'no (' + str(round(100 * v['smallest_margin'], 1)) + ')'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
