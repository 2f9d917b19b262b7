"""Distributed suite: data-parallel scaling of ``graph-eigenmap fit --nproc N``, N = 1 ... the GPUs present.

    python -m benchmarks.distributed --out DIR [--shapes csbm-products csbm-papers100m] [--nproc 1 2 4] [--steps 300]
    python -m benchmarks.distributed --out DIR --small       # CI's small form: a tiny graph, N = 1 and 2, CPU

For each graph (**synthetic** shapes by default; anything ``-d`` takes) and each N: ``graph-eigenmap fit -d SHAPE
--nproc N --estimator sampled`` with ``--batch-size`` seeds per rank (so N ranks draw N times the seeds of one), the
MLP on the node features (``--inputs features``), the same ``--steps`` for every N (``--same epochs``: ``--steps / N``,
the same seeds in all). From each run's metadata.json: training seconds per step, the epoch time (every node a seed
once: n / (N · batch) steps), the speedup and scaling efficiency against N = 1, the final objective (the sum of the
exact Rayleigh quotients of the k outputs, what the stop-gradient objective maximizes) and the bytes all-reduced per
step (gradients of every parameter, the L2-BN mean squares and the [k, k] estimates, float32). N = 1 is the plain
path: one process, no process group. ``--one-process-paths`` also runs N = 1 as plain ``fit`` and as one rank forced
through DDP under torchrun (``GRAPH_EIGENMAP_DISTRIBUTED=1``): what the machinery costs. Writes
DIR/distributed_scaling.{json,md} (``runs``: ``shape``, ``nproc``, ``epoch_s``, ``speedup``, ``final_objective``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import cli_command, markdown_header, parse_suite_args, provenance, write_result

PATHS = ("nproc", "plain", "one-rank-ddp")
"""How a run is launched: ``fit --nproc N``; plain ``fit`` (no option); and ``torchrun --nproc-per-node 1`` with
``GRAPH_EIGENMAP_DISTRIBUTED=1``, which forces the process group, DDP and the all-reduces for one rank."""
SMALL = ["--shapes", "csbm:num_nodes=1000,num_edges=5000,num_classes=4,num_features=8", "--nproc", "1", "2",
         "--device", "cpu", "--steps", "10", "--batch-size", "128", "--k", "8"]
"""What ``--small`` adds (CI's form)."""


def parameter_count(metadata: dict, num_features: int) -> int:
    """Parameters of the MLP that metadata.json's config describes (linear layers, norms, head)."""
    config = metadata["config"]
    width, depth, k = config["width"], config["depth"], config["k"]
    linear = (num_features + 1) * width + (depth - 1) * (width + 1) * width
    norms = 2 * width * depth if config["norm"] == "layer" else 0
    return linear + norms + (width + 1) * k


def run(shape: str, nproc: int, args: argparse.Namespace, out: Path, path: str = "nproc") -> dict:
    """One fit; its figures from metadata.json."""
    folder = out / f"run-{len(list(out.iterdir()))}"
    launcher, env = cli_command(), dict(os.environ)
    if path == "one-rank-ddp":
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "-m", launcher[-1]]
        env["GRAPH_EIGENMAP_DISTRIBUTED"] = "1"
    processes = [] if path != "nproc" else ["--nproc", str(nproc)]
    steps = args.steps if args.same == "steps" else max(1, args.steps // nproc)
    command = [*launcher, "fit", "-d", shape, "--out", str(folder), *processes, "--estimator", "sampled",
               "--inputs", "features", "--batch-size", str(args.batch_size), "--steps", str(steps), "--k", str(args.k),
               "--device", args.device, "--quiet", "--checkpoint-every", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    metadata = json.loads((folder / "metadata.json").read_text())
    n, per_step = metadata["num_nodes"], metadata["training_time_s"] / metadata["steps"]
    params = parameter_count(metadata, json.loads((folder / "model.json").read_text())["num_features"])
    k = metadata["k"]
    return dict(shape=shape, path=path, synthetic=metadata["synthetic"], nproc=nproc, device=metadata["device"],
                num_nodes=n, seeds_per_rank=args.batch_size, steps=metadata["steps"], step_s=round(per_step, 4),
                epoch_s=round(per_step * n / (nproc * args.batch_size), 4),
                final_objective=round(float(sum(metadata["rayleigh_quotients"])), 4),
                allreduce_bytes_per_step=4 * (params + k + 2 * k * k) if nproc > 1 or path == "one-rank-ddp" else 0,
                command=("GRAPH_EIGENMAP_DISTRIBUTED=1 torchrun " if path == "one-rank-ddp" else "graph-eigenmap ")
                + " ".join(command[command.index("fit"):]))


def to_markdown(report: dict) -> str:
    lines = markdown_header("Data-parallel scaling of `fit --nproc N`", report) + [
        f"Every N shares the {report['same']}.", "",
        "| shape | launch | N | device | seeds per rank | step (s) | epoch (s) | speedup | efficiency | final objective "
        "(vs N = 1) | all-reduced per step |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['shape']} | {r['path']} | {r['nproc']} | {r['device']} | {r['seeds_per_rank']:,} | "
                     f"{r['step_s']} | {r['epoch_s']} | {r['speedup']} | {r['efficiency']} | {r['final_objective']} "
                     f"({100 * r['objective_vs_one_process']:+.2f} %) | {r['allreduce_bytes_per_step'] / 2**20:.2f} MiB |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--small", action="store_true", help="CI's small form: " + " ".join(SMALL))
    parser.add_argument("--shapes", nargs="+", default=["csbm-products", "csbm-papers100m"])
    parser.add_argument("--nproc", nargs="+", type=int, default=None, help="default: 1, 2, 4, ... up to the GPUs")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (of N = 1 with --same epochs)")
    parser.add_argument("--same", choices=("steps", "epochs"), default="steps",
                        help="what every N shares: the steps (N times the seeds) or the epochs (steps / N)")
    parser.add_argument("--batch-size", type=int, default=65536, help="seeds per rank and step")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--one-process-paths", action="store_true",
                        help="also run N = 1 as plain fit and as one forced DDP rank under torchrun (their cost)")
    return parse_suite_args(parser, argv, SMALL)


def main(argv: list[str] | None = None) -> dict:
    import torch  # deferred: --help answers without torch

    args = parse(argv)
    gpus = torch.cuda.device_count() if args.device != "cpu" else 2
    counts = args.nproc or [n for n in (1, 2, 4, 8) if n <= max(1, gpus)]
    report = dict(provenance("distributed", args.argv, args.device.split(",")[0], seeds=[0]), same=args.same, runs=[])
    with tempfile.TemporaryDirectory(prefix="scaling-") as scratch:
        for shape in args.shapes:
            base = None
            for nproc in counts:
                for path in PATHS if nproc == 1 and args.one_process_paths else PATHS[:1]:
                    row = run(shape, nproc, args, Path(scratch), path)
                    base = base or row
                    row["speedup"] = round(base["epoch_s"] / row["epoch_s"], 3)
                    row["efficiency"] = round(row["speedup"] / nproc, 3)
                    row["objective_vs_one_process"] = round(row["final_objective"] / base["final_objective"] - 1, 4)
                    report["runs"].append(row)
                    print(json.dumps(row), flush=True)
                    write_result(args.out, "distributed_scaling", report)
    write_result(args.out, "distributed_scaling", report, to_markdown(report))
    return report


if __name__ == "__main__":
    main()
