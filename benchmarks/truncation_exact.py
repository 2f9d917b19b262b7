"""Is the truncation target reachable at all? Truncation curves of the exact eigenvectors Neural Eigenmap learns.

    PYTHONPATH=. python benchmarks/truncation_exact.py --data ../shared/data --out DIR [--against benchmarks/results/truncation_seeds.json]

For each shared graph and each kernel (adjacency: the top-64 eigenvectors of Ā; nontrivial: the top 64
after each component's trivial eigenvector is removed, :func:`~graph_eigenmap.baselines.laplacian_eigenmap`),
the exact eigenvectors' first m columns, m = 1, 2, 4, ..., 64, are probed as the stop-gradient outputs are
in ``truncation_at_defaults.py`` (OGB protocol, 100 % labels). The eigenvectors depend on the graph only,
so ``--layouts ogb`` is enough for them (the layouts share graph, labels and split); both layouts set
each layout's learned curves beside. A fit that learned these
eigenfunctions exactly would draw this curve: where it falls, no training of the ordered outputs can make
the target "rises monotonically" hold with this kernel and this probe. With ``--against`` the report sets the
committed stop-gradient curves (mean over fits, same layout) beside the exact ones.

``--regularized 0.25 1`` adds, as a lead (the library has no such kernel), the nontrivial top 64 of the
regularized kernel of spectral clustering (Amini et al. 2013; Qin and Rohe 2013): A + (τ / n) 11ᵀ normalized by
its degrees d + τ, τ a multiple of the mean degree, its trivial eigenvector √(d + τ) removed: weak edges that
join the components, the usual remedy for eigenvectors localized on small or loosely attached parts of a sparse graph.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared_cases import case_arguments, run_cases, write_report
from truncation_at_defaults import KERNELS

LE_VARIANT = {"adjacency": "top", "nontrivial": "nontrivial"}
"""The Laplacian Eigenmap variant whose eigenvectors each kernel's stop-gradient outputs approximate."""


def exact_curve(graph, kernel: str, device) -> list[dict]:
    """``[{m, valid, test}]``: the probe on the first m exact eigenvectors of ``kernel``, m = 1, 2, 4, ..., 64."""
    from graph_eigenmap.baselines import laplacian_eigenmap

    _, vectors = laplacian_eigenmap(graph, 64, variant=LE_VARIANT[kernel], device=device)
    return probed(vectors, graph, device)


def regularized_vectors(graph, multiple: float, k: int = 64):
    """``[n, k]`` top nontrivial eigenvectors of the regularized kernel with τ = ``multiple`` × mean degree (float64)."""
    import numpy as np
    import scipy.sparse.linalg as sla

    from graph_eigenmap.kernel import row_sums

    adjacency = graph.adjacency.astype(np.float64)
    n, degrees = adjacency.shape[0], row_sums(adjacency)
    tau = multiple * degrees.mean()
    scale = 1 / np.sqrt(degrees + tau)                    # [n] (d + τ)^-1/2
    trivial = np.sqrt((degrees + tau) / (degrees + tau).sum())  # [n] its eigenvalue-1 eigenvector

    def product(x):
        x = x.reshape(n, -1)
        y = scale[:, None] * (adjacency @ (scale[:, None] * x)) + (tau / n) * np.outer(scale, scale @ x)
        return y - np.outer(trivial, trivial @ x)

    operator = sla.LinearOperator((n, n), matvec=product, matmat=product, dtype=np.float64)
    values, vectors = sla.eigsh(operator, k=k, which="LA", tol=1e-8)
    return vectors[:, np.argsort(-values)]


def probed(vectors, graph, device) -> list[dict]:
    from graph_eigenmap.evaluation.truncation import truncation_curve

    return [dict(m=row["m"], valid=round(row["valid_acc_mean"], 4), test=round(row["test_acc_mean"], 4))
            for row in truncation_curve(vectors.astype("float32"), graph, runs=1, device=device)]


