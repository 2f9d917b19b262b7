"""ogbn-papers100M's shape on one GPU (the synthetic csbm-papers100m): the one ``fit`` command, generation, embedding.

    PYTHONPATH=. python benchmarks/speed_papers100m_shape.py --out DIR [--steps 3000] [--batch-size 131072 --compile]

Graph: csbm-papers100m, 111,059,956 nodes, 1,615,685,872 undirected edges, 128 features, 172 classes
(synthetic: its accuracy says nothing about the real graph). Model: the speed suite's (benchmarks/speed.py),
an MLP 128-512-512, k = 64, bf16 autocast, one-sided gradient, neighbour-sampled estimator with 65,536
seeds (``--batch-size``) and fanout 8, eager or compiled (``--compile``).

1. The command ``graph-eigenmap fit -d csbm-papers100m --estimator sampled --device cuda --out DIR/fit`` with
   that model, run as a subprocess: its wall time and peak resident host memory (``RUSAGE_CHILDREN``; and, sampled
   at 1 Hz over its processes, peak anonymous memory (RssAnon) and PSS per phase, benchmarks/host_memory.py), and from
   its metadata.json: steps per second and seconds per epoch (n seeds) from the loop's own history (synchronized
   every 10 steps; the first interval, warm-up, left out), time to plateau (objective within 1 % of its final
   value), peak GPU memory of training and embedding, and the exact Rayleigh quotients of the outputs.
2. In this process: the generation on the GPU (time, peak GPU memory), then the fitted model applied to every
   node from features held on the GPU in bfloat16, outputs kept there in bfloat16 (nodes per second).

Each figure comes with its floor (FLOPs over the measured bf16 matrix-multiply rate or bytes over the measured
copy bandwidth, whichever is larger; see benchmarks/speed.py). Writes DIR/speed_papers100m_shape.json and .md,
rewritten after each stage so that a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.checkout_cli import cli_command  # noqa: E402
from benchmarks.host_memory import measure, read_phases, summarize  # noqa: E402
from benchmarks.speed import Report, ceilings, mlp_weights, plateau_entry, step_seconds  # noqa: E402
from graph_eigenmap.artifacts import load_model  # noqa: E402
from graph_eigenmap.data import csbm  # noqa: E402
from graph_eigenmap.data.synthetic import PAPERS100M_SHAPE  # noqa: E402
from graph_eigenmap.transfer import to_device  # noqa: E402

WIDTH, DEPTH, FANOUT, BATCH, K = 512, 2, 8, 65536, 64
TARGETS = dict(epoch_s_sampled=8.0, time_to_plateau_s=300.0, peak_gpu_gib=70.0)


def run_fit(args, out: Path, report: Report) -> Path:
    """Stage 1: the one command, timed; returns its output folder."""
    folder = Path(args.fit_dir) if args.fit_dir else out / "fit"
    shape = "" if args.nodes is None else f":num_nodes={args.nodes},num_edges={args.edges}"
    command = [*cli_command(), "fit", "-d", f"csbm-papers100m{shape}", "--estimator", "sampled", "--device", "cuda",
               "--out", str(folder), "--k", str(K), "--width", str(WIDTH), "--depth", str(DEPTH),
               "--batch-size", str(args.batch_size), "--fanout", str(FANOUT), "--steps", str(args.steps)]
    if args.compile:
        command.append("--compile")
    report["fit_command"] = "graph-eigenmap " + " ".join(command[3:])
    print(report["fit_command"], flush=True)
    start = time.perf_counter()
    phases = out / "fit_phases.txt"  # RssAnon and PSS sampled at 1 Hz, per phase (benchmarks/host_memory.py)
    measured = measure(command, dict(os.environ, GRAPH_EIGENMAP_PHASE_FILE=str(phases)), 1.0, out / "fit.log",
                       timeout=args.fit_timeout)
    code = "timed out" if measured["timed_out"] else measured["exit_code"]
    report["fit_command_wall_s"] = round(time.perf_counter() - start, 1)
    report["fit_command_exit_code"] = code
    report["fit_command_peak_host_gib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2)
    if measured["samples"]:
        memory = summarize(measured["samples"], read_phases(phases), measured["start"])
        report["fit_command_peak_rss_anon_gib"] = memory["peak_rss_anon_gib"]
        report["fit_command_peak_pss_gib"] = memory["peak_pss_gib"]
        report["fit_command_host_memory_phases"] = memory["phases"]
    return folder


def resident_gib(n: int, d: int) -> float:
    """GiB the sampled run cannot do without on the device: the graph's int32 CSR (both directions of every edge, int64
    row pointers) and the bfloat16 features. The floor of ``peak_gpu_gib``."""
    return ((n + 1) * 8 + 2 * PAPERS100M_SHAPE["num_edges"] * n // PAPERS100M_SHAPE["num_nodes"] * 4 + n * d * 2) / 2**30


def read_fit(folder: Path, report: Report, floor, n: int, d: int, batch: int) -> None:
    meta = json.loads((folder / "metadata.json").read_text())
    history = meta["history"]
    seconds_per_step = step_seconds(history)
    w = mlp_weights(d, WIDTH, DEPTH, K)
    steps_per_epoch = n / batch
    epoch_floor = floor(2 * w * n * (3 + FANOUT), n * (1 + FANOUT) * d * 2)  # bfloat16 rows (the auto storage)
    report.put("steps_per_s_sampled", 1 / seconds_per_step, digits=1)
    report.put("epoch_s_sampled", seconds_per_step * steps_per_epoch, epoch_floor)
    plateau_step, plateau_s = plateau_entry(history)[:2]
    report.put("time_to_plateau_s", plateau_s, plateau_step * epoch_floor / steps_per_epoch, digits=1)
    report["time_to_plateau_steps"] = plateau_step
    report.put("peak_gpu_gib", meta["peak_gpu_gib"], resident_gib(n, d), digits=2)
    report["fit_training_time_s"] = meta["training_time_s"]
    report["fit_wall_time_s_after_loading"] = meta["wall_time_s"]
    report["fit_feature_storage"] = meta["config"]["feature_storage"]
    report["fit_inputs"] = meta["config"]["inputs"]
    report["fit_steps"] = meta["steps"]
    report["fit_backbone_saved"] = meta["backbone_saved"]
    report["fit_final_objective"] = history[-1][2]
    report["fit_rayleigh_quotients_first"] = [round(q, 4) for q in meta["rayleigh_quotients"][:4]]
    report["fit_rayleigh_quotients_last"] = round(meta["rayleigh_quotients"][-1], 4)
    report["fit_eigenvalue_estimates_first"] = [round(q, 4) for q in meta["eigenvalues"][:4]]
    report["fit_order_violations"] = len(meta["order_violations"])
    report["fit_final_sort"] = meta["final_sort"] is not None


@torch.no_grad()
def out_of_sample(model, features, report: Report, floor, chunk: int = 1 << 20) -> None:
    """Stage 2b: every node's k outputs from bf16 features on the GPU, kept there in bf16."""
    n, d = features.shape
    outputs = torch.empty(n, K, dtype=torch.bfloat16, device="cuda")

    def embed_all():
        for begin in range(0, n, chunk):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                outputs[begin:begin + chunk] = model(features[begin:begin + chunk])

    embed_all()  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    embed_all()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    oos_floor = n / floor(2 * n * mlp_weights(d, WIDTH, DEPTH, K), n * (d * 2 + K * 2))
    report.put("oos_nodes_per_s", n / seconds, oos_floor, digits=0, rate=True)
    report["oos_all_nodes_s"] = round(seconds, 2)


