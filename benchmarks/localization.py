"""How spread out are the stop-gradient eigenfunctions? Participation ratio and largest-component share of one fit.

    PYTHONPATH=. python benchmarks/localization.py --data ../shared/data --out DIR [--datasets cora citeseer --layouts ogb]

For each graph: one fit at the library's defaults with the nontrivial kernel (seed 0, on --device), then
for each of its k outputs f_j the participation ratio (Σ f²)² / Σ f⁴ (about n for a vector spread evenly over
n nodes, 1 for one node) and the share of Σ f² on the graph's largest connected component. A truncation curve
that stops rising (cora, citeseer: ``truncation_seeds.md``) can mean late outputs that live on few nodes: they
tell the probe about those nodes only. Writes DIR/localization.{json,md}.
"""

from __future__ import annotations

import warnings

import numpy as np
from shared_cases import case_arguments, run_cases, write_report  # one process per graph × layout, the report

BLOCKS = ((0, 8), (8, 16), (16, 32), (32, 64))
"""Output ranges [start, stop) summarized in the table."""


def run_case(args, layout: str, name: str, graph, device) -> dict:
    """Participation ratio and largest-component share of each output of one defaults fit (nontrivial kernel)."""
    from graph_eigenmap import neural_eigenmap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedding = neural_eigenmap(graph, device=device, progress=False, kernel="nontrivial", seed=0).embedding
    squares = embedding.astype(np.float64) ** 2
    participation = squares.sum(0) ** 2 / (squares ** 2).sum(0)
    from graph_eigenmap.data.components import components

    component = components(graph)  # [n] component ids, isolated nodes their own
    sizes = np.bincount(component)
    share = squares[component == sizes.argmax()].sum(0) / squares.sum(0)
    return dict(num_nodes=graph.num_nodes, components=len(sizes), largest_component=int(sizes.max()),
                participation=np.round(participation, 1).tolist(), largest_component_share=np.round(share, 3).tolist())


def to_markdown(report: dict) -> str:
    lines = ["# Where the stop-gradient eigenfunctions live (nontrivial kernel, defaults, one fit)", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "Median participation ratio (effective number of nodes) of the outputs in each range, and the smallest "
             "share of an output's squared mass on the largest connected component.", "",
             "| graph | nodes | components | largest component | " +
             " | ".join(f"outputs {a + 1}-{b}" for a, b in BLOCKS) + " | smallest share on largest component |",
             "|---|---|---|---|" + "---|" * len(BLOCKS) + "---|"]
    for row in report["cases"]:
        p = np.array(row["participation"])
        cells = [f"{np.median(p[a:b]):.0f}" for a, b in BLOCKS]
        lines.append(f"| {row['layout']}/{row['graph']} | {row['num_nodes']} | {row['components']} | "
                     f"{row['largest_component']} | " + " | ".join(cells) + f" | {min(row['largest_component_share']):.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = case_arguments(__doc__.splitlines()[0])
    parser.set_defaults(layouts=["ogb"], datasets=["cora", "citeseer"])
    args = parser.parse_args()
    write_report(args.out, "localization", run_cases(run_case, args), to_markdown)


if __name__ == "__main__":
    main()
