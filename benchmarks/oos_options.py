"""Out-of-sample embedding on the GPU at ogbn-products' shape: how the rows are fed through the model.

    PYTHONPATH=. python benchmarks/oos_options.py --out DIR

Model: the speed suite's MLP 100-512-512, k = 64 (benchmarks/speed.py), freshly initialized (the rate does not
depend on the weights), eval mode, bfloat16 autocast; features ``[2,449,029, 100]`` random (synthetic) on the
GPU. Options: ``embed_nodes`` (2^20-row chunks, float32 features: the speed suite's figure until now), and
:func:`graph_eigenmap.inference.embed_on_device` with bfloat16 features, pieces of 8,192-65,536 rows, with and
without CUDA graphs, the model eager or compiled. Each figure: the median of 5 calls after one warm-up call
(which captures the graphs). Floor: FLOPs over the measured bf16 matrix-multiply rate or bytes (bf16 inputs
read, bf16 outputs written) over the measured copy bandwidth. Writes DIR/oos_options.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.speed import DEPTH, WIDTH, ceilings, median_time, mlp_weights  # noqa: E402
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE  # noqa: E402
from graph_eigenmap.inference import embed_nodes, embed_on_device  # noqa: E402
from graph_eigenmap.models import MLPBackbone, NeuralEigenfunctions  # noqa: E402

K = 64
TARGET = 400e6


def options(model, compiled_model, features32, features16):
    yield "embed_nodes, float32 features, 2^20-row chunks, eager", lambda: embed_nodes(
        model, features32, chunk_size=1 << 20, with_backbone=False, to_host=False, bf16=True)
    yield "embed_nodes, float32 features, 2^20-row chunks, compiled", lambda: embed_nodes(
        compiled_model, features32, chunk_size=1 << 20, with_backbone=False, to_host=False, bf16=True)
    for name, network in (("eager", model), ("compiled", compiled_model)):
        yield f"embed_on_device, 16384-row pieces, no CUDA graph, {name}", lambda network=network: embed_on_device(
            network, features16, chunk_size=16384, cuda_graph=False)
        for chunk in (8192, 16384, 32768, 65536):
            pieces = max(1, (1 << 19) // chunk)
            yield (f"embed_on_device, {chunk}-row pieces, CUDA graph of {pieces}, {name}",
                   lambda network=network, chunk=chunk, pieces=pieces: embed_on_device(
                       network, features16, chunk_size=chunk, pieces=pieces))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, d = PRODUCTS_SHAPE["num_nodes"], PRODUCTS_SHAPE["num_features"]
    peak = ceilings()
    floor_s = max(2 * n * mlp_weights(d, WIDTH, DEPTH, K) / peak["flops"], n * (d * 2 + K * 2) / peak["bytes"])
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True, num_nodes=n, num_features=d,
                  model=f"MLP {d}-{WIDTH}-{WIDTH}, k = {K}, bf16 autocast", target_nodes_per_s=TARGET,
                  floor_nodes_per_s=round(n / floor_s), rows=[])
    torch.manual_seed(0)
    model = NeuralEigenfunctions(MLPBackbone(d, WIDTH, DEPTH), K).cuda().eval()
    compiled_model = NeuralEigenfunctions(MLPBackbone(d, WIDTH, DEPTH), K).cuda().eval()
    compiled_model.load_state_dict(model.state_dict())
    compiled_model.compile_network()
    features32 = torch.randn(n, d, device="cuda")
    features16 = features32.to(torch.bfloat16)
    reference = embed_nodes(model, features32, chunk_size=1 << 20, with_backbone=False, to_host=False, bf16=True)[0]
    for name, run in options(model, compiled_model, features32, features16):
        try:
            result = run()  # warm-up: compiles, captures
            result = result[0] if isinstance(result, tuple) else result
            error = float((result.float() - reference.float()).abs().max() / reference.float().abs().max())
            seconds = median_time(run, 5)
            row = dict(option=name, seconds=round(seconds, 5), nodes_per_s=round(n / seconds),
                       max_error_vs_first=round(error, 4))
        except Exception as exc:  # an option that fails is recorded, not fatal
            row = dict(option=name, error=f"{type(exc).__name__}: {exc}"[:300])
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
        (out / "oos_options.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Out-of-sample embedding at ogbn-products' shape (synthetic features) on one GPU", "",
             f"{report['device']}, {report['date']}, `{report['command']}`. {report['model']}; "
             f"floor {report['floor_nodes_per_s'] / 1e6:.0f} M nodes/s; target {TARGET / 1e6:.0f} M nodes/s.", "",
             "| option | seconds (all nodes) | M nodes/s | max error vs the first (relative) |", "|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['option']} | {row.get('seconds', row.get('error'))} | "
                     f"{row['nodes_per_s'] / 1e6:.0f} | {row['max_error_vs_first']} |" if "seconds" in row
                     else f"| {row['option']} | failed: {row['error']} | | |")
    (out / "oos_options.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
