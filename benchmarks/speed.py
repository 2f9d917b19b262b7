"""Speed suite on the products-shaped CSBM (synthetic), one GPU, one command.

    PYTHONPATH=. python benchmarks/speed.py --out DIR

Graph: csbm-products (2,449,029 nodes, 61,859,140 undirected edges, 100 features, 47 classes).
Model: MLP 100-512-512 (width 512, depth 2), k = 64 and 256, bf16 autocast. Measures, each with its
floor (FLOPs over the measured bf16 matrix-multiply rate, bytes over the measured copy bandwidth):

* sampled estimator: seconds per epoch (n seeds), steps per second; full graph: ms per step;
* time to plateau (objective within 1% of its final value) for each estimator, k = 64;
* peak GPU memory (torch.cuda.max_memory_allocated) of each;
* out-of-sample embedding throughput (features only) and GCN inference over the same nodes;
* exact top-64 eigenpairs on the GPU (Chebyshev-filtered subspace iteration);
* the reference's configuration: block estimator, batch 16384, residual MLP width 2048
  (11 linear layers): seconds per reference epoch ((n / 16384)² steps).

Step times come from the training loop's own history (device-synchronized every 10 steps), after
the first logged interval, which holds warm-up. Writes DIR/speed_products_shape.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from graph_eigenmap import normalized_adjacency, to_torch_csr
from graph_eigenmap.baselines import chebyshev_eigenpairs
from graph_eigenmap.baselines.supervised import GCN
from graph_eigenmap.data import csbm
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE
from graph_eigenmap.evaluation.cost import median_seconds
from graph_eigenmap.train import TrainConfig, embed_nodes, train

WIDTH, DEPTH, FANOUT, BATCH = 512, 2, 8, 4096


def sync():
    torch.cuda.synchronize()


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
    return dict(matmul_flops=2 * 8192**3 / matmul, copy_bytes_per_s=2 * src.numel() * 4 / copy)


def mlp_flops(rows: int, d: int, width: int, depth: int, k: int) -> float:
    """Forward + backward FLOPs of the MLP on ``rows`` rows (3 × the forward's 2·rows·Σ in·out)."""
    weights = d * width + (depth - 1) * width * width + width * k
    return 6.0 * rows * weights


def step_seconds(history) -> float:
    """Seconds per step from the loop's history, leaving out the first interval (warm-up)."""
    (s0, t0, _, _), (s1, t1, _, _) = history[0], history[-1]
    return (t1 - t0) / (s1 - s0)


def time_to_plateau(history) -> float:
    final = statistics.mean(entry[2] for entry in history[-max(3, len(history) // 20):])
    for step, seconds, loss, _ in history:
        if abs(loss - final) <= 0.01 * abs(final):
            return seconds
    return history[-1][1]


def fit(graph, **options):
    """Train with the suite's defaults (MLP 512 x 2, fanout 8, batch 4096) overridden by ``options``; also the peak GiB."""
    torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(**dict(dict(width=WIDTH, depth=DEPTH, fanout=FANOUT, batch_size=BATCH), **options))
    result = train(graph, config, device="cuda", progress=False, log_every=10)
    return result, torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--sampled-steps", type=int, default=2000)
    parser.add_argument("--full-steps", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=60)
    parser.add_argument("--small", action="store_true", help="a 200k-node graph: a quick check of the script")
    args = parser.parse_args()
    shape = dict(PRODUCTS_SHAPE, num_nodes=200_000, num_edges=5_000_000) if args.small else PRODUCTS_SHAPE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(device=torch.cuda.get_device_name(), date=datetime.date.today().isoformat(),
                  command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True, graph=shape,
                  model=f"MLP {PRODUCTS_SHAPE['num_features']}-{WIDTH}-{WIDTH}, bf16", torch=torch.__version__)

    def save():
        (out / "speed_products_shape.json").write_text(json.dumps(report, indent=1) + "\n")

    peak = ceilings()
    report.update(matmul_tflops=round(peak["matmul_flops"] / 1e12, 1), copy_tb_per_s=round(peak["copy_bytes_per_s"] / 1e12, 2))
    graph = csbm(device="cuda", name="csbm-products", **shape)
    n, d, nnz = graph.num_nodes, graph.num_features, graph.adjacency.nnz
    print(f"graph ready; ceilings {report['matmul_tflops']} TFLOP/s, {report['copy_tb_per_s']} TB/s", flush=True)

    for k in (64, 256):
        sampled, sampled_peak = fit(graph, k=k, estimator="sampled", steps=args.sampled_steps)
        step = step_seconds(sampled.history)
        epoch = step * n / BATCH
        rows = n * (1 + FANOUT)
        report[f"epoch_s_sampled_k{k}"] = round(epoch, 3)
        report[f"steps_per_s_sampled_k{k}"] = round(1 / step, 1)
        report[f"peak_gpu_gib_sampled_k{k}"] = round(sampled_peak, 2)
        report[f"epoch_floor_s_sampled_k{k}"] = round(max(mlp_flops(rows, d, WIDTH, DEPTH, k) / peak["matmul_flops"],
                                                          rows * d * 4 / peak["copy_bytes_per_s"]), 4)
        full, full_peak = fit(graph, k=k, estimator="full", steps=args.full_steps)
        full_step = step_seconds(full.history)
        report[f"full_graph_step_ms_k{k}"] = round(1000 * full_step, 1)
        report[f"peak_gpu_gib_full_k{k}"] = round(full_peak, 2)
        spmm_bytes = nnz * 8 + 2 * n * k * 4
        report[f"full_graph_step_floor_ms_k{k}"] = round(1000 * max(mlp_flops(n, d, WIDTH, DEPTH, k) / peak["matmul_flops"],
                                                                    (n * d * 4 + 2 * spmm_bytes) / peak["copy_bytes_per_s"]), 2)
        if k == 64:
            report["time_to_plateau_s_sampled"] = round(time_to_plateau(sampled.history), 1)
            report["time_to_plateau_s_full"] = round(time_to_plateau(full.history), 1)
            model = sampled.model
        print(json.dumps({key: value for key, value in report.items() if key.endswith(f"k{k}")}), flush=True)
        save()
    for batch in (16384, 65536):  # larger batches: fewer, fuller steps per epoch
        result, batch_peak = fit(graph, k=64, batch_size=batch, estimator="sampled", steps=max(100, args.sampled_steps // 8))
        report[f"epoch_s_sampled_k64_batch{batch}"] = round(step_seconds(result.history) * n / batch, 3)
        report[f"peak_gpu_gib_sampled_k64_batch{batch}"] = round(batch_peak, 2)
        report[f"time_to_plateau_s_sampled_batch{batch}"] = round(time_to_plateau(result.history), 1)
        print(batch, report[f"epoch_s_sampled_k64_batch{batch}"], flush=True)
    report["epoch_s_sampled_k64_ratio_to_floor"] = round(report["epoch_s_sampled_k64"] / report["epoch_floor_s_sampled_k64"], 1)
    report["full_graph_step_ms_k64_ratio_to_floor"] = round(report["full_graph_step_ms_k64"] / report["full_graph_step_floor_ms_k64"], 1)
    report["time_to_plateau_s"] = min(report["time_to_plateau_s_sampled"], report["time_to_plateau_s_full"])
    report["peak_gpu_gib_sampled"] = report["peak_gpu_gib_sampled_k64"]

    features = torch.from_numpy(graph.features).cuda()
    oos = median_time(lambda: embed_nodes(model, features, chunk_size=1 << 20, with_backbone=False,
                                          to_host=False, bf16=True), 5)
    report["oos_nodes_per_s"] = round(n / oos)  # bf16, embeddings stay on the GPU
    oos_host = median_time(lambda: embed_nodes(model, features, chunk_size=1 << 20, with_backbone=False), 3)
    report["oos_nodes_per_s_fp32_to_host"] = round(n / oos_host)
    report["oos_floor_nodes_per_s"] = round(n / max(2 * n * (d * WIDTH + WIDTH * WIDTH + WIDTH * 64) / peak["matmul_flops"],
                                                    n * (d + 64) * 4 / peak["copy_bytes_per_s"]))
    adjacency = to_torch_csr(normalized_adjacency(graph, self_loops=True), device="cuda")
    gcn = GCN(d, 256, PRODUCTS_SHAPE["num_classes"]).cuda().eval()
    with torch.no_grad():
        report["gcn_inference_all_nodes_s"] = round(median_time(lambda: gcn(features, adjacency).argmax(1), 3), 3)
    print("oos", report["oos_nodes_per_s"], "gcn", report["gcn_inference_all_nodes_s"], flush=True)
    save()

    kernel = to_torch_csr(normalized_adjacency(graph), device="cuda")
    start = time.perf_counter()
    _, _, info = chebyshev_eigenpairs(kernel, 64)
    sync()
    report["eigensolver_k64_s"] = round(time.perf_counter() - start, 2)
    report["eigensolver_k64_iterations"] = info["iterations"]
    save()

    reference, reference_peak = fit(graph, k=64, estimator="block", batch_size=16384, width=2048, depth=10,
                                    residual=True, steps=args.reference_steps)
    reference_step = step_seconds(reference.history)
    report["reference_step_ms"] = round(1000 * reference_step, 2)
    report["reference_epoch_s"] = round(reference_step * (n / 16384) ** 2, 1)
    report["reference_peak_gpu_gib"] = round(reference_peak, 2)
    save()
    lines = [f"# Speed on the products-shaped CSBM (synthetic), {report['device']}, {report['date']}", "",
             f"Command: `{report['command']}`", "", "| figure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report.items() if isinstance(value, (int, float))]
    (out / "speed_products_shape.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
