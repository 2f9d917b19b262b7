"""Wide raw features kept sparse against densified: time, peak memory and quality of the same fit.

    PYTHONPATH=. python benchmarks/sparse_features.py --data ../shared/data --out DIR [--datasets coauthor_cs citeseer]

For each graph's raw-feature ``.npz`` (coauthor_cs: 18,333 × 6,805, 0.9 % non-zero), one fit at the
library's defaults with ``inputs="features"`` (propagated sparse features would be dense), once with the
features densified (as below 4 GiB by default) and once kept sparse (``GRAPH_EIGENMAP_DENSE_FEATURES_MAX_BYTES=0``),
each in its own process: wall time of loading and fitting, the process's peak resident memory, the sum of
the exact Rayleigh quotients and the linear probe (OGB protocol, 100 % labels, one run) on the 64
eigenfunctions. Writes DIR/sparse_features.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from compare_shared import dataset_path

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np, scipy.sparse as sp, torch
from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.evaluation import evaluate_embeddings
started = time.perf_counter()
graph = load_graph(sys.argv[1])
loaded = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fitted = neural_eigenmap(graph, inputs="features", device="cpu", progress=False)
fit_s = time.perf_counter() - loaded
probe = evaluate_embeddings(fitted.embedding, graph, runs=1)
print(json.dumps(dict(features="sparse" if sp.issparse(graph.features) else "dense", estimator=fitted.config.estimator,
                      load_s=round(loaded - started, 1), fit_s=round(fit_s, 1),
                      peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                      quotient_sum=round(float(np.sum(fitted.rayleigh_quotients)), 3),
                      probe_valid=round(probe.valid_acc_mean, 4), probe_test=round(probe.test_acc_mean, 4))))
"""


def measure(path: Path, sparse: bool) -> dict:
    env = dict(os.environ, GRAPH_EIGENMAP_DENSE_FEATURES_MAX_BYTES="0" if sparse else str(2**40))
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", nargs="+", default=["coauthor_cs", "citeseer"])
    args = parser.parse_args()
    import torch

    report = dict(command="PYTHONPATH=. python " + " ".join(sys.argv),
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=f"CPU ({os.cpu_count()} cores, torch {torch.__version__})", rows=[])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        for sparse in (False, True):
            row = dict(graph=name) | measure(dataset_path(Path(args.data), "npz", name), sparse)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    (out / "sparse_features.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Raw `.npz` features kept sparse against densified (`inputs='features'`, library defaults)", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "| graph | features | estimator | load (s) | fit (s) | peak resident memory (GiB) | quotient sum | "
             "probe, 64 eigenfunctions: valid / test (%) |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['graph']} | {r['features']} | {r['estimator']} | {r['load_s']} | {r['fit_s']} | "
                     f"{r['peak_rss_gib']} | {r['quotient_sum']} | {100 * r['probe_valid']:.1f} / {100 * r['probe_test']:.1f} |")
    (out / "sparse_features.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
