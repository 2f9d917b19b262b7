"""``graph-eigenmap``: learn spectral node embeddings of large graphs as neural eigenfunctions.

Each command parses its options and calls the library; the training options come from their one declaration
(``graph_eigenmap.config.TrainConfig``, through :mod:`graph_eigenmap_cli.options`). Nothing heavy is imported
before a command runs (torch takes seconds): ``--help``, ``--version`` and option errors answer at once, so every
command imports the library inside its body, on purpose. Every command checks its output paths before any work,
and a command that fails leaves no output, temporary file or folder of its own behind.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    CacheOpt,
    DatasetArg,
    DatasetOpt,
    DeviceOpt,
    OneLineErrors,
    RootOpt,
    SplitSeedOpt,
    friendly_errors,
    show_version,
    warn,
)
from .options import with_train_options

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
    from graph_eigenmap.data import load_graph  # deferred: the library imports torch (see the module)
    from graph_eigenmap.kernel import graph_report
    from graph_eigenmap.transfer import resolve_device

    graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed, device=resolve_device(device))
    report = graph_report(graph, self_loops=self_loops)
    typer.echo(json.dumps(report.to_dict()) if as_json else report.to_text())


@app.command()
@friendly_errors
@with_train_options()
def fit(
    out: Annotated[Path, typer.Option(
        help="Output folder: embeddings.npy, backbone.npy, metadata.json, model.pt, checkpoints.")],
    dataset: DatasetOpt = "csbm",
    backbone: Annotated[Optional[bool], typer.Option(
        "--backbone/--no-backbone", help="Write backbone.npy (the [n, width] penultimate features). Default: "
                                         "unless it would exceed 16 GiB.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the checkpoint in --out (a larger --steps extends it).")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary.")] = False,
    nproc: Annotated[int, typer.Option(
        min=1, help="Train on this many processes of this host that make each step together (data-parallel, "
                    "torch.distributed: one per GPU with NCCL, gloo on CPUs); each draws --batch-size seeds. "
                    "torchrun launches are detected by themselves.")] = 1,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
    options: dict = None,
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
    from graph_eigenmap.checkpoint import resume_step  # deferred: the library imports torch (see the module)
    from graph_eigenmap.data import generation_device
    from graph_eigenmap.distributed import check_process_count
    from graph_eigenmap.files import check_output_folder
    from graph_eigenmap.transfer import resolve_device

    check_output_folder(out, "--out", inputs={"--dataset": _path_or_none(dataset), "--root": root})
    start = resume_step(out, resume=resume, steps=options["steps"])
    device = resolve_device(device)
    check_process_count(nproc, device)
    fit_options = dict(options, device=device, out_dir=out, resume=resume, progress=False if quiet else None,
                       save_backbone=backbone)
    load_options = dict(root=root, cache_dir=cache_dir, split_seed=split_seed,
                        device=generation_device(dataset, device) if nproc == 1 else "cpu")
    metadata = _run_fit(dataset, load_options, fit_options, nproc, had_checkpoint=start > 0)
    if metadata is not None and not quiet:
        _print_fit_summary(metadata, out, start)


def _run_fit(dataset: str, load_options: dict, fit_options: dict, nproc: int, had_checkpoint: bool) -> dict | None:
    """Load the graph and fit it on ``nproc`` processes; the fit's metadata (None on a torchrun rank other than 0).
    A failed fit takes back what it wrote; an interrupted one keeps its checkpoint for ``--resume``."""
    from graph_eigenmap.api import neural_eigenmap, neural_eigenmap_on_processes  # deferred: as above
    from graph_eigenmap.checkpoint import CHECKPOINT_NAME
    from graph_eigenmap.data import load_graph
    from graph_eigenmap.errors import GraphEigenmapError, TrainingDivergedError
    from graph_eigenmap.files import removed_on_failure
    from graph_eigenmap.host_memory import keep_freed_host_memory, mark_phase

    out = fit_options["out_dir"]
    checkpoint = out / CHECKPOINT_NAME
    try:
        with removed_on_failure(out, keep_on_interrupt=(CHECKPOINT_NAME,)):
            if fit_options["device"].type == "cpu" and nproc == 1:  # the ranks of --nproc keep theirs themselves
                keep_freed_host_memory()  # no page faults on every step's activations (graph_eigenmap.host_memory)
            if nproc > 1:
                neural_eigenmap_on_processes(nproc, dataset, load_options=load_options, **fit_options)
                return json.loads((out / "metadata.json").read_text())
            mark_phase("load")
            arrays = out / f".graph.{os.getpid()}.tmp"  # a large synthetic graph's arrays, memory-mapped from files
            try:
                result = neural_eigenmap(load_graph(dataset, arrays_dir=arrays, **load_options), **fit_options)
            finally:
                shutil.rmtree(arrays, ignore_errors=True)
            return None if result is None else result.metadata
    except TrainingDivergedError as err:
        raise GraphEigenmapError(_diverged_message(err, out, checkpoint if had_checkpoint else None)) from None
    except KeyboardInterrupt:
        if checkpoint.exists():
            print(f"interrupted; {checkpoint} keeps the run: rerun with --resume to continue it.", file=sys.stderr)
            raise typer.Exit(code=130) from None
        raise


def _print_fit_summary(meta: dict, out: Path, start: int) -> None:
    """Three lines on stdout: what was fitted and how long it took, the leading eigenvalues, the files written."""
    tag = " (synthetic)" if meta["synthetic"] else ""
    leading = ", ".join(f"{v:.4f}" for v in meta["eigenvalues"][:5])
    ran = meta["steps"] - start
    steps_text = f"{ran} steps (resumed at step {start}, now {meta['steps']})" if start else f"{ran} steps"
    seconds = meta.get("training_time_s", meta["wall_time_s"])
    processes = f" x {meta['processes']} processes" if meta.get("processes", 1) > 1 else ""
    typer.echo(f"{meta['dataset_name']}{tag}: {meta['num_nodes']:,} nodes, k={meta['k']}, {meta['estimator']} "
               f"estimator, {steps_text} in {seconds:.1f} s on {meta['device']}{processes}")
    typer.echo(f"leading eigenvalue estimates: {leading}")
    backbone_file = "backbone.npy, " if meta.get("backbone_saved", True) else ""
    typer.echo(f"wrote {out}/embeddings.npy [{meta['num_nodes']}, {meta['k']}], {backbone_file}metadata.json, model.pt")


def _diverged_message(err, out: Path, kept_checkpoint: Path | None) -> str:
    """What happened when the loss became NaN, and the command that retries it."""
    lr = f" with --lr {err.lr:g}" if err.lr is not None else ""
    lower = f"--lr {float(f'{err.lr / 3:.2g}'):g}" if err.lr is not None else "a lower --lr"
    what = f"training diverged: the loss became {err.loss} at step {err.step}{lr}"
    if kept_checkpoint is None:
        return f"{what}; nothing was kept in {out}: rerun the same command with a lower learning rate, such as {lower}."
    return (f"{what}; {kept_checkpoint} (kept) resumes into the same divergence and --resume cannot change --lr: "
            f"choose another --out (or delete {kept_checkpoint}) and rerun with a lower learning rate, "
            f"such as {lower}.")


@app.command()
@friendly_errors
def embed(
    model: Annotated[Path, typer.Option(help="Folder written by `graph-eigenmap fit`.")],
    features: Annotated[Path, typer.Option(
        help="Node features, a float .npy file [m, d], or a scipy sparse .npz (scipy.sparse.save_npz) for wide "
             "sparse features.")],
    out: Annotated[Path, typer.Option(help="Where to write the float32 [m, k] embeddings (.npy).")],
    edges: Annotated[Optional[Path], typer.Option(
        help="For a model fitted with --inputs propagated:K or svd:D+propagated:K: the new nodes' edges to "
             "training-graph nodes, an integer .npy [2, E] (row 0: new node 0..m-1, row 1: known node id).")] = None,
    backbone: Annotated[Optional[Path], typer.Option(
        help="Also write the [m, h] backbone features here (.npy).")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Embed new nodes: from their features alone, or with their edges to known nodes (propagated inputs).

    \b
    Examples:
        graph-eigenmap embed --model runs/cs --features new_nodes.npy --out new_embeddings.npy
        graph-eigenmap embed --model runs/cs_prop --features new_nodes.npy --edges new_edges.npy --out new.npy
    """
    from graph_eigenmap.data.validate import read_array, read_sparse  # deferred: the library imports torch
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.files import check_output_file, removed_on_failure, save_array
    from graph_eigenmap.inference import embed_with_saved_model
    from graph_eigenmap.transfer import resolve_device

    inputs = {"--model": model, "--features": features, "--edges": edges}
    check_output_file(out, "--out", "embeddings.npy", kind="npy", inputs=inputs)
    if backbone is not None:
        check_output_file(backbone, "--backbone", "backbone.npy", kind="npy", inputs=inputs)
        if backbone.resolve() == out.resolve():
            raise GraphEigenmapError(f"--backbone and --out are the same file ({out}); give two different paths.")
    x = (read_sparse(features, "node features [m, d]") if features.suffix == ".npz"
         else read_array(features, "node features [m, d]"))
    new_edges = None if edges is None else read_array(edges, "edges [2, E] (new node, known node)", integral=True)
    embedding, backbone_features = embed_with_saved_model(model, x, new_edges, device=resolve_device(device),
                                                          with_backbone=backbone is not None)
    with removed_on_failure(out, *([backbone] if backbone is not None else [])):
        save_array(out, embedding)
        if backbone is not None:
            save_array(backbone, backbone_features)
    typer.echo(f"wrote {out} {list(embedding.shape)}")


