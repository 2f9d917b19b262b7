"""``graph-eigenmap``: learn spectral node embeddings of large graphs as neural eigenfunctions.

Each command parses its options and calls one library function. Nothing heavy is imported before a
command runs (torch takes seconds): ``--help``, ``--version`` and option errors answer at once.
Every command checks its output paths before any work, and a command that fails leaves no output,
temporary file or folder of its own behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    CacheOpt, DatasetArg, DatasetOpt, DeviceOpt, OneLineErrors, RootOpt, SplitSeedOpt, friendly_errors, load_npy,
    load_sparse_npz,
    one_of, show_version,
)

app = typer.Typer(
    name="graph-eigenmap",
    cls=OneLineErrors,
    help="Spectral node embeddings of large graphs, learned as neural eigenfunctions (NeuralEF).",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: keeps [n, k] shapes, and errors are ours (OneLineErrors)
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group(
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
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

    \b
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
    k: Annotated[int, typer.Option(min=1, help="Number of eigenfunctions.")] = 64,
    features: Annotated[str, typer.Option(callback=one_of("auto", "input", "identity"), metavar="auto|input|identity",
        help="auto (node features if any), input, or identity (a free vector per node).")] = "auto",
    estimator: Annotated[str, typer.Option(callback=one_of("auto", "full", "rows", "sampled", "block"), metavar="auto|full|rows|sampled|block",
        help="auto (rows or full when the graph fits, else sampled), full, rows (exact ĀΨ, gradient through "
             "--batch-size rows), sampled, or block.")] = "auto",
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps in all; with --resume, more than the checkpoint's "
                                                   "extends the run.")] = 500,
    batch_size: Annotated[int, typer.Option(min=2, help="Rows with gradient (rows) or seed nodes (sampled, block) per step.")] = 4096,
    fanout: Annotated[int, typer.Option(min=1, help="Neighbours drawn per seed (sampled).")] = 8,
    width: Annotated[int, typer.Option(min=1, help="MLP width.")] = 256,
    depth: Annotated[int, typer.Option(min=1, help="MLP linear layers before the k outputs.")] = 2,
    residual: Annotated[bool, typer.Option(help="Residual MLP.")] = False,
    norm: Annotated[str, typer.Option(callback=one_of("layer", "batch", "none"), metavar="layer|batch|none", help="layer, batch or none.")] = "layer",
    dropout: Annotated[float, typer.Option(help="Dropout probability, in [0, 1).")] = 0.0,
    activation: Annotated[str, typer.Option(callback=one_of("gelu", "relu"), metavar="gelu|relu", help="gelu or relu.")] = "gelu",
    kernel: Annotated[str, typer.Option(callback=one_of("adjacency", "gcn", "shifted", "nontrivial"), metavar="adjacency|gcn|shifted|nontrivial",
        help="adjacency (D^-1/2 A D^-1/2), gcn (with self-loops), shifted ((I+Ā)/2) or nontrivial (each "
             "component's trivial eigenvector removed).")] = "adjacency",
    inputs: Annotated[str, typer.Option(help="What the MLP reads: auto (propagated:3 for an MLP on features when they fit in a quarter of host memory; svd:100+propagated:3 for 256 feature columns or more), features (a new node needs nothing else), propagated:K ([X, ÂX, ..., Â^K X]; new nodes then need their edges), svd:D or svd:D+propagated:K (the features first reduced to D columns by truncated SVD).")] = "auto",
    optimizer: Annotated[str, typer.Option(callback=one_of("auto", "adamw", "lars", "sgd"), metavar="auto|adamw|lars|sgd",
        help="auto (AdamW for MLPs, SGD for identity), adamw, lars or sgd.")] = "auto",
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default depends on the optimizer).")] = None,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="Decoupled weight decay.")] = 0.0,
    alpha: Annotated[float, typer.Option(min=0.0, help="Weight of the orthogonality penalty.")] = 1.0,
    stop_gradient: Annotated[bool, typer.Option(help="Ordered eigenfunctions (on) or only their span (off).")] = True,
    reorder: Annotated[bool, typer.Option(
        help="With stop-gradient, permute the outputs into eigenvalue order during the first 95% of training "
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
    checkpoint_every: Annotated[int, typer.Option(min=0, help="Steps between checkpoints (0: none).")] = 200,
    feature_storage: Annotated[str, typer.Option(
        callback=one_of("auto", "float32", "bfloat16", "float16", "host"), metavar="auto|float32|bfloat16|float16|host",
        help="Where the MLP's inputs live while training: on the device (float32, or bfloat16/float16 in half the "
             "bytes) or in host memory (rows copied each step; sampled and block estimators). auto: float32 when "
             "they fit in a quarter of the device's free memory, else bfloat16 when that fits in half, else host.")] = "auto",
    backbone: Annotated[Optional[bool], typer.Option(
        "--backbone/--no-backbone", help="Write backbone.npy (the [n, width] penultimate features). Default: "
                                         "unless it would exceed 16 GiB.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the checkpoint in --out (a larger --steps extends it).")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary.")] = False,
    nproc: Annotated[int, typer.Option(
        min=1, help="Train on this many processes of this host that make each step together (data-parallel, "
                    "torch.distributed: one per GPU with NCCL, gloo on CPUs); each draws --batch-size seeds. "
                    "torchrun launches are detected by themselves.")] = 1,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Learn the top-k eigenfunctions of D^-1/2 A D^-1/2 with NeuralEF and write them to --out.

    The progress bar (on stderr) appears when the run is expected to take more than a few seconds.

    \b
    Examples:
        graph-eigenmap fit --out runs/csbm                       # built-in synthetic graph
        graph-eigenmap fit -d ../shared/data/ogb/ogbn_coauthor_cs --features identity --k 16 --out runs/cs
        graph-eigenmap fit -d ogbn-products --root ~/ogb --estimator sampled --out runs/products
        graph-eigenmap fit --out runs/csbm --resume --steps 1000  # extend a finished run
        graph-eigenmap fit --out runs/csbm2 --nproc 2 --device cpu --estimator sampled
    """
    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.api import resolve_device
    from graph_eigenmap.artifacts import check_output_folder, removed_on_failure
    from graph_eigenmap.data import generation_device
    from graph_eigenmap.checkpoint import CHECKPOINT_NAME, checkpoint_step
    from graph_eigenmap.errors import GraphEigenmapError, TrainingDivergedError
    from graph_eigenmap.host_memory import keep_freed_host_memory

    check_output_folder(out, "--out")
    checkpoint = out / CHECKPOINT_NAME
    had_checkpoint = checkpoint.exists()
    if had_checkpoint and not resume:
        raise GraphEigenmapError(f"{checkpoint} exists from an earlier run; pass --resume to continue it (a larger "
                                 "--steps extends it), or choose another --out.")
    start = checkpoint_step(checkpoint) if had_checkpoint else 0
    if start > steps:
        raise GraphEigenmapError(f"{checkpoint} has already taken {start} steps; give --steps {start} or more to resume "
                                 "it (more extends the run), or choose another --out.")
    device = resolve_device(device)
    if nproc > 1 and device.type == "cuda" and nproc > torch_cuda_count():
        raise GraphEigenmapError(f"--nproc {nproc} needs {nproc} GPUs (one per process); torch sees "
                                 f"{torch_cuda_count()}. Give --nproc {torch_cuda_count()} or --device cpu.")
    options = dict(
        k=k, device=device, out_dir=out, resume=resume, progress=False if quiet else None, save_backbone=backbone,
        features=features, estimator=estimator, steps=steps, batch_size=batch_size, fanout=fanout,
        width=width, depth=depth, residual=residual, norm=norm, dropout=dropout, activation=activation,
        kernel=kernel, inputs=inputs, optimizer=optimizer, lr=lr, weight_decay=weight_decay, alpha=alpha,
        stop_gradient=stop_gradient, reorder=reorder, rayleigh_ritz=rayleigh_ritz,
        one_sided_gradient=one_sided_gradient, seed=seed, bf16=bf16, compile=compile,
        checkpoint_every=checkpoint_every, feature_storage=feature_storage,
    )
    load_options = dict(root=root, cache_dir=cache_dir, split_seed=split_seed,
                        device=generation_device(dataset, device) if nproc == 1 else "cpu")
    try:
        with removed_on_failure(out, keep_on_interrupt=(CHECKPOINT_NAME,)):
            if device.type == "cpu":
                keep_freed_host_memory()  # no page faults on every step's activations (graph_eigenmap.host_memory)
            if nproc > 1:
                from graph_eigenmap.api import neural_eigenmap_on_processes

                neural_eigenmap_on_processes(nproc, dataset, load_options=load_options, **options)
                result = _read_fit(out)
            else:
                graph = load_graph(dataset, **load_options)
                result = neural_eigenmap(graph, **options)
                if result is None:  # a rank other than 0 under torchrun: rank 0 reports
                    return
    except TrainingDivergedError as err:
        raise GraphEigenmapError(_diverged_message(err, out, checkpoint if had_checkpoint else None)) from None
    except KeyboardInterrupt:
        if checkpoint.exists():
            print(f"interrupted; {checkpoint} keeps the run: rerun with --resume to continue it.", file=sys.stderr)
            raise typer.Exit(code=130) from None
        raise
    if not quiet:
        meta = result.metadata
        tag = " (synthetic)" if meta["synthetic"] else ""
        name = meta["dataset_name"]
        leading = ", ".join(f"{v:.4f}" for v in meta["eigenvalues"][:5])
        ran = meta["steps"] - start
        steps_text = f"{ran} steps (resumed at step {start}, now {meta['steps']})" if start else f"{ran} steps"
        seconds = meta.get("training_time_s", meta["wall_time_s"])
        processes = f" x {meta['processes']} processes" if meta.get("processes", 1) > 1 else ""
        typer.echo(f"{name}{tag}: {meta['num_nodes']:,} nodes, k={meta['k']}, {meta['estimator']} estimator, "
                   f"{steps_text} in {seconds:.1f} s on {meta['device']}{processes}")
        typer.echo(f"leading eigenvalue estimates: {leading}")
        backbone_file = "backbone.npy, " if meta.get("backbone_saved", True) else ""
        typer.echo(f"wrote {out}/embeddings.npy [{meta['num_nodes']}, {meta['k']}], {backbone_file}metadata.json, model.pt")


