"""Speed suite on the products-shaped CSBM (synthetic), one GPU, one command.

    PYTHONPATH=. python benchmarks/speed.py --out DIR

Graph: csbm-products (2,449,029 nodes, 61,859,140 undirected edges, 100 features, 47 classes).
Model: MLP 100-512-512 (width 512, depth 2), k = 64 and 256, bf16 autocast, one-sided gradient
(the library's default for MLPs). Each figure comes with its floor, the larger of FLOPs over the
measured bf16 matrix-multiply rate and bytes over the measured copy bandwidth, and the ratio to it:

* sampled estimator at 65,536 seeds per step: seconds per epoch (n seeds), steps per second;
  eager and with ``compile=True``; a sweep of batch sizes and the two-sided gradient for contrast;
* full graph: ms per step, eager and compiled;
* time to plateau (objective within 1% of its final value) for each estimator (sampled, full, rows,
  block) and mode, k = 64;
* peak GPU memory (torch.cuda.max_memory_allocated) of each;
* out-of-sample embedding of all n nodes from features (eager and compiled, bf16, on the GPU;
  float32 copied to the host), and GCN inference: all n nodes on the full graph, and 1,000 new
  nodes with the gathering of their 3-hop neighbourhoods, against embedding the same 1,000;
* exact top-64 eigenpairs on the GPU (Chebyshev-filtered subspace iteration);
* the reference's configuration: block estimator, batch 16384, residual MLP width 2048
  (11 linear layers), two-sided gradient as in the reference: seconds per reference epoch
  ((n / 16384)² steps).

Step times come from the training loop's own history (device-synchronized every 10 steps), after
the first logged interval, which holds warm-up and compilation. Writes DIR/speed_products_shape.json
and .md; the flat keys the issue names are the compiled figures where compiling is faster
(``*_eager`` keys hold the eager ones).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap import normalized_adjacency, to_torch_csr
from graph_eigenmap.baselines import chebyshev_eigenpairs
from graph_eigenmap.baselines.supervised import GCN
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data import csbm
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE
from graph_eigenmap.evaluation.cost import gcn_on_nodes, median_seconds
from graph_eigenmap.inference import embed_nodes
from graph_eigenmap.train import train

WIDTH, DEPTH, FANOUT, BATCH = 512, 2, 8, 65536
REFERENCE = dict(estimator="block", batch_size=16384, width=2048, depth=10, residual=True, one_sided_gradient=False)


def median_time(function, repeats=5):
    return median_seconds(function, repeats, device="cuda")


def ceilings() -> dict:
    """Measured bf16 matmul rate (FLOP/s) and device copy bandwidth (bytes/s, read + write)."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    matmul = median_time(lambda: a @ b, 10)
    src = torch.randn(2**28, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    copy = median_time(lambda: dst.copy_(src), 10)
    return dict(flops=2 * 8192**3 / matmul, bytes=2 * src.numel() * 4 / copy)


def mlp_weights(d: int, width: int, depth: int, k: int) -> int:
    """Multiply-adds per row of the MLP's forward pass."""
    return d * width + (depth - 1) * width * width + width * k


def spmm_bytes(nnz: int, n: int, columns: int) -> int:
    """One CSR product read once: int64 column index + float32 value per nonzero, input and output."""
    return nnz * 12 + 2 * n * columns * 4


def step_seconds(history) -> float:
    """Seconds per step from the loop's history, leaving out the first interval (warm-up)."""
    (s0, t0, _, _), (s1, t1, _, _) = history[0], history[-1]
    return (t1 - t0) / (s1 - s0)


def time_to_plateau(history) -> float:
    """Seconds until the objective is within 1 % of its final value (the mean of the last 5 % of the history)."""
    return plateau_entry(history)[1]


def plateau_entry(history) -> tuple:
    """The history entry ``(step, seconds, loss, R_11)`` at which the objective first comes within 1 % of its final value."""
    final = statistics.mean(entry[2] for entry in history[-max(3, len(history) // 20):])
    return next((entry for entry in history if abs(entry[2] - final) <= 0.01 * abs(final)), history[-1])


def fit(graph, **options):
    """Train with the suite's defaults (MLP 512 x 2, fanout 8, batch 65536) overridden by ``options``; also the peak GiB."""
    torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(**dict(dict(width=WIDTH, depth=DEPTH, fanout=FANOUT, batch_size=BATCH, checkpoint_every=0), **options))
    result = train(graph, config, device="cuda", progress=False, log_every=10)
    result.kernel = None  # the full-graph kernel (1.5 GiB here) would otherwise count in the next run's peak
    return result, torch.cuda.max_memory_allocated() / 2**30


class Report(dict):
    """Flat figures, each optionally with its floor (``<key>_floor``) and ratio (``<key>_ratio_to_floor``).

    For a time the floor is the least possible time and the ratio is value / floor; for a rate
    (``rate=True``) it is the greatest possible rate and the ratio is floor / value: either way,
    how many times slower than the floor.
    """

    def put(self, key: str, value: float, floor: float | None = None, digits: int = 3, rate: bool = False) -> None:
        self[key] = round(value, digits)
        if floor is not None:
            self[f"{key}_floor"] = round(floor, digits + 2) if digits else round(floor)
            self[f"{key}_ratio_to_floor"] = round(floor / value if rate else value / floor, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--sampled-steps", type=int, default=600)
    parser.add_argument("--full-steps", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=60)
    parser.add_argument("--small", action="store_true", help="a 200k-node graph: a quick check of the script")
    args = parser.parse_args()
    shape = dict(PRODUCTS_SHAPE, num_nodes=200_000, num_edges=5_000_000) if args.small else PRODUCTS_SHAPE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(device=torch.cuda.get_device_name(), date=datetime.date.today().isoformat(),
                    command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True, graph=shape,
                    model=f"MLP {shape['num_features']}-{WIDTH}-{WIDTH}, bf16, one-sided gradient", batch_size=BATCH,
                    fanout=FANOUT, torch=torch.__version__)

    def save():
        (out / "speed_products_shape.json").write_text(json.dumps(report, indent=1) + "\n")

    peak = ceilings()
    report.update(matmul_tflops=round(peak["flops"] / 1e12, 1), copy_tb_per_s=round(peak["bytes"] / 1e12, 2))
    graph = csbm(device="cuda", name="csbm-products", **shape)
    n, d, nnz = graph.num_nodes, graph.num_features, graph.adjacency.nnz
    floor = lambda flops, moved: max(flops / peak["flops"], moved / peak["bytes"])  # noqa: E731
    print(f"graph ready; ceilings {report['matmul_tflops']} TFLOP/s, {report['copy_tb_per_s']} TB/s", flush=True)

    models = {}
    for k in (64, 256):
        w = mlp_weights(d, WIDTH, DEPTH, k)
        # an epoch: n seeds forward and backward, n f neighbours forward only; features gathered for all
        epoch_floor = floor(2 * w * n * (3 + FANOUT), n * (1 + FANOUT) * d * 4)
        full_floor = floor(6 * w * n, n * d * 4 + spmm_bytes(nnz, n, k))
        for compiled in (False, True):
            suffix = f"k{k}" + ("" if compiled else "_eager")
            sampled, sampled_peak = fit(graph, k=k, estimator="sampled", steps=args.sampled_steps, compile=compiled)
            step = step_seconds(sampled.history)
            report.put(f"epoch_s_sampled_{suffix}", step * n / BATCH, epoch_floor)
            report.put(f"steps_per_s_sampled_{suffix}", 1 / step, digits=1)
            report.put(f"peak_gpu_gib_sampled_{suffix}", sampled_peak, digits=2)
            full, full_peak = fit(graph, k=k, estimator="full", steps=args.full_steps, compile=compiled)
            report.put(f"full_graph_step_ms_{suffix}", 1000 * step_seconds(full.history), 1000 * full_floor, digits=1)
            report.put(f"peak_gpu_gib_full_{suffix}", full_peak, digits=2)
            if k == 64:
                report.put(f"time_to_plateau_s_sampled_{suffix}", time_to_plateau(sampled.history), digits=1)
                report.put(f"time_to_plateau_s_full_{suffix}", time_to_plateau(full.history), digits=1)
                models[compiled] = sampled.model
            print(json.dumps({key: value for key, value in report.items() if suffix in key}), flush=True)
            save()
    report["peak_gpu_gib_sampled"] = report["peak_gpu_gib_sampled_k64"]

    # the other two estimators, eager, k = 64: rows (exact ĀΨ, gradient through 65,536 rows) and block
    w = mlp_weights(d, WIDTH, DEPTH, 64)
    rows, rows_peak = fit(graph, k=64, estimator="rows", steps=args.full_steps)
    report.put("rows_step_ms_k64_eager", 1000 * step_seconds(rows.history),
               1000 * floor(2 * w * (n + 3 * BATCH), (n + BATCH) * d * 4 + spmm_bytes(nnz, n, 64)), digits=1)
    report.put("time_to_plateau_s_rows_k64_eager", time_to_plateau(rows.history), digits=1)
    report.put("peak_gpu_gib_rows_k64_eager", rows_peak, digits=2)
    block, block_peak = fit(graph, k=64, estimator="block", steps=args.sampled_steps)
    report.put("block_step_ms_k64_eager", 1000 * step_seconds(block.history),
               1000 * floor(2 * w * 4 * BATCH, 2 * BATCH * d * 4), digits=2)
    report.put("time_to_plateau_s_block_k64_eager", time_to_plateau(block.history), digits=1)
    report.put("peak_gpu_gib_block_k64_eager", block_peak, digits=2)
    print("rows and block done", flush=True)

    # contrast: other batch sizes (eager), and the two-sided gradient at the suite's batch
    for batch in (4096, 16384, 131072):
        result, batch_peak = fit(graph, k=64, batch_size=batch, estimator="sampled", steps=max(100, args.sampled_steps // 2))
        report.put(f"epoch_s_sampled_k64_eager_batch{batch}", step_seconds(result.history) * n / batch)
        report.put(f"peak_gpu_gib_sampled_k64_eager_batch{batch}", batch_peak, digits=2)
    result, two_sided_peak = fit(graph, k=64, estimator="sampled", steps=max(100, args.sampled_steps // 2), one_sided_gradient=False)
    report.put("epoch_s_sampled_k64_eager_two_sided", step_seconds(result.history) * n / BATCH)
    report.put("peak_gpu_gib_sampled_k64_eager_two_sided", two_sided_peak, digits=2)
    print("batch sweep done", flush=True)
    report["time_to_plateau_s"] = min(value for key, value in report.items() if key.startswith("time_to_plateau_s_"))
    save()

    out_of_sample(graph, models, report, floor)
    save()

    kernel = to_torch_csr(normalized_adjacency(graph), device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    _, _, info = chebyshev_eigenpairs(kernel, 64)
    torch.cuda.synchronize()
    products = info["iterations"] * (16 + 1)  # degree-16 filter and one Rayleigh-Ritz product per round, 96 columns
    report.put("eigensolver_k64_s", time.perf_counter() - start, floor(0, products * spmm_bytes(nnz, n, 96)), digits=2)
    report["eigensolver_k64_iterations"] = info["iterations"]
    del kernel
    save()

    reference, reference_peak = fit(graph, k=64, steps=args.reference_steps, **REFERENCE)
    reference_step = step_seconds(reference.history)
    steps_per_epoch = (n / REFERENCE["batch_size"]) ** 2
    w_reference = mlp_weights(d, 2048, 10, 64)
    step_floor = floor(6 * w_reference * 2 * REFERENCE["batch_size"], 2 * REFERENCE["batch_size"] * d * 4)
    report.put("reference_step_ms", 1000 * reference_step, 1000 * step_floor, digits=2)
    report.put("reference_epoch_s", reference_step * steps_per_epoch, step_floor * steps_per_epoch, digits=1)
    report.put("reference_peak_gpu_gib", reference_peak, digits=2)
    merge_cpu_eigsh(report)
    save()
    write_markdown(report, out)


def merge_cpu_eigsh(report: dict, path: Path = Path(__file__).parent / "results" / "eigsh_scaling.json") -> None:
    """scipy eigsh on 2 CPU cores (benchmarks/eigsh_scaling.py, run on a CPU machine): largest graph and extrapolation."""
    if not path.exists():
        return
    scaling = json.loads(path.read_text())
    largest = max(scaling["runs"], key=lambda run: run["num_nodes"])
    report.update(eigsh_cpu_source=f"benchmarks/results/eigsh_scaling.json ({scaling['command']}, {scaling['device']})",
                  eigsh_cpu_k64_largest_nodes=largest["num_nodes"], eigsh_cpu_k64_largest_s=largest["seconds"],
                  eigsh_cpu_k64_fit=scaling["fit"], eigsh_cpu_k64_extrapolated_s=scaling["extrapolated_products_shape_s"])


def out_of_sample(graph, models: dict, report: Report, floor) -> None:
    """Embedding all n nodes from features; GCN on all nodes and on 1,000 new nodes with their neighbourhoods."""
    n, d = graph.num_nodes, graph.num_features
    features = torch.from_numpy(graph.features).cuda()
    oos_floor = n / floor(2 * n * mlp_weights(d, WIDTH, DEPTH, 64), n * (d * 4 + 64 * 2))
    for compiled, model in models.items():
        seconds = median_time(lambda: embed_nodes(model, features, chunk_size=1 << 20, with_backbone=False,
                                                  to_host=False, bf16=True), 5)
        report.put("oos_nodes_per_s" + ("" if compiled else "_eager"), n / seconds, oos_floor, digits=0, rate=True)
    host = median_time(lambda: embed_nodes(models[False], features, chunk_size=1 << 20, with_backbone=False), 3)
    report.put("oos_nodes_per_s_fp32_to_host", n / host, digits=0)

    adjacency = to_torch_csr(normalized_adjacency(graph, self_loops=True), device="cuda")
    gcn = GCN(d, 256, PRODUCTS_SHAPE["num_classes"]).cuda().eval()
    gcn_weights = d * 256 + 256 * 256 + 256 * PRODUCTS_SHAPE["num_classes"]
    gcn_floor = floor(2 * n * gcn_weights, sum(spmm_bytes(adjacency.values().numel(), n, c) for c in (256, 256, 47)))
    with torch.no_grad():
        report.put("gcn_inference_all_nodes_s", median_time(lambda kernel=adjacency: gcn(features, kernel).argmax(1), 3), gcn_floor)
    del adjacency
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)).cuda()
    degree = torch.bincount(edge_index[0], minlength=n).float() + 1
    new = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:1000].cuda()
    report.put("gcn_inference_1000_new_nodes_s",
               median_time(lambda: gcn_on_nodes(gcn, edge_index, n, features, new, 3, degree).argmax(1), 3))
    report.put("oos_1000_new_nodes_s", median_time(lambda: embed_nodes(models[False], features[new], with_backbone=False,
                                                                      to_host=False, bf16=True), 5), digits=5)
    print("out of sample", {k: v for k, v in report.items() if "oos" in k or "gcn" in k}, flush=True)


def write_markdown(report: Report, out: Path) -> None:
    lines = [f"# Speed on the products-shaped CSBM (synthetic), {report['device']}, {report['date']}", "",
             f"Command: `{report['command']}`", "", f"Model: {report['model']}; batch {report['batch_size']} seeds, fanout {report['fanout']}.",
             "", "| figure | value | floor | ratio to floor |", "|---|---|---|---|"]
    for key, value in report.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.endswith(("_floor", "_ratio_to_floor")):
            lines.append(f"| {key} | {value} | {report.get(key + '_floor', '')} | {report.get(key + '_ratio_to_floor', '')} |")
    if "eigsh_cpu_source" in report:
        lines += ["", f"eigsh_cpu_* figures: scipy eigsh on a CPU machine, from {report['eigsh_cpu_source']}; "
                      f"{report['eigsh_cpu_k64_fit']}, extrapolated to {report['graph']['num_nodes']:,} nodes."]
    (out / "speed_products_shape.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