def write(report: Report, out: Path) -> None:
    (out / "speed_papers100m_shape.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# papers100M shape (synthetic csbm-papers100m) on one GPU", "",
             f"{report['device']}, {report['date']}, `{report['command']}`", "",
             f"Fit command: `{report.get('fit_command')}`", "",
             "| figure | value | floor | ratio to floor | target |", "|---|---|---|---|---|"]
    for key, value in report.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.endswith(("_floor", "_ratio_to_floor")):
            target = TARGETS.get(key, "")
            lines.append(f"| {key} | {value} | {report.get(key + '_floor', '')} | "
                         f"{report.get(key + '_ratio_to_floor', '')} | {'<= ' + str(target) if target else ''} |")
    (out / "speed_papers100m_shape.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=None, help="smaller graph (a dry run); default papers100M's")
    parser.add_argument("--edges", type=int, default=None)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--fit-dir", default=None, help="the fit's output folder (default OUT/fit; 28 GB of embeddings)")
    parser.add_argument("--fit-timeout", type=float, default=420)
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"seeds per sampled step (default {BATCH})")
    parser.add_argument("--compile", action="store_true", help="fit with --compile (torch.compile of the MLP)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = dict(PAPERS100M_SHAPE, **({} if args.nodes is None else dict(num_nodes=args.nodes, num_edges=args.edges)))
    n, d = shape["num_nodes"], shape["num_features"]
    report = Report(device=torch.cuda.get_device_name(), torch=torch.__version__,
                    date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True, graph=shape,
                    model=f"MLP {d}-{WIDTH}-{WIDTH}, k = {K}, bf16, one-sided gradient", batch_size=args.batch_size, compiled=args.compile, fanout=FANOUT,
                    host_cpus=os.cpu_count(), targets=TARGETS)
    peak = ceilings()
    report["matmul_tflops"], report["copy_tb_per_s"] = round(peak["flops"] / 1e12, 1), round(peak["bytes"] / 1e12, 2)
    floor = lambda flops, moved: max(flops / peak["flops"], moved / peak["bytes"])  # noqa: E731
    write(report, out)

    if not args.skip_fit:
        folder = run_fit(args, out, report)
        if report["fit_command_exit_code"] == 0:
            read_fit(folder, report, floor, n, d, args.batch_size)
        write(report, out)
        print(json.dumps({k: v for k, v in report.items() if k.startswith(("fit", "epoch", "steps", "time", "peak"))}),
              flush=True)

    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    graph = csbm(**shape, device="cuda", name="csbm-papers100m")
    report["generation_s"] = round(time.perf_counter() - start, 1)
    report["generation_peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    report["generation_peak_host_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print("generated", graph, report["generation_s"], "s", flush=True)
    write(report, out)
    fit_dir = Path(args.fit_dir) if args.fit_dir else out / "fit"
    model_json = fit_dir / "model.json"
    if (fit_dir / "model.pt").exists() and json.loads(model_json.read_text())["num_features"] == d:
        model, _ = load_model(fit_dir, device="cuda")  # a model on the plain features (inputs=auto at this size)
        start = time.perf_counter()
        features = to_device(graph.features, "cuda", torch.bfloat16)
        report["features_to_gpu_bf16_s"] = round(time.perf_counter() - start, 1)
        out_of_sample(model.eval(), features, report, floor)
        write(report, out)
    print(json.dumps(report, indent=1), flush=True)
    if report.get("fit_command_exit_code", 0) != 0:
        sys.exit(f"the fit command failed ({report['fit_command_exit_code']}); see {out / 'fit.log'}")


if __name__ == "__main__":
    main()
