"""``graph-eigenmap``: learn spectral node embeddings of large graphs as neural eigenfunctions.

Each command parses its options and calls one library function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    CacheOpt, DatasetArg, DatasetOpt, DeviceOpt, RootOpt, SplitSeedOpt, friendly_errors, load_npy,
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
    from graph_eigenmap.api import resolve_device

    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed, device=resolve_device(device))
    report = graph_report(graph, self_loops=self_loops)
    typer.echo(json.dumps(report.to_dict()) if as_json else report.to_text())


@app.command()
@friendly_errors
def fit(
    out: Annotated[Path, typer.Option(help="Output folder: embeddings.npy, backbone.npy, metadata.json, model.pt, checkpoints.")],
    dataset: DatasetOpt = "csbm",
    k: Annotated[int, typer.Option(help="Number of eigenfunctions.")] = 64,
    features: Annotated[str, typer.Option(help="auto (node features if any), input, or identity (a free vector per node).")] = "auto",
    estimator: Annotated[str, typer.Option(
        help="auto (rows or full when the graph fits, else sampled), full, rows (exact ĀΨ, gradient through "
             "--batch-size rows), sampled, or block.")] = "auto",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Rows with gradient (rows) or seed nodes (sampled, block) per step.")] = 4096,
    fanout: Annotated[int, typer.Option(help="Neighbours drawn per seed (sampled).")] = 8,
    width: Annotated[int, typer.Option(help="MLP width.")] = 256,
    depth: Annotated[int, typer.Option(help="MLP linear layers before the k outputs.")] = 2,
    residual: Annotated[bool, typer.Option(help="Residual MLP.")] = False,
    norm: Annotated[str, typer.Option(help="layer, batch or none.")] = "layer",
    dropout: Annotated[float, typer.Option(help="Dropout probability.")] = 0.0,
    activation: Annotated[str, typer.Option(help="gelu or relu.")] = "gelu",
    kernel: Annotated[str, typer.Option(help="adjacency (D^-1/2 A D^-1/2), gcn (with self-loops), shifted ((I+Ā)/2) or nontrivial (each component's trivial eigenvector removed).")] = "adjacency",
    inputs: Annotated[str, typer.Option(help="What the MLP reads: auto (propagated:3 for an MLP on features), features (a new node needs nothing else), or propagated:K ([X, ÂX, ..., Â^K X]; new nodes then need their edges).")] = "auto",
    optimizer: Annotated[str, typer.Option(help="auto (AdamW for MLPs, SGD for identity), adamw, lars or sgd.")] = "auto",
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default depends on the optimizer).")] = None,
    weight_decay: Annotated[float, typer.Option(help="Decoupled weight decay.")] = 0.0,
    alpha: Annotated[float, typer.Option(help="Weight of the orthogonality penalty.")] = 1.0,
    stop_gradient: Annotated[bool, typer.Option(help="Ordered eigenfunctions (on) or only their span (off).")] = True,
    reorder: Annotated[bool, typer.Option(
        help="With stop-gradient, permute the outputs into eigenvalue order during the first 80% of training "
             "whenever they are not (outputs in the wrong order sit at a saddle).")] = True,
    rayleigh_ritz: Annotated[bool, typer.Option(
        help="After training, solve the output layer by Rayleigh-Ritz on the backbone's span: outputs exactly ordered.")] = False,
    one_sided_gradient: Annotated[Optional[bool], typer.Option(
        "--one-sided-gradient/--two-sided-gradient",
        help="Estimate ĀΨ without autograd and double the gradient through the drawn nodes (same gradient, "
             "less work). Default: one-sided, except for identity features with a sampling estimator.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast on a GPU.")] = True,
    compile: Annotated[bool, typer.Option(help="torch.compile the network (fused layers; compiling first takes up to a minute).")] = False,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints (0: none).")] = 200,
    resume: Annotated[bool, typer.Option(help="Continue the checkpoint in --out.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary.")] = False,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Learn the top-k eigenfunctions of D^-1/2 A D^-1/2 with NeuralEF and write them to --out.

    Examples:
        graph-eigenmap fit --out runs/csbm                       # built-in synthetic graph
        graph-eigenmap fit -d ../shared/data/ogb/ogbn_coauthor_cs --features identity --k 16 --out runs/cs
        graph-eigenmap fit -d ogbn-products --root ~/ogb --estimator sampled --out runs/products
    """
    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.api import resolve_device

    device = resolve_device(device)
    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed, device="cpu")
    result = neural_eigenmap(
        graph, k=k, device=device, out_dir=out, resume=resume, progress=False if quiet else None,
        features=features, estimator=estimator, steps=steps, batch_size=batch_size, fanout=fanout, width=width,
        depth=depth, residual=residual, norm=norm, dropout=dropout, activation=activation, kernel=kernel, inputs=inputs, optimizer=optimizer, lr=lr,
        weight_decay=weight_decay, alpha=alpha, stop_gradient=stop_gradient, reorder=reorder, rayleigh_ritz=rayleigh_ritz, one_sided_gradient=one_sided_gradient,
        seed=seed, bf16=bf16, compile=compile, checkpoint_every=checkpoint_every,
    )
    if not quiet:
        meta = result.metadata
        tag = " (synthetic)" if graph.synthetic else ""
        leading = ", ".join(f"{v:.4f}" for v in meta["eigenvalues"][:5])
        typer.echo(f"{graph.name}{tag}: {meta['num_nodes']:,} nodes, k={meta['k']}, {meta['estimator']} estimator, "
                   f"{meta['steps']} steps in {meta['wall_time_s']:.1f} s on {meta['device']}")
        typer.echo(f"leading eigenvalue estimates: {leading}")
        typer.echo(f"wrote {out}/embeddings.npy [{meta['num_nodes']}, {meta['k']}], backbone.npy, metadata.json, model.pt")


