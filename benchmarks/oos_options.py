"""Out-of-sample embedding on the GPU at ogbn-products' shape: how the rows are fed through the model.

    PYTHONPATH=. python benchmarks/oos_options.py --out DIR

Model: the speed suite's MLP 100-512-512, k = 64 (benchmarks/speed.py), freshly initialized (the rate does not
depend on the weights), eval mode, bfloat16 autocast; features ``[2,449,029, 100]`` random (synthetic) on the
GPU. Options: ``embed_nodes`` (2^20-row chunks, float32 features: the library's path and the speed suite's
figure), and :func:`embed_on_device` below with bfloat16 features, pieces of 8,192-65,536 rows, with and without
CUDA graphs, the model eager or compiled. ``embed_on_device`` was measured as a candidate for the library and left
here: every setting of it was slower than 2^20-row chunks (``benchmarks/results/oos_options.md``). Each figure: the median of 5 calls after one warm-up call
(which captures the graphs). Floor: FLOPs over the measured bf16 matrix-multiply rate or bytes (bf16 inputs
read, bf16 outputs written) over the measured copy bandwidth. Writes DIR/oos_options.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import weakref
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.speed import DEPTH, WIDTH, ceilings, median_time, mlp_weights  # noqa: E402
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE  # noqa: E402
from graph_eigenmap.inference import embed_nodes  # noqa: E402
from graph_eigenmap.models import MLPBackbone, NeuralEigenfunctions  # noqa: E402

K = 64
TARGET = 400e6

GRAPH_CHUNK_ROWS = 16384
"""Rows per piece of :func:`embed_on_device`: each layer's ``[rows, width]`` activations (16 MiB in bfloat16 at width
512) would stay in the GPU's L2 cache between the matrix product and the normalization that reads them. Measured:
pieces this small are bound by the kernels' fixed cost (about 175 µs a piece through a CUDA graph), not by memory."""
GRAPH_PIECES = 32
"""Pieces one captured CUDA graph runs (:func:`embed_on_device`); the rows that do not fill a replay run eagerly."""


@torch.no_grad()
def embed_on_device(model: NeuralEigenfunctions, features: torch.Tensor, *, chunk_size: int = GRAPH_CHUNK_ROWS,
                    pieces: int = GRAPH_PIECES, dtype: torch.dtype = torch.bfloat16, cuda_graph: bool = True,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Every row's k outputs, from dense ``[n, d]`` features on the model's CUDA device into ``[n, k]`` ``dtype`` there.

    Throughput-oriented out-of-sample embedding under bfloat16 autocast (about 1e-2 relative error). Rows go
    through in pieces of ``chunk_size``, small enough that activations stay in L2 cache; pieces that small are
    bound by kernel launches, so ``pieces`` of them are captured once as one CUDA graph (kept on the model for
    later calls with the same shapes) and replayed over a static input buffer. The last ``n mod (chunk_size ·
    pieces)`` rows run eagerly. ``cuda_graph=False`` runs every piece eagerly (a CPU model always does).

    Args:
        model: a trained :class:`NeuralEigenfunctions` (put in eval mode); its weights may change in place
            between calls (a captured graph reads them where they are), not be replaced.
        features: ``[n, d]`` dense inputs on the model's device (any float dtype; autocast casts them).
        out: an ``[n, k]`` tensor to write into (default: a new one of ``dtype``).

    Returns:
        ``[n, k]`` outputs on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    n = features.shape[0]
    out = torch.empty(n, model.k, dtype=dtype, device=device) if out is None else out
    span = chunk_size * pieces
    captured = device.type == "cuda" and cuda_graph and n >= span
    replayed = n // span * span if captured else 0
    if captured:
        graph, static_in, static_out = _captured_pieces(model, features.shape[1], features.dtype, chunk_size, pieces)
        for begin in range(0, replayed, span):
            static_in.copy_(features[begin:begin + span])
            graph.replay()
            out[begin:begin + span].copy_(static_out)
    for begin in range(replayed, n, chunk_size):
        out[begin:begin + chunk_size] = _forward_piece(model, features[begin:begin + chunk_size])
    return out


def _forward_piece(model: NeuralEigenfunctions, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        return model(x)


_EMBEDDING_GRAPHS: "weakref.WeakKeyDictionary[NeuralEigenfunctions, dict]" = weakref.WeakKeyDictionary()


def _captured_pieces(model: NeuralEigenfunctions, d: int, dtype: torch.dtype, chunk_size: int, pieces: int):
    """``(CUDA graph, [span, d] input buffer, [span, k] output buffer)`` running ``pieces`` pieces; cached per model."""
    cache = _EMBEDDING_GRAPHS.setdefault(model, {})
    key = (d, dtype, chunk_size, pieces)
    if key not in cache:
        device = next(model.parameters()).device
        static_in = torch.zeros(chunk_size * pieces, d, dtype=dtype, device=device)
        static_out = torch.empty(chunk_size * pieces, model.k, dtype=torch.bfloat16, device=device)

        def run():
            for begin in range(0, static_in.shape[0], chunk_size):
                static_out[begin:begin + chunk_size] = _forward_piece(model, static_in[begin:begin + chunk_size])

        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up outside the capture (autocast caches, compiled code)
            run()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        cache[key] = (graph, static_in, static_out)
    return cache[key]



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
