"""How much of the exact top-k spectrum NeuralEF captures on the real graphs of ../shared/data.

For each graph (OGB layout, 100-d features) and k: the exact top-k eigenvalues of D^-1/2 A D^-1/2
(per component, graph_eigenmap.baselines.top_eigenpairs), then NeuralEF with identity features
and with the MLP on features, each scored by the captured spectrum tr(QᵀĀQ) / Σλ (Q: QR of the
embedding), the Rayleigh quotients of its columns (they should not increase), and wall time. The MLP reads
the library's default inputs (``--inputs auto``: ``propagated:3`` on these graphs, recorded as ``inputs``) and
the node's own features (``--inputs features``: how much of the spectrum the features alone explain).

    python benchmarks/captured_spectrum.py                       # all five graphs, k = 16 and 64, CPU
    python benchmarks/captured_spectrum.py --datasets coauthor_cs --ks 16

Writes benchmarks/results/captured_spectrum_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

from graph_eigenmap import load_graph, neural_eigenmap, normalized_adjacency
from graph_eigenmap.baselines import top_eigenpairs
from graph_eigenmap.fit_outputs import order_violations
from graph_eigenmap.metrics import captured_spectrum

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs")


def run(graph, name: str, k: int, features: str, device: str, steps: int | None, estimator: str = "full",
        inputs: str | None = None) -> dict:
    kernel = normalized_adjacency(graph)
    exact, _ = top_eigenpairs(kernel, k)
    options = dict(features=features, device=device, progress=False, estimator=estimator)
    if inputs is not None:
        options["inputs"] = inputs
    if steps:
        options["steps"] = steps
    started = time.perf_counter()
    result = neural_eigenmap(graph, k=k, **options)
    seconds = time.perf_counter() - started
    quotients = result.rayleigh_quotients
    return dict(
        dataset=name, k=k, features=features, inputs=result.config.inputs if features == "input" else "-",
        estimator=result.config.estimator, steps=result.config.steps,
        captured_spectrum=round(captured_spectrum(result.embedding, kernel, exact), 4),
        order_violations=len(order_violations(quotients)),  # rises above api.ORDER_TOLERANCE (0.01)
        rayleigh_first=[round(float(v), 4) for v in quotients[:4]], rayleigh_last=round(float(quotients[-1]), 4),
        exact_first=[round(float(v), 4) for v in exact[:4]], exact_last=round(float(exact[-1]), 4),
        wall_time_s=round(seconds, 1),
    )


def to_markdown(rows: list[dict], header: dict) -> str:
    lines = [f"# Captured spectrum on the real graphs ({header['device']}, {header['date']})", "",
             f"Command: `{header['command']}`", "",
             "Captured spectrum = tr(QᵀĀQ) / (sum of the exact top-k eigenvalues); 1.0 = the top-k eigenspace. "
             "Order violations = columns whose Rayleigh quotient exceeds the previous one's by > 0.01.", "",
             "| graph | k | features | inputs | estimator | steps | captured | order violations | RQ first 4 | exact first 4 | RQ k-th | exact k-th | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['k']} | {r['features']} | {r.get('inputs', '')} | {r['estimator']} | {r['steps']} | {r['captured_spectrum']:.4f} | "
                     f"{r['order_violations']} | {r['rayleigh_first']} | {r['exact_first']} | {r['rayleigh_last']} | "
                     f"{r['exact_last']} | {r['wall_time_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--ks", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--features", nargs="+", default=["identity", "input"])
    parser.add_argument("--inputs", nargs="+", default=["auto", "features"], help="what the MLP reads (features input)")
    parser.add_argument("--steps", type=int, default=None, help="default: the library's default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--estimator", default="full", help="full (the committed results), rows, sampled, auto")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"
    header = dict(device=device_name, date=datetime.date.today().isoformat(),
                  command="python " + " ".join([Path(sys.argv[0]).relative_to(ROOT).as_posix() if Path(sys.argv[0]).is_absolute() else sys.argv[0]] + sys.argv[1:]))
    rows = []
    for name in args.datasets:
        graph = load_graph(Path(args.data) / "ogb" / f"ogbn_{name}")
        for k in args.ks:
            for features in args.features:
                for inputs in (args.inputs if features == "input" else [None]):
                    row = run(graph, name, k, features, args.device, args.steps, args.estimator, inputs)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "gpu" if args.device.startswith("cuda") else "cpu"
    (out / f"captured_spectrum_{tag}.json").write_text(json.dumps(dict(header, results=rows), indent=1) + "\n")
    (out / f"captured_spectrum_{tag}.md").write_text(to_markdown(rows, header))


if __name__ == "__main__":
    main()
