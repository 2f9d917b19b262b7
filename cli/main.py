"""``graph-eigenmap``: learn spectral node embeddings of large graphs as neural eigenfunctions.

Each command parses its options and calls one library function.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from graph_eigenmap_cli.common import (
    CacheOpt, DatasetArg, DeviceOpt, RootOpt, SplitSeedOpt, friendly_errors, resolve_device,
)

app = typer.Typer(
    name="graph-eigenmap",
    help="Spectral node embeddings of large graphs, learned as neural eigenfunctions (NeuralEF).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Learn spectral node embeddings of large graphs as neural eigenfunctions (NeuralEF)."""


@app.command()
@friendly_errors
def info(
    dataset: DatasetArg = "csbm",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
    self_loops: Annotated[bool, typer.Option(help="Report the GCN-normalized kernel (A + I).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    device: DeviceOpt = "cpu",
) -> None:
    """Load a graph and report what it holds and what building the kernel found.

    Examples:
        graph-eigenmap info                                   # built-in synthetic CSBM
        graph-eigenmap info ../shared/data/ogb/ogbn_cora --json
        graph-eigenmap info ogbn-arxiv --root ~/ogb
    """
    from graph_eigenmap import graph_report, load_graph

    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed, device=resolve_device(device))
    report = graph_report(graph, self_loops=self_loops)
    typer.echo(json.dumps(report.to_dict()) if as_json else report.to_text())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
