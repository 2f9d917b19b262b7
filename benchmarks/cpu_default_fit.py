"""`graph-eigenmap fit` with default settings on coauthor_cs (real, ../shared/data), on this CPU.

    python benchmarks/cpu_default_fit.py [--data ../shared/data] [--repeats 3]

Runs the command a user runs, in a fresh process each time (the first with an empty cache folder,
so it includes reading the OGB-layout files through ogb), and times it from start to exit. Then
scores the embeddings it wrote: captured spectrum against the exact top-64 eigenpairs, and linear-
probe test accuracy (OGB protocol, 3 seeds). For contrast, the same with ``--estimator full``
(exact ĀΨ and the gradient through every node, the default before the rows estimator), and the
default with freed host memory handed back to the kernel (``GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0``),
with each process's minor page faults. Writes
benchmarks/results/cpu_default_fit.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap import load_graph, normalized_adjacency
from graph_eigenmap.baselines import top_eigenpairs
from graph_eigenmap.evaluation.probe import evaluate_embeddings
from graph_eigenmap.metrics import captured_spectrum

ROOT = Path(__file__).resolve().parents[1]


def cli() -> list[str]:
    script = shutil.which("graph-eigenmap") or str(Path(sys.executable).parent / "graph-eigenmap")
    return [script] if Path(script).exists() else [sys.executable, "-c", "from graph_eigenmap_cli.main import app; app()"]


def run_fit(dataset: str, out: Path, cache: Path, extra: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds of one ``fit`` process and the minor page faults it took."""
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    started = time.perf_counter()
    subprocess.run(cli() + ["fit", "-d", dataset, "--out", str(out), "--cache-dir", str(cache), "--quiet", *extra],
                   check=True, env=dict(os.environ, **env))
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    dataset = str(Path(args.data) / "ogb" / "ogbn_coauthor_cs")
    graph = load_graph(dataset)
    kernel = normalized_adjacency(graph)
    exact, _ = top_eigenpairs(kernel, 64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        runs = (("default", [], {}, args.repeats), ("--estimator full", ["--estimator", "full"], {}, 1),
                ("default, GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0", [], {"GRAPH_EIGENMAP_KEEP_FREED_MEMORY": "0"}, 1))
        for label, extra, env, repeats in runs:
            for repeat in range(repeats):
                out = Path(tmp) / f"{len(rows)}"
                cold = not cache.exists()
                seconds, faults = run_fit(dataset, out, cache, extra, env)
                meta = json.loads((out / "metadata.json").read_text())
                row = dict(settings=label, estimator=meta["estimator"], steps=meta["steps"], cold_cache=cold,
                           wall_s=round(seconds, 1), training_s=round(meta["training_time_s"], 1), minor_page_faults=faults)
                if repeat == 0 and not env:
                    embedding = np.load(out / "embeddings.npy")
                    row["captured_spectrum"] = round(captured_spectrum(embedding, kernel, exact), 4)
                    row["probe_test_acc"] = round(evaluate_embeddings(embedding, graph, runs=3).test_acc_mean, 4)
                rows.append(row)
                print(row, flush=True)
    report = dict(date=datetime.date.today().isoformat(), command="python benchmarks/cpu_default_fit.py",
                  machine=f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                  dataset="coauthor_cs (real, OGB layout, 100-d features)", k=64, target_s=60, runs=rows)
    out = Path(args.out)
    (out / "cpu_default_fit.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Default `graph-eigenmap fit` on coauthor_cs, CPU ({report['machine']}), {report['date']}", "",
             f"Command: `{report['command']}`. Wall time is the whole command, start to exit (imports, loading, "
             "training, embedding, writing); the first run starts from an empty cache folder.", "",
             "| settings | estimator | steps | cold cache | wall s | training s | minor page faults | captured spectrum | probe test acc |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['settings']} | {r['estimator']} | {r['steps']} | {r['cold_cache']} | {r['wall_s']} | {r['training_s']} | "
              f"{r['minor_page_faults']:,} | {r.get('captured_spectrum', '')} | {r.get('probe_test_acc', '')} |" for r in rows]
    (out / "cpu_default_fit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