@app.command()
@friendly_errors
def embed(
    model: Annotated[Path, typer.Option(help="Folder written by `graph-eigenmap fit`.")],
    features: Annotated[Path, typer.Option(help="Node features, a float .npy file [m, d].")],
    out: Annotated[Path, typer.Option(help="Where to write the float32 [m, k] embeddings (.npy).")],
    edges: Annotated[Optional[Path], typer.Option(
        help="For a model fitted with --inputs propagated:K: the new nodes' edges to training-graph nodes, an "
             "integer .npy [2, E] (row 0: new node 0..m-1, row 1: known node id).")] = None,
    backbone: Annotated[Optional[Path], typer.Option(help="Also write the [m, h] backbone features here.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Embed new nodes: from their features alone, or with their edges to known nodes (propagated inputs).

    Examples:
        graph-eigenmap embed --model runs/cs --features new_nodes.npy --out new_embeddings.npy
        graph-eigenmap embed --model runs/cs_prop --features new_nodes.npy --edges new_edges.npy --out new.npy
    """
    from graph_eigenmap.api import embed_features, resolve_device
    from graph_eigenmap.artifacts import load_known_inputs, load_model, save_array
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.inputs import parse_inputs

    network, config = load_model(model, device=resolve_device(device))
    x = load_npy(features, "node features [m, d]")
    hops = parse_inputs(config.get("inputs", "features")).hops
    if hops and edges is None:
        raise GraphEigenmapError(f"{model} was fitted with --inputs {config['inputs']}: pass the new nodes' edges "
                                 "to known nodes with --edges FILE.npy ([2, E] integers).")
    if hops:
        x = load_known_inputs(model, hops).new_node_inputs(x, load_npy(edges, "edges [2, E]"))
    embedding, backbone_features = embed_features(network, x, config["features"], with_backbone=backbone is not None)
    save_array(out, embedding)
    if backbone is not None:
        save_array(backbone, backbone_features)
    typer.echo(f"wrote {out} {list(embedding.shape)}")


@app.command()
@friendly_errors
def evaluate(
    embeddings: Annotated[Path, typer.Option(help="Node representations, a .npy array [n, d] (row i = node i).")],
    dataset: DatasetOpt = "csbm",
    label_ratio: Annotated[float, typer.Option(help="Fraction of the train split used (1, 0.1, 0.01, ...).")] = 1.0,
    runs: Annotated[int, typer.Option(help="Seeds 0..runs-1.")] = 10,
    correct_and_smooth: Annotated[bool, typer.Option(
        "--correct-and-smooth", help="Also post-process the probe with Correct & Smooth (PyG; needs the graph).")] = False,
    output: Annotated[Optional[Path], typer.Option(help="Write the result JSON here.")] = None,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Linear-probe accuracy of node representations on the OGB protocol (ogb Evaluator, mean ± std over seeds).

    The probe is scikit-learn's multinomial logistic regression (L-BFGS until converged), C chosen
    on valid per run; the JSON records each run's C, iterations and final gradient norm.

    Example:
        graph-eigenmap evaluate --embeddings runs/cs/backbone.npy -d ../shared/data/ogb/ogbn_coauthor_cs --label-ratio 0.1
    """
    from graph_eigenmap import load_graph
    from graph_eigenmap.api import resolve_device
    from graph_eigenmap.artifacts import save_json
    from graph_eigenmap.evaluation import probe_runs
    from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
    from graph_eigenmap.protocol import score_runs

    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed)
    x = load_npy(embeddings, "node representations [n, d]")
    device = resolve_device(device)
    predictions = probe_runs(x, graph, label_ratio=label_ratio, runs=runs, device=device)
    smoother = CorrectAndSmooth(graph, device) if correct_and_smooth else None
    result, smoothed = score_runs(predictions, graph, method=str(embeddings), label_ratio=label_ratio, runs=runs,
                                  postprocess=smoother, postprocessed_method=f"{embeddings} + C&S")
    payload = dict(result.to_dict(), dataset=graph.name, synthetic=graph.synthetic)
    if smoothed is not None:
        payload["correct_and_smooth"] = dict(smoothed.to_dict(), settings=smoother.settings.to_dict())
    if output is not None:
        save_json(output, payload)
    tag = " (synthetic)" if graph.synthetic else ""
    labels = f"{100 * label_ratio:g}% of the train labels"
    for name, row in (("probe", result), ("probe + C&S", smoothed)):
        if row is not None:
            typer.echo(f"{graph.name}{tag}, {labels}, {runs} runs, {name}: test accuracy "
                       f"{100 * row.test_acc_mean:.2f} ± {100 * row.test_acc_std:.2f} %, valid {100 * row.valid_acc_mean:.2f} %")


bench = typer.Typer(help="Benchmarks: compare methods on a graph.", no_args_is_help=True)
app.add_typer(bench, name="bench")


@bench.command("compare")
@friendly_errors
def bench_compare(
    out: Annotated[Path, typer.Option(help="Output folder: compare.md, compare.json, truncation.png.")],
    dataset: DatasetOpt = "csbm",
    label_ratios: Annotated[str, typer.Option(help="Comma-separated fractions of the train labels.")] = "1,0.1,0.01",
    runs: Annotated[int, typer.Option(help="Seeds per method and label ratio.")] = 10,
    k: Annotated[int, typer.Option(help="Eigenfunctions (and exact eigenvectors).")] = 64,
    steps: Annotated[int, typer.Option(help="Neural Eigenmap optimizer steps.")] = 500,
    width: Annotated[int, typer.Option(help="Neural Eigenmap MLP width.")] = 256,
    depth: Annotated[int, typer.Option(help="Neural Eigenmap MLP depth.")] = 2,
    estimator: Annotated[str, typer.Option(help="Neural Eigenmap estimator: auto, full, rows, sampled, block.")] = "auto",
    kernel: Annotated[str, typer.Option(help="Neural Eigenmap kernel: adjacency, gcn, shifted or nontrivial.")] = "adjacency",
    methods: Annotated[str, typer.Option(
        help="Comma-separated method groups to run: features, le, le-nontrivial, ne, ne-nontrivial, ne-propagated, "
             "ne-inductive, gcn, mlp, truncation, cost (default: all).")] = "all",
    propagation_hops: Annotated[int, typer.Option(help="K of the ne-propagated group's inputs [X, ÂX, ..., Â^K X].")] = 3,
    truncation_runs: Annotated[int, typer.Option(help="Seeds per point of the truncation curves.")] = 3,
    max_epochs: Annotated[int, typer.Option(help="Most epochs of the supervised GCN and MLP (they stop early on valid).")] = 500,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Neural Eigenmap against Laplacian Eigenmap, GCN, MLP and C&S on the OGB protocol; writes a Markdown table.

    Each row says what a test node needs: features only, the graph at test time, or to be in the
    graph used (transductive). Progress, with the time of each step, goes to stderr.

    Examples:
        graph-eigenmap bench compare -d ../shared/data/ogb/ogbn_cora --out results/cora
        graph-eigenmap bench compare -d ../shared/data/npz/cora.npz --methods ne,le-nontrivial,gcn --out results/cora_npz
        graph-eigenmap bench compare -d ogbn-products --root ~/ogb --out results/products --estimator sampled --steps 20000
    """
    import shlex
    import sys

    from graph_eigenmap import load_graph
    from graph_eigenmap.api import resolve_device
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.evaluation.compare import compare, parse_methods

    chosen = parse_methods(methods)
    try:
        ratios = tuple(float(r) for r in label_ratios.split(","))
    except ValueError:
        raise GraphEigenmapError(f"--label-ratios must be comma-separated numbers such as 1,0.1,0.01; got {label_ratios!r}.") from None
    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed)
    command = "graph-eigenmap " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    compare(graph, out_dir=out, methods=chosen, label_ratios=ratios, runs=runs, k=k, device=resolve_device(device),
            fit_options=dict(steps=steps, width=width, depth=depth, estimator=estimator, kernel=kernel),
            truncation_runs=truncation_runs, max_epochs=max_epochs, propagation_hops=propagation_hops, command=command,
            log=lambda message: typer.echo(message, err=True))
    typer.echo((out / "compare.md").read_text())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