@app.command()
@friendly_errors
def evaluate(
    model: Annotated[Optional[Path], typer.Option(
        help="A folder written by `graph-eigenmap fit`: the default recipe, its representations (backbone, "
             "eigenfunctions, either beside the features) chosen on valid, with C&S where it helps on valid.")] = None,
    embeddings: Annotated[Optional[Path], typer.Option(
        help="Or any node representations, a .npy array [n, d] (row i = node i).")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", "-d", help="The graph (as fit's --dataset). Default: the fit's with --model, else csbm.")] = None,
    label_ratio: Annotated[float, typer.Option(
        help="Fraction of the train split used, in (0, 1]: 1, 0.1, 0.01, ...")] = 1.0,
    runs: Annotated[int, typer.Option(min=1, help="Seeds 0..runs-1.")] = 10,
    correct_and_smooth: Annotated[bool, typer.Option(
        "--correct-and-smooth", help="With --embeddings: also post-process the probe with Correct & Smooth "
                                     "(PyG; needs the graph). --model decides on valid.")] = False,
    output: Annotated[Optional[Path], typer.Option(help="Write the result JSON here.")] = None,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Linear-probe accuracy of node representations on the OGB protocol (ogb Evaluator, mean ± std over seeds).

    The probe is scikit-learn's multinomial logistic regression (L-BFGS until converged), C chosen
    on valid per run; the JSON records each run's C, iterations and final gradient norm. With --model, every
    candidate's mean valid accuracy and the choice are in the JSON too.

    \b
    Examples:
        graph-eigenmap evaluate --model runs/cs --label-ratio 0.1
        graph-eigenmap evaluate --embeddings runs/cs/backbone.npy -d ../shared/data/ogb/ogbn_coauthor_cs
    """
    from graph_eigenmap.data import load_graph  # deferred: the library imports torch (see the module)
    from graph_eigenmap.data.validate import check_rows, read_array
    from graph_eigenmap.errors import GraphEigenmapError
    from graph_eigenmap.evaluation import evaluate_representation
    from graph_eigenmap.evaluation.recommend import choose_representation, fit_parts
    from graph_eigenmap.files import check_output_file, removed_on_failure, save_json
    from graph_eigenmap.transfer import resolve_device

    if (model is None) == (embeddings is None):
        raise GraphEigenmapError("give --model RUN_DIR (a folder of `graph-eigenmap fit`) or --embeddings FILE.npy, "
                                 "one of the two.")
    if not 0 < label_ratio <= 1:
        raise GraphEigenmapError(f"--label-ratio must lie in (0, 1] (the fraction of the train labels; 1 = all); "
                                 f"got {label_ratio:g}.")
    if output is not None:
        check_output_file(output, "--output", "result.json", kind="json",
                          inputs={"--model": model, "--embeddings": embeddings, "--dataset": _path_or_none(dataset),
                                  "--root": root})
    if model is not None and correct_and_smooth:
        warn("--correct-and-smooth is ignored with --model: the default recipe applies C&S where it helps on valid "
             "labels (the JSON says whether it did); drop the option.")
    parts = fit_parts(model) if model is not None else None
    x = read_array(embeddings, "node representations [n, d]") if parts is None else None
    spec = dataset or (parts or {}).get("dataset") or "csbm"
    graph = load_graph(spec, root=root, cache_dir=cache_dir, split_seed=split_seed)
    if x is not None:
        check_rows(x, graph.num_nodes, str(embeddings), graph.name)
    device = resolve_device(device)
    if parts is None:
        payload = evaluate_representation(x, graph, label_ratio=label_ratio, runs=runs, device=device,
                                          correct_and_smooth=correct_and_smooth, method=str(embeddings))
    else:
        payload = dict(choose_representation(parts, graph, label_ratio=label_ratio, runs=runs, device=device),
                       dataset=graph.name, synthetic=graph.synthetic, model=str(model))
    if output is not None:
        with removed_on_failure(output):
            save_json(output, payload)
    (_print_evaluation if parts is None else _print_default_recipe)(payload, label_ratio, runs)


def _print_evaluation(payload: dict, label_ratio: float, runs: int) -> None:
    """One line per row (the probe, and the probe + C&S when asked)."""
    tag = " (synthetic)" if payload["synthetic"] else ""
    seeds = "1 run" if runs == 1 else f"{runs} runs"
    for name, row in (("probe", payload), ("probe + C&S", payload.get("correct_and_smooth"))):
        if row is not None:
            typer.echo(f"{payload['dataset']}{tag}, {label_ratio_text(label_ratio)}, {seeds}, {name}: test accuracy "
                       f"{100 * row['test_acc_mean']:.2f} ± {100 * row['test_acc_std']:.2f} %, valid "
                       f"{100 * row['valid_acc_mean']:.2f} %")


def _print_default_recipe(payload: dict, label_ratio: float, runs: int) -> None:
    """The chosen pipeline's accuracy, then every candidate's valid accuracy."""
    tag = " (synthetic)" if payload["synthetic"] else ""
    seeds = "1 run" if runs == 1 else f"{runs} runs"
    chosen = payload["chosen"] + (" + C&S" if payload["correct_and_smooth"] else "")
    test = f"{100 * payload['test_acc_mean']:.2f} ± {100 * payload['test_acc_std']:.2f} %"
    typer.echo(f"{payload['dataset']}{tag}, {label_ratio_text(label_ratio)}, {seeds}, default recipe ({chosen}, chosen "
               f"on valid): test accuracy {test}, valid {100 * payload['valid_acc_mean']:.2f} %")
    typer.echo("valid accuracy of each candidate: " + ", ".join(
        f"{name} {100 * value:.2f} %" for name, value in payload["candidates"].items()))


def label_ratio_text(label_ratio: float) -> str:
    """``1`` -> "all train labels", ``0.1`` -> "10% of the train labels"."""
    return "all train labels" if label_ratio == 1 else f"{100 * label_ratio:g}% of the train labels"


bench = typer.Typer(help="Benchmarks: compare methods on a graph.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bench, name="bench")


@bench.command("compare")
@friendly_errors
@with_train_options(only=("steps", "width", "depth", "estimator", "kernel"), after="k")
def bench_compare(
    out: Annotated[Path, typer.Option(help="Output folder: compare.md, compare.json, truncation.png.")],
    dataset: DatasetOpt = "csbm",
    label_ratios: Annotated[str, typer.Option(help="Comma-separated fractions of the train labels.")] = "1,0.1,0.01",
    runs: Annotated[int, typer.Option(min=1, help="Seeds per method and label ratio.")] = 10,
    k: Annotated[int, typer.Option(min=1, help="Eigenfunctions (and exact eigenvectors).")] = 64,
    methods: Annotated[str, typer.Option(
        help="Comma-separated method groups to run: default, features, le, le-nontrivial, ne, "
             "ne-nontrivial, ne-propagated, ne-svd, ne-svd-propagated, ne-features, ne-nontrivial-features, "
             "ne-inductive, gcn, mlp, truncation, cost (default: all). `default` is the default recipe: a fit at the "
             "defaults and the representation chosen on valid.")] = "all",
    propagation_hops: Annotated[int, typer.Option(
        min=1, help="K of the ne-propagated group's inputs [X, ÂX, ..., Â^K X].")] = 3,
    truncation_runs: Annotated[int, typer.Option(min=1, help="Seeds per point of the truncation curves.")] = 3,
    fit_per_run: Annotated[bool, typer.Option("--fit-per-run", help="Fit each Neural Eigenmap variant once per run "
        "(seed r for run r) instead of one fit for every run, so the spread includes the fit's.")] = False,
    max_epochs: Annotated[int, typer.Option(
        min=1, help="Most epochs of the supervised GCN and MLP (they stop early on valid).")] = 500,
    device: DeviceOpt = "auto",
    root: RootOpt = None,
    cache_dir: CacheOpt = None,
    split_seed: SplitSeedOpt = 0,
    options: dict = None,
) -> None:
    """Neural Eigenmap against Laplacian Eigenmap, GCN, MLP and C&S on the OGB protocol; writes a Markdown table.

    Each row says what a test node needs: features only, the graph at test time, or to be in the
    graph used (transductive). Progress, with the time of each step, goes to stderr. The Neural Eigenmap
    options (--steps, --width, --depth, --estimator, --kernel) are those of `fit`.

    \b
    Examples:
        graph-eigenmap bench compare -d ../shared/data/ogb/ogbn_cora --out results/cora
        graph-eigenmap bench compare -d ../shared/data/npz/cora.npz --methods ne,le-nontrivial,gcn --out results/cora_npz
        graph-eigenmap bench compare -d ogbn-products --root ~/ogb --out results/products --estimator sampled --steps 20000
    """  # noqa: E501 (example commands stay on one line)
    from graph_eigenmap.data import load_graph  # deferred: the library imports torch (see the module)
    from graph_eigenmap.evaluation.compare import compare, parse_label_ratios, parse_methods
    from graph_eigenmap.files import check_output_folder, removed_on_failure
    from graph_eigenmap.host_memory import keep_freed_host_memory
    from graph_eigenmap.transfer import resolve_device

    chosen = parse_methods(methods)
    ratios = parse_label_ratios(label_ratios)
    check_output_folder(out, "--out", inputs={"--dataset": _path_or_none(dataset), "--root": root})
    device = resolve_device(device)
    command = "graph-eigenmap " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with removed_on_failure(out):
        graph = load_graph(dataset, root=root, cache_dir=cache_dir, split_seed=split_seed)
        if device.type == "cpu":
            keep_freed_host_memory()
        compare(graph, out_dir=out, methods=None if methods in (None, "all") else chosen, label_ratios=ratios,
                runs=runs, k=k, device=device, fit_options=options, truncation_runs=truncation_runs,
                max_epochs=max_epochs, propagation_hops=propagation_hops, fit_per_run=fit_per_run, command=command,
                log=lambda message: typer.echo(message, err=True))
    typer.echo((out / "compare.md").read_text())


def _path_or_none(dataset: str | None) -> Path | None:
    """``--dataset`` as a path where it names a file or folder (an input whose place no output may take)."""
    return Path(dataset) if dataset is not None and Path(dataset).expanduser().exists() else None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