def torch_cuda_count() -> int:
    import torch

    return torch.cuda.device_count()


def _read_fit(out: Path):
    """What rank 0 of a data-parallel fit wrote, as much of a FitResult as the summary reads."""
    from types import SimpleNamespace

    return SimpleNamespace(metadata=json.loads((out / "metadata.json").read_text()))


def _diverged_message(err, out: Path, kept_checkpoint: Path | None) -> str:
    """What happened when the loss became NaN, and the command that retries it."""
    lr = f" with --lr {err.lr:g}" if err.lr is not None else ""
    lower = f"--lr {float(f'{err.lr / 3:.2g}'):g}" if err.lr is not None else "a lower --lr"
    what = f"training diverged: the loss became {err.loss} at step {err.step}{lr}"
    if kept_checkpoint is None:
        return f"{what}; nothing was kept in {out}: rerun the same command with a lower learning rate, such as {lower}."
    return (f"{what}; {kept_checkpoint} (kept) resumes into the same divergence and --resume cannot change --lr: "
            f"choose another --out (or delete {kept_checkpoint}) and rerun with a lower learning rate, such as {lower}.")


@app.command()
@friendly_errors
def embed(
    model: Annotated[Path, typer.Option(help="Folder written by `graph-eigenmap fit`.")],
    features: Annotated[Path, typer.Option(help="Node features, a float .npy file [m, d], or a scipy sparse .npz (scipy.sparse.save_npz) for wide sparse features.")],
    out: Annotated[Path, typer.Option(help="Where to write the float32 [m, k] embeddings (.npy).")],
    edges: Annotated[Optional[Path], typer.Option(
        help="For a model fitted with --inputs propagated:K or svd:D+propagated:K: the new nodes' edges to training-graph nodes, an "
             "integer .npy [2, E] (row 0: new node 0..m-1, row 1: known node id).")] = None,
    backbone: Annotated[Optional[Path], typer.Option(help="Also write the [m, h] backbone features here (.npy).")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Embed new nodes: from their features alone, or with their edges to known nodes (propagated inputs).

    \b
    Examples:
        graph-eigenmap embed --model runs/cs --features new_nodes.npy --out new_embeddings.npy
        graph-eigenmap embed --model runs/cs_prop --features new_nodes.npy --edges new_edges.npy --out new.npy
    """
    from graph_eigenmap.api import embed_features, resolve_device
    from graph_eigenmap.artifacts import check_output_file, load_known_inputs, load_model, removed_on_failure, save_array
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.inputs import parse_inputs

    check_output_file(out, "--out", "embeddings.npy")
    if backbone is not None:
        check_output_file(backbone, "--backbone", "backbone.npy")
        if backbone.resolve() == out.resolve():
            raise GraphEigenmapError(f"--backbone and --out are the same file ({out}); give two different paths.")
    network, config = load_model(model, device=resolve_device(device))
    x = load_sparse_npz(features) if features.suffix == ".npz" else load_npy(features, "node features [m, d]")
    spec = parse_inputs(config.get("inputs", "features"))
    if spec.hops and edges is None:
        raise GraphEigenmapError(f"{model} was fitted with --inputs {config['inputs']}: pass the new nodes' edges "
                                 "to known nodes with --edges FILE.npy ([2, E] integers).")
    if spec.name != "features":
        x = load_known_inputs(model, config["inputs"]).new_node_inputs(
            x, load_npy(edges, "edges [2, E]") if spec.hops else None)
    embedding, backbone_features = embed_features(network, x, config["features"], with_backbone=backbone is not None)
    with removed_on_failure(out, *([backbone] if backbone is not None else [])):
        save_array(out, embedding)
        if backbone is not None:
            save_array(backbone, backbone_features)
    typer.echo(f"wrote {out} {list(embedding.shape)}")


@app.command()
@friendly_errors
def evaluate(
    embeddings: Annotated[Path, typer.Option(help="Node representations, a .npy array [n, d] (row i = node i).")],
    dataset: DatasetOpt = "csbm",
    label_ratio: Annotated[float, typer.Option(help="Fraction of the train split used, in (0, 1]: 1, 0.1, 0.01, ...")] = 1.0,
    runs: Annotated[int, typer.Option(min=1, help="Seeds 0..runs-1.")] = 10,
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

    \b
    Example:
        graph-eigenmap evaluate --embeddings runs/cs/backbone.npy -d ../shared/data/ogb/ogbn_coauthor_cs --label-ratio 0.1
    """
    from graph_eigenmap.artifacts import check_output_file, removed_on_failure, save_json
    from graph_eigenmap.errors import GraphEigenmapError

    if not 0 < label_ratio <= 1:
        raise GraphEigenmapError(f"--label-ratio must lie in (0, 1] (the fraction of the train labels; 1 = all); "
                                 f"got {label_ratio:g}.")
    if output is not None:
        check_output_file(output, "--output", "result.json")

    from graph_eigenmap import load_graph
    from graph_eigenmap.api import resolve_device
    from graph_eigenmap.evaluation import probe_runs
    from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
    from graph_eigenmap.protocol import score_runs

    x = load_npy(embeddings, "node representations [n, d]")
    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed)
    device = resolve_device(device)
    predictions = probe_runs(x, graph, label_ratio=label_ratio, runs=runs, device=device)
    smoother = CorrectAndSmooth(graph, device) if correct_and_smooth else None
    result, smoothed = score_runs(predictions, graph, method=str(embeddings), label_ratio=label_ratio, runs=runs,
                                  postprocess=smoother, postprocessed_method=f"{embeddings} + C&S")
    payload = dict(result.to_dict(), dataset=graph.name, synthetic=graph.synthetic)
    if smoothed is not None:
        payload["correct_and_smooth"] = dict(smoothed.to_dict(), settings=smoother.settings.to_dict())
    if output is not None:
        with removed_on_failure(output):
            save_json(output, payload)
    tag = " (synthetic)" if graph.synthetic else ""
    labels = label_ratio_text(label_ratio)
    seeds = "1 run" if runs == 1 else f"{runs} runs"
    for name, row in (("probe", result), ("probe + C&S", smoothed)):
        if row is not None:
            typer.echo(f"{graph.name}{tag}, {labels}, {seeds}, {name}: test accuracy "
                       f"{100 * row.test_acc_mean:.2f} ± {100 * row.test_acc_std:.2f} %, valid {100 * row.valid_acc_mean:.2f} %")


def label_ratio_text(label_ratio: float) -> str:
    """``1`` -> "all train labels", ``0.1`` -> "10% of the train labels"."""
    return "all train labels" if label_ratio == 1 else f"{100 * label_ratio:g}% of the train labels"


bench = typer.Typer(help="Benchmarks: compare methods on a graph.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bench, name="bench")


@bench.command("compare")
@friendly_errors
def bench_compare(
    out: Annotated[Path, typer.Option(help="Output folder: compare.md, compare.json, truncation.png.")],
    dataset: DatasetOpt = "csbm",
    label_ratios: Annotated[str, typer.Option(help="Comma-separated fractions of the train labels.")] = "1,0.1,0.01",
    runs: Annotated[int, typer.Option(min=1, help="Seeds per method and label ratio.")] = 10,
    k: Annotated[int, typer.Option(min=1, help="Eigenfunctions (and exact eigenvectors).")] = 64,
    steps: Annotated[int, typer.Option(min=1, help="Neural Eigenmap optimizer steps.")] = 500,
    width: Annotated[int, typer.Option(min=1, help="Neural Eigenmap MLP width.")] = 256,
    depth: Annotated[int, typer.Option(min=1, help="Neural Eigenmap MLP depth.")] = 2,
    estimator: Annotated[str, typer.Option(callback=one_of("auto", "full", "rows", "sampled", "block"), metavar="auto|full|rows|sampled|block",
        help="Neural Eigenmap estimator: auto, full, rows, sampled, block.")] = "auto",
    kernel: Annotated[str, typer.Option(callback=one_of("adjacency", "gcn", "shifted", "nontrivial"), metavar="adjacency|gcn|shifted|nontrivial",
        help="Neural Eigenmap kernel: adjacency, gcn, shifted or nontrivial.")] = "adjacency",
    methods: Annotated[str, typer.Option(
        help="Comma-separated method groups to run: features, le, le-nontrivial, ne, ne-nontrivial, ne-propagated, "
             "ne-svd, ne-svd-propagated, ne-features, ne-nontrivial-features, ne-inductive, gcn, mlp, truncation, cost "
             "(default: all).")] = "all",
    propagation_hops: Annotated[int, typer.Option(min=1, help="K of the ne-propagated group's inputs [X, ÂX, ..., Â^K X].")] = 3,
    truncation_runs: Annotated[int, typer.Option(min=1, help="Seeds per point of the truncation curves.")] = 3,
    fit_per_run: Annotated[bool, typer.Option("--fit-per-run", help="Fit each Neural Eigenmap variant once per run "
        "(seed r for run r) instead of one fit for every run, so the spread includes the fit's.")] = False,
    max_epochs: Annotated[int, typer.Option(min=1, help="Most epochs of the supervised GCN and MLP (they stop early on valid).")] = 500,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Neural Eigenmap against Laplacian Eigenmap, GCN, MLP and C&S on the OGB protocol; writes a Markdown table.

    Each row says what a test node needs: features only, the graph at test time, or to be in the
    graph used (transductive). Progress, with the time of each step, goes to stderr.

    \b
    Examples:
        graph-eigenmap bench compare -d ../shared/data/ogb/ogbn_cora --out results/cora
        graph-eigenmap bench compare -d ../shared/data/npz/cora.npz --methods ne,le-nontrivial,gcn --out results/cora_npz
        graph-eigenmap bench compare -d ogbn-products --root ~/ogb --out results/products --estimator sampled --steps 20000
    """
    import shlex

    from graph_eigenmap.artifacts import check_output_folder, removed_on_failure
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.evaluation.compare import compare, parse_methods

    chosen = parse_methods(methods)
    try:
        ratios = tuple(float(r) for r in label_ratios.split(","))
    except ValueError:
        raise GraphEigenmapError(f"--label-ratios must be comma-separated numbers such as 1,0.1,0.01; got {label_ratios!r}.") from None
    if not all(0 < r <= 1 for r in ratios):
        raise GraphEigenmapError(f"--label-ratios must lie in (0, 1] (fractions of the train labels); got {label_ratios!r}.")
    check_output_folder(out, "--out")

    from graph_eigenmap import load_graph
    from graph_eigenmap.api import resolve_device
    from graph_eigenmap.host_memory import keep_freed_host_memory

    device = resolve_device(device)
    command = "graph-eigenmap " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with removed_on_failure(out):
        graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed)
        if device.type == "cpu":
            keep_freed_host_memory()
        compare(graph, out_dir=out, methods=None if methods in (None, "all") else chosen, label_ratios=ratios, runs=runs, k=k, device=device,
                fit_options=dict(steps=steps, width=width, depth=depth, estimator=estimator, kernel=kernel),
                truncation_runs=truncation_runs, max_epochs=max_epochs, propagation_hops=propagation_hops,
                fit_per_run=fit_per_run, command=command,
                log=lambda message: typer.echo(message, err=True))
    typer.echo((out / "compare.md").read_text())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
