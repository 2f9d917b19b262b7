"""Why are the stop-gradient outputs out of order at the end of training, and what puts them in order?

    PYTHONPATH=. python benchmarks/reorder_effect.py --data ../shared/data --out DIR [--device cuda --parallel 10]

For each of the five shared graphs in both layouts, fits at the library's defaults that differ in one
setting each (same seed): reordering off, reordering during the first 80 % of training (the default
before 2026-12-01), during the first 95 % (the default since), and with reordering during the first
80 % one candidate cause changed at a time: three times the steps, the two-sided gradient, α = 2. For
each fit: the neighbouring pairs of outputs whose exact Rayleigh quotient rises by more than 0.01 when
training ends (before the recorded last sort), the largest rise, how many times the outputs were
permuted, the rising pairs after the recorded last sort, the largest gap between an eigenvalue estimate
and its quotient, the sum of the quotients (what the objective maximizes), and the linear probe (OGB
protocol, 100 % labels, one run) on the first 16 outputs and on all 64, valid and test.
Writes DIR/<layout>_<graph>.json per case as it finishes, then DIR/reorder_effect.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from shared_cases import case_arguments, run_cases, write_report

SETTINGS = {
    "off": dict(reorder=False),
    "first 80 %": dict(reorder_until=0.8),
    "first 95 % (default)": dict(reorder_until=0.95),
    "first 80 %, 3x steps": dict(reorder_until=0.8, steps=1500),
    "first 80 %, two-sided gradient": dict(reorder_until=0.8, one_sided_gradient=False),
    "first 80 %, alpha 2": dict(reorder_until=0.8, alpha=2.0),
}
"""Each setting's overrides of the library's defaults; ``reorder_until`` sets the fraction of training with reordering."""


def measure(graph, setting: str, device, steps: int | None) -> dict:
    import numpy as np

    import graph_eigenmap.train
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.evaluation import evaluate_embeddings
    from graph_eigenmap.fit_outputs import order_violations
    from graph_eigenmap.reorder import REORDER_UNTIL

    options = dict(SETTINGS[setting])
    graph_eigenmap.train.REORDER_UNTIL = options.pop("reorder_until", REORDER_UNTIL)
    if steps is not None:  # a quick check of the script; the committed results use the defaults
        options["steps"] = max(steps, options.get("steps", 0) * steps // 500)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = neural_eigenmap(graph, device=device, progress=False, **options)
    finally:
        graph_eigenmap.train.REORDER_UNTIL = REORDER_UNTIL
    fit_s = time.perf_counter() - started
    violations = fitted.metadata["order_violations_in_training"]  # when training ended, before the last sort
    order = fitted.metadata["final_sort"]
    probes = {m: evaluate_embeddings(fitted.embedding[:, :m], graph, runs=1, device=device) for m in (16, 64)}
    return dict(setting=setting, inputs=fitted.config.inputs, steps=fitted.config.steps, fit_s=round(fit_s, 1),
                rising_pairs=len(violations), largest_rise=round(max([v["rise"] for v in violations], default=0.0), 4),
                reorders=fitted.metadata["reorders"], sorted_last=order is not None,
                rising_pairs_final=len(order_violations(fitted.rayleigh_quotients)),
                estimate_gap=round(float(np.abs(fitted.eigenvalues - fitted.rayleigh_quotients).max()), 4),
                quotient_sum=round(float(np.sum(fitted.rayleigh_quotients)), 3),
                **{f"first_{m}_{part}": round(getattr(result, f"{part}_acc_mean"), 4)
                   for m, result in probes.items() for part in ("valid", "test")})


def run_case(args: argparse.Namespace, layout: str, name: str, graph, device) -> dict:
    """Every setting on one graph in one layout."""
    rows = []
    for setting in args.settings:
        rows.append(measure(graph, setting, device, args.steps))
        print(json.dumps(dict(layout=layout, graph=name) | rows[-1]), flush=True)
    return dict(rows=rows)


def main() -> None:
    parser = case_arguments(__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    report = run_cases(run_case, args)
    report["rows"] = [dict(layout=case["layout"], graph=case["graph"]) | row
                      for case in report.pop("cases") for row in case["rows"]]
    write_report(args.out, "reorder_effect", report, to_markdown)


def to_markdown(report: dict) -> str:
    lines = ["# Order of the stop-gradient outputs at the library's defaults, and what changes it", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "Rising pairs: neighbouring outputs whose exact Rayleigh quotient rises by more than 0.01 when "
             "training ends (before the recorded last sort).", "",
             "| setting | rising pairs, total (10 cases) | cases with none | largest rise | mean quotient sum | "
             "mean probe, first 16: valid (%) | mean probe, all 64: valid (%) | mean fit (s) |",
             "|---|---|---|---|---|---|---|---|"]
    settings = list(dict.fromkeys(r["setting"] for r in report["rows"]))
    for setting in settings:
        rows = [r for r in report["rows"] if r["setting"] == setting]
        mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
        lines.append(f"| {setting} | {sum(r['rising_pairs'] for r in rows)} | "
                     f"{sum(r['rising_pairs'] == 0 for r in rows)} of {len(rows)} | "
                     f"{max(r['largest_rise'] for r in rows)} | {mean('quotient_sum'):.2f} | "
                     f"{100 * mean('first_16_valid'):.1f} | {100 * mean('first_64_valid'):.1f} | {mean('fit_s'):.1f} |")
    lines += ["", "Per case:", "",
              "| layout | graph | setting | inputs | steps | rising pairs | largest rise | permutations | "
              "sorted as the last step | rising pairs after it | max abs(estimate − quotient) | quotient sum | "
              "probe, first 16: valid / test (%) | probe, all 64: valid / test (%) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['layout']} | {r['graph']} | {r['setting']} | {r['inputs']} | {r['steps']} | "
                     f"{r['rising_pairs']} | {r['largest_rise']} | {r['reorders']} | {'yes' if r['sorted_last'] else 'no'} | "
                     f"{r['rising_pairs_final']} | {r['estimate_gap']} | {r['quotient_sum']} | "
                     f"{100 * r['first_16_valid']:.1f} / {100 * r['first_16_test']:.1f} | "
                     f"{100 * r['first_64_valid']:.1f} / {100 * r['first_64_test']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