def falls(curve: list[dict]) -> float:
    """The largest fall of test accuracy from one prefix to the next (0 for a curve that never falls)."""
    return round(max(0.0, *(a["test"] - b["test"] for a, b in zip(curve, curve[1:]))), 4)


def run_case(args, layout: str, name: str, graph, device) -> dict:
    kernels = {}
    for kernel in args.kernels:
        exact = exact_curve(graph, kernel, device)
        kernels[kernel] = dict(exact=exact, largest_fall=falls(exact))
        print(json.dumps(dict(layout=layout, graph=name, kernel=kernel, largest_fall=falls(exact))), flush=True)
    for multiple in args.regularized:
        exact = probed(regularized_vectors(graph, multiple), graph, device)
        kernels[regularized_name(multiple)] = dict(exact=exact, largest_fall=falls(exact))
    return dict(kernels=kernels)


def regularized_name(multiple: float) -> str:
    return f"regularized (τ = {multiple:g} × mean degree)"


def main() -> None:
    parser = case_arguments(__doc__.splitlines()[0])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    parser.add_argument("--regularized", nargs="*", type=float, default=[],
                        help="also the regularized kernel with these multiples of the mean degree as τ (a lead)")
    parser.add_argument("--against", default=None, help="a truncation_at_defaults.py report: its stop-gradient curves beside")
    args = parser.parse_args()
    report = run_cases(run_case, args) | dict(regularized=args.regularized)
    if args.against:
        against = json.loads(Path(args.against).read_text())
        learned = {(c["layout"], c["graph"]): c["kernels"] for c in against["cases"]}
        for case in report["cases"]:
            for kernel, result in case["kernels"].items():
                fitted = learned.get((case["layout"], case["graph"]), {}).get(kernel)
                if fitted:
                    result.update(stop_gradient=fitted["stop_gradient"], stop_gradient_fall=falls(fitted["stop_gradient"]))
        report.update(against=args.against, against_command=against["command"], against_seeds=against.get("seeds", 1))
    write_report(args.out, "truncation_exact", report, to_markdown)


def to_markdown(report: dict) -> str:
    beside = "against" in report  # the learned curves beside the exact ones, where the report has them
    lines = ["# Truncation curves of the exact eigenvectors" + (" beside the learned stop-gradient outputs" if beside else ""), "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "Test accuracy (%) of the probe on the first m exact eigenvectors (100 % labels)"
             + (f" / on the first m stop-gradient outputs, mean of {report['against_seeds']} fits at the defaults "
                f"(`{report['against']}`, made by `{report['against_command']}`)" if beside else "")
             + ". Falls: the largest drop of the curve from one m to the next (0: monotone).", ""]
    for kernel in list(KERNELS) + [regularized_name(multiple) for multiple in report.get("regularized", [])]:
        cases = [c for c in report["cases"] if kernel in c["kernels"]]
        if not cases:
            continue
        sizes = [row["m"] for row in cases[0]["kernels"][kernel]["exact"]]
        results = [c["kernels"][kernel] for c in cases]
        has_learned = any("stop_gradient" in result for result in results)
        lines += [f"## {kernel} kernel", "",
                  f"The exact curve is monotone on {sum(r['largest_fall'] == 0 for r in results)} of {len(cases)} cases.", "",
                  "| layout | graph | " + " | ".join(f"m = {m}" for m in sizes) + " | falls (exact" + (" / learned" if has_learned else "") + ") |",
                  "|---|---|" + "---|" * len(sizes) + "---|"]
        for case, result in zip(cases, results):
            learned = result.get("stop_gradient")
            cells = [f"{100 * a['test']:.1f}" + (f" / {100 * b['test']:.1f}" if learned else "")
                     for a, b in zip(result["exact"], learned or result["exact"])]
            fall = f"{100 * result['largest_fall']:.1f}" + (f" / {100 * result['stop_gradient_fall']:.1f}" if learned else "")
            lines.append(f"| {case['layout']} | {case['graph']} | " + " | ".join(cells) + f" | {fall} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
