"""Speed suite: training and inference speed at ogbn-products' shape (synthetic CSBM), one GPU, one command.

    python -m benchmarks.speed --out DIR                 # the full form (one GPU; the committed results)
    python -m benchmarks.speed --out DIR --small         # the small form: 3,000 nodes, CPU, seconds (CI runs it)

Graph: csbm-products (2,449,029 nodes, 61,859,140 undirected edges, 100 features, 47 classes; synthetic).
Model: MLP of width 512 and depth 2 on the library's default inputs (``inputs='auto'``: ``propagated:3`` here, so
the MLP reads 400 columns; the report names them), k = 64 and 256, bf16 autocast on a GPU, one-sided gradient (the
default for MLPs). Each figure comes with its floor, the larger of FLOPs over the measured matrix-multiply rate and
bytes over the measured copy bandwidth, and the ratio to it:

* sampled estimator at 65,536 seeds per step: seconds per epoch (n seeds), steps per second; eager and with
  ``compile=True``; a sweep of batch sizes and the two-sided gradient for contrast;
* full graph: ms per step, eager and compiled; rows and block estimators, eager;
* time to plateau (objective within 1 % of its final value) for each estimator and mode, k = 64;
* peak GPU memory (``torch.cuda.max_memory_allocated``) of each;
* out-of-sample embedding of all n nodes **from the model's inputs** (eager and compiled, bf16, on the device;
  float32 copied to the host); new nodes **with the building of their inputs from their edges** to known nodes
  (:class:`graph_eigenmap.inputs.KnownInputs`, what ``embed_with_saved_model`` does), as a rate over a batch and
  for 1,000 nodes, against GCN inference (all n nodes; 1,000 new nodes with their 3-hop neighbourhoods);
* exact top-64 eigenpairs on the device (Chebyshev-filtered subspace iteration);
* the reference's configuration: block estimator, batch 16384, residual MLP width 2048 (11 linear layers),
  two-sided gradient: seconds per reference epoch ((n / 16384)² steps);
* where a sampled step's time goes (``profile`` in the JSON, eager and compiled): a run like the sampled one above
  (k = 64), each phase the training loop names (:data:`graph_eigenmap.train.STEP_PHASES`: draw, gather, forward,
  estimate, objective, backward, optimizer, bookkeeping) timed by CUDA events at its end, its host time, its share of
  the step and its own floor (:mod:`benchmarks.step_profile`); ``--profile-only`` runs this part alone.

Step times come from the training loop's own history (device-synchronized every 10 steps), after the first logged
interval, which holds warm-up and compilation. Writes DIR/speed_products_shape.json and .md (``--small``:
DIR/speed_small.json and .md); the flat keys without ``_eager`` are the compiled figures where compiling was run.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import step_profile
from benchmarks.common import (
    ROOT,
    Report,
    ceilings,
    figure_rows,
    floor_seconds,
    markdown_header,
    mlp_multiply_adds,
    plateau_entry,
    provenance,
    spmm_bytes,
    step_seconds,
    timed,
    write_result,
)

WIDTH, DEPTH, FANOUT = 512, 2, 8
LOG_EVERY = 10
"""Steps between the training history's entries (each a device sync); step times leave the first interval out."""
REFERENCE = dict(estimator="block", batch_size=16384, width=2048, depth=10, residual=True, one_sided_gradient=False)
"""The reference implementation's configuration (two-sided gradient, residual MLP of 11 linear layers)."""
EIGSH = ROOT / "benchmarks" / "results" / "scale" / "eigsh_scaling.json"
"""scipy eigsh on a 2-core CPU (``python -m benchmarks.scale --parts eigsh``), merged into the report."""


@dataclass(frozen=True)
class Settings:
    """The sizes one form of the suite runs at."""

    nodes: int = 2_449_029
    edges: int = 61_859_140
    features: int = 100
    width: int = WIDTH
    depth: int = DEPTH
    batch: int = 65536
    batches: tuple = (4096, 16384, 131072)
    ks: tuple = (64, 256)
    compile: tuple = (False, True)
    sampled_steps: int = 600
    full_steps: int = 300
    reference_steps: int = 60
    reference: dict = field(default_factory=lambda: dict(REFERENCE))
    new_nodes: int = 100_000
    few_new_nodes: int = 1000
    chunk: int = 1 << 20
    matmul_size: int = 8192
    copy_elements: int = 2**28


SMALL = Settings(nodes=1000, edges=5000, features=16, width=64, batch=128, batches=(64, 256), ks=(4, 8),
                 compile=(False,), sampled_steps=20, full_steps=20, reference_steps=20,
                 reference=dict(REFERENCE, batch_size=128, width=64, depth=3), new_nodes=200, few_new_nodes=50,
                 chunk=256, matmul_size=256, copy_elements=2**20)
"""The small form: CPU, seconds; the same steps on a graph of 1,000 nodes and 16 features, an MLP of width 64."""


def peak_gib(device) -> float | None:
    import torch  # deferred: --help answers without torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def fit(graph, device, settings: Settings, mark=None, **options):
    """Train with the suite's model (MLP 512 x 2, fanout 8, its batch) overridden by ``options``; also the peak GiB.
    ``mark``: the training loop's phase callback (a :class:`~benchmarks.step_profile.PhaseClock`)."""
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.train import train

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base = dict(width=settings.width, depth=settings.depth, fanout=FANOUT, batch_size=settings.batch,
                checkpoint_every=0)
    result = train(graph, TrainConfig(**(base | options)), device=device, progress=False, log_every=LOG_EVERY,
                   mark=mark)
    result.kernel = None  # the full-graph kernel (1.5 GiB at products' size) would otherwise count in the next peak
    return result, peak_gib(device)


class Suite:
    """One run of the suite: the graph, the device, the ceilings and the report."""

    def __init__(self, graph, device, settings: Settings, report: Report, out: Path, stem: str):
        self.graph, self.device, self.settings, self.report, self.out, self.stem = \
            graph, device, settings, report, out, stem
        self.peak = ceilings(device, settings.matmul_size, settings.copy_elements)
        report.update(matmul_tflops=round(self.peak["flops"] / 1e12, 3), copy_tb_per_s=round(self.peak["bytes"] / 1e12, 3))
        self.models = {}
        self.sampled_step = {}  # (k, compiled): seconds a step of the training part's sampled runs

    def floor(self, flops: float, moved: float) -> float:
        return floor_seconds(self.peak, flops, moved)

    def save(self) -> None:
        write_result(self.out, self.stem, self.report)

    def put_peak(self, key: str, value: float | None) -> None:
        if value is not None:
            self.report.put(key, value, digits=2)

    def describe_inputs(self, result) -> None:
        """The model's input width and what it is, from the first fit's resolved configuration."""
        d_in = result.model.backbone.in_features
        storage = result.config.feature_storage
        self.d_in, self.feature_bytes = d_in, 2 if storage in ("bfloat16", "float16") else 4
        self.report.setdefault("inputs", str(result.config.inputs))
        self.report.setdefault("input_columns", d_in)
        width = self.settings.width
        self.report.setdefault("model", f"MLP {d_in}-{width}-{width} (depth {self.settings.depth}) on inputs="
                                        f"{result.config.inputs} "
                                        f"({self.graph.num_features} features), one-sided gradient")

    def training(self) -> None:
        """Sampled and full-graph estimators at each k, eager and compiled."""
        s, n, nnz = self.settings, self.graph.num_nodes, self.graph.adjacency.nnz
        for k in s.ks:
            for compiled in s.compile:
                suffix = f"k{k}" + ("" if compiled else "_eager")
                sampled, sampled_peak = fit(self.graph, self.device, s, k=k, estimator="sampled", steps=s.sampled_steps,
                                            compile=compiled)
                self.describe_inputs(sampled)
                w = mlp_multiply_adds(self.d_in, s.width, s.depth, k)
                # an epoch: n seeds forward and backward, n f neighbours forward only; inputs gathered for all
                epoch_floor = self.floor(2 * w * n * (3 + FANOUT), n * (1 + FANOUT) * self.d_in * self.feature_bytes)
                full_floor = self.floor(6 * w * n, n * self.d_in * 4 + spmm_bytes(nnz, n, k))
                step = self.sampled_step[k, compiled] = step_seconds(sampled.history)
                self.report.put(f"epoch_s_sampled_{suffix}", step * n / s.batch, epoch_floor)
                self.report.put(f"steps_per_s_sampled_{suffix}", 1 / step, digits=1)
                self.put_peak(f"peak_gpu_gib_sampled_{suffix}", sampled_peak)
                full, full_peak = fit(self.graph, self.device, s, k=k, estimator="full", steps=s.full_steps,
                                      compile=compiled)
                self.report.put(f"full_graph_step_ms_{suffix}", 1000 * step_seconds(full.history), 1000 * full_floor,
                                digits=1)
                self.put_peak(f"peak_gpu_gib_full_{suffix}", full_peak)
                if k == s.ks[0]:
                    self.report.put(f"time_to_plateau_s_sampled_{suffix}", plateau_entry(sampled.history)[1], digits=1)
                    self.report.put(f"time_to_plateau_s_full_{suffix}", plateau_entry(full.history)[1], digits=1)
                    self.models[compiled] = sampled
                self.save()

    def profile(self) -> None:
        """Where a sampled step's time goes (k = ``ks[0]``), eager and compiled: :mod:`benchmarks.step_profile`."""
        from graph_eigenmap.train import STEP_PHASES

        s, k, cuda = self.settings, self.settings.ks[0], self.device.type == "cuda"
        compiled_too = True in s.compile
        profile = dict(
            estimator="sampled", k=k, batch_size=s.batch, fanout=FANOUT, steps=s.sampled_steps, cuda=cuda,
            window=f"steps {LOG_EVERY + 1}-{s.sampled_steps} (the first {LOG_EVERY} hold warm-up and compilation, "
                   "left out of the step times above too)",
            modes_note="eager and compiled (`compile=True`: backbone and head through torch.compile, the rest of "
                       "the step eager)." if compiled_too else "eager only (compiling was not run in this form).",
            clock=("Device time: between timing CUDA events recorded on the stream at each phase's end, nothing "
                   "synchronized, so the phases add up to the step; host time: `perf_counter` at the same marks. "
                   if cuda else "CPU: `perf_counter` at each phase's end (the operations are synchronous): device "
                                "and host time are the same. ")
                  + "Floors: each phase alone at the measured ceilings (`benchmarks/step_profile.py` counts its "
                    "bytes and FLOPs).")
        for compiled in s.compile:
            clock = step_profile.PhaseClock(self.device, capacity=s.sampled_steps * len(STEP_PHASES))
            result, _ = fit(self.graph, self.device, s, mark=clock, k=k, estimator="sampled", steps=s.sampled_steps,
                            compile=compiled)
            self.describe_inputs(result)
            if (k, compiled) not in self.sampled_step:  # --profile-only: an unprofiled run to compare with
                self.sampled_step[k, compiled] = step_seconds(fit(self.graph, self.device, s, k=k, estimator="sampled",
                                                                  steps=s.sampled_steps, compile=compiled)[0].history)
            d_in, storage = result.model.backbone.in_features, result.config.feature_storage
            floors = step_profile.phase_floors(
                self.peak, batch=s.batch, fanout=FANOUT, d_in=d_in, k=k, width=s.width, depth=s.depth,
                feature_bytes=2 if storage in ("bfloat16", "float16") else 4,
                parameters=sum(p.numel() for p in result.model.parameters()))
            run = step_profile.summarize(clock, STEP_PHASES, LOG_EVERY, floors)
            step, plain = step_seconds(result.history), self.sampled_step[k, compiled]
            run.update(step_ms=round(1000 * step, 4), unprofiled_step_ms=round(1000 * plain, 4),
                       overhead=round(step / plain - 1, 4), feature_storage=storage, input_columns=d_in)
            profile["compiled" if compiled else "eager"] = run
            self.report["profile"] = profile
            self.save()

    def other_estimators(self) -> None:
        """Rows and block estimators (eager, first k), a sweep of batch sizes and the two-sided gradient."""
        s, n, nnz, k = self.settings, self.graph.num_nodes, self.graph.adjacency.nnz, self.settings.ks[0]
        w = mlp_multiply_adds(self.d_in, s.width, s.depth, k)
        rows, rows_peak = fit(self.graph, self.device, s, k=k, estimator="rows", steps=s.full_steps)
        rows_floor = self.floor(2 * w * (n + 3 * s.batch), (n + s.batch) * self.d_in * 4 + spmm_bytes(nnz, n, k))
        self.report.put(f"rows_step_ms_k{k}_eager", 1000 * step_seconds(rows.history), 1000 * rows_floor, digits=1)
        self.report.put(f"time_to_plateau_s_rows_k{k}_eager", plateau_entry(rows.history)[1], digits=1)
        self.put_peak(f"peak_gpu_gib_rows_k{k}_eager", rows_peak)
        block, block_peak = fit(self.graph, self.device, s, k=k, estimator="block", steps=s.sampled_steps)
        block_floor = self.floor(2 * w * 4 * s.batch, 2 * s.batch * self.d_in * 4)
        self.report.put(f"block_step_ms_k{k}_eager", 1000 * step_seconds(block.history), 1000 * block_floor, digits=2)
        self.report.put(f"time_to_plateau_s_block_k{k}_eager", plateau_entry(block.history)[1], digits=1)
        self.put_peak(f"peak_gpu_gib_block_k{k}_eager", block_peak)
        steps = max(20, s.sampled_steps // 2)
        for batch in s.batches:
            result, batch_peak = fit(self.graph, self.device, s, k=k, batch_size=batch, estimator="sampled", steps=steps)
            self.report.put(f"epoch_s_sampled_k{k}_eager_batch{batch}", step_seconds(result.history) * n / batch)
            self.put_peak(f"peak_gpu_gib_sampled_k{k}_eager_batch{batch}", batch_peak)
        result, two_sided_peak = fit(self.graph, self.device, s, k=k, estimator="sampled", steps=steps,
                                     one_sided_gradient=False)
        self.report.put(f"epoch_s_sampled_k{k}_eager_two_sided", step_seconds(result.history) * n / s.batch)
        self.put_peak(f"peak_gpu_gib_sampled_k{k}_eager_two_sided", two_sided_peak)
        self.report["time_to_plateau_s"] = min(value for key, value in self.report.items()
                                               if key.startswith("time_to_plateau_s_") and not key.endswith("floor"))
        self.save()

    def eigensolver(self) -> None:
        """Exact top-k eigenpairs on the device by Chebyshev-filtered subspace iteration."""
        from graph_eigenmap import normalized_adjacency, to_torch_csr
        from graph_eigenmap.baselines import chebyshev_eigenpairs

        k, n, nnz = self.settings.ks[0], self.graph.num_nodes, self.graph.adjacency.nnz
        kernel = to_torch_csr(normalized_adjacency(self.graph), device=self.device)
        (_, _, info), seconds = timed(lambda: chebyshev_eigenpairs(kernel, k), self.device)
        block = k + max(32, k // 2)  # the solver's block of columns
        products = info["iterations"] * (16 + 1)  # degree-16 filter and one Rayleigh-Ritz product per round
        self.report.put(f"eigensolver_k{k}_s", seconds, self.floor(0, products * spmm_bytes(nnz, n, block)), digits=2)
        self.report[f"eigensolver_k{k}_iterations"] = info["iterations"]
        self.save()

    def reference_configuration(self) -> None:
        """The reference's block estimator, batch 16384, residual MLP 2048 x 10, two-sided gradient."""
        s, n, k = self.settings, self.graph.num_nodes, self.settings.ks[0]
        reference, reference_peak = fit(self.graph, self.device, s, k=k, steps=s.reference_steps, **s.reference)
        step = step_seconds(reference.history)
        batch = s.reference["batch_size"]
        steps_per_epoch = (n / batch) ** 2
        w = mlp_multiply_adds(self.d_in, s.reference["width"], s.reference["depth"], k)
        step_floor = self.floor(6 * w * 2 * batch, 2 * batch * self.d_in * 4)
        self.report.put("reference_step_ms", 1000 * step, 1000 * step_floor, digits=2)
        self.report.put("reference_epoch_s", step * steps_per_epoch, step_floor * steps_per_epoch, digits=1)
        self.put_peak("reference_peak_gpu_gib", reference_peak)
        self.save()


def out_of_sample(suite: Suite) -> None:
    """All n nodes from the model's inputs; new nodes with their inputs built from their edges; GCN for contrast."""
    import numpy as np
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.evaluation.cost import median_seconds
    from graph_eigenmap.inference import embed_nodes
    from graph_eigenmap.inputs import model_input_graph

    graph, device, s, report = suite.graph, suite.device, suite.settings, suite.report
    config = suite.models[False].config
    inputs = model_input_graph(graph, config.inputs, device).features  # [n, d_in]: what the model was trained on
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(device)
    n, d_in, k = x.shape[0], x.shape[1], s.ks[0]
    report["oos_input_columns"] = d_in
    oos_floor = n / suite.floor(2 * n * mlp_multiply_adds(d_in, s.width, s.depth, k), n * (d_in * 4 + k * 2))
    for compiled, result in suite.models.items():
        seconds = median_seconds(lambda: embed_nodes(result.model, x, chunk_size=s.chunk, with_backbone=False,
                                                     to_host=False, bf16=True), 5, device=device)
        report.put("oos_nodes_per_s" + ("" if compiled else "_eager"), n / seconds, oos_floor, digits=0, rate=True)
    model = suite.models[False].model
    host = median_seconds(lambda: embed_nodes(model, x, chunk_size=s.chunk, with_backbone=False), 3, device=device)
    report.put("oos_nodes_per_s_fp32_to_host", n / host, digits=0)
    new_nodes(suite, model, config, inputs, x)
    gcn_inference(suite)
    suite.save()


def known_inputs(graph, config):
    """What a new node's model inputs are made from, as a fit's model folder keeps it."""
    from graph_eigenmap.inputs import KnownInputs, gcn_degrees, input_projection, model_input_graph
    from graph_eigenmap.registry import parse_inputs

    spec = parse_inputs(config.inputs)
    projection = input_projection(graph, spec.rank)[1] if spec.rank else None
    if not spec.hops:
        return KnownInputs(None, None, 0, projection)
    return KnownInputs(model_input_graph(graph, spec).features, gcn_degrees(graph.adjacency), spec.hops, projection)


def new_node_inputs(graph, known, ids):
    """``[m, d_in]`` model inputs of nodes ``ids`` given as new nodes: their features and their edges to known nodes."""
    import numpy as np

    rows = graph.adjacency[ids].tocoo()
    return known.new_node_inputs(graph.features[ids], np.vstack([rows.row, rows.col]).astype(np.int64))


def new_nodes(suite: Suite, model, config, inputs, x) -> None:
    """New nodes' rate including the building of their inputs from their edges, and ``few_new_nodes`` of them
    (1,000) from their inputs alone and with the building."""
    import numpy as np
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.evaluation.cost import median_seconds
    from graph_eigenmap.inference import embed_nodes

    graph, device, s, report = suite.graph, suite.device, suite.settings, suite.report
    known = known_inputs(graph, config)
    rng = np.random.default_rng(0)
    batch = np.sort(rng.choice(graph.num_nodes, min(s.new_nodes, graph.num_nodes), replace=False))
    built = new_node_inputs(graph, known, batch)  # nodes of the graph given with their own edges: their own rows
    report["oos_new_node_inputs_max_abs_error"] = float(np.abs(built - inputs[batch]).max())

    def embed_new(ids):
        rows = torch.from_numpy(new_node_inputs(graph, known, ids)).to(device)
        return embed_nodes(model, rows, chunk_size=s.chunk, with_backbone=False, to_host=False, bf16=True)

    building = median_seconds(lambda: new_node_inputs(graph, known, batch), 3)
    both = median_seconds(lambda: embed_new(batch), 3, device=device)
    report["oos_new_nodes_batch"] = len(batch)
    report.put("oos_new_node_inputs_s", building, digits=4)
    report.put("oos_new_nodes_per_s_with_inputs", len(batch) / both, digits=0)
    few = np.sort(rng.choice(graph.num_nodes, min(s.few_new_nodes, graph.num_nodes), replace=False))
    report.put(f"oos_{len(few)}_new_nodes_s", median_seconds(lambda: embed_nodes(
        model, x[torch.from_numpy(few).to(device)], with_backbone=False, to_host=False, bf16=True), 5,
        device=device), digits=5)
    report.put(f"oos_{len(few)}_new_nodes_with_inputs_s", median_seconds(lambda: embed_new(few), 5, device=device),
               digits=5)


def gcn_inference(suite: Suite) -> None:
    """GCN (3 layers of 256) on all n nodes, and on ``few_new_nodes`` new nodes with the gathering of their 3-hop neighbourhoods."""
    import numpy as np
    import torch  # deferred: --help answers without torch

    from graph_eigenmap import normalized_adjacency, to_torch_csr
    from graph_eigenmap.baselines.supervised import GCN
    from graph_eigenmap.evaluation.cost import gcn_on_nodes, median_seconds

    graph, device, report = suite.graph, suite.device, suite.report
    n, d, classes = graph.num_nodes, graph.num_features, int(graph.labels.max()) + 1
    features = torch.from_numpy(graph.features).to(device)
    adjacency = to_torch_csr(normalized_adjacency(graph, self_loops=True), device=device)
    gcn = GCN(d, 256, classes).to(device).eval()
    gcn_weights = d * 256 + 256 * 256 + 256 * classes
    nnz = adjacency.values().numel()
    gcn_floor = suite.floor(2 * n * gcn_weights, sum(spmm_bytes(nnz, n, c) for c in (256, 256, classes)))
    with torch.no_grad():
        seconds = median_seconds(lambda kernel=adjacency: gcn(features, kernel).argmax(1), 3, device=device)
        report.put("gcn_inference_all_nodes_s", seconds, gcn_floor)
        del adjacency
        coo = graph.adjacency.tocoo()
        edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)).to(device)
        degree = torch.bincount(edge_index[0], minlength=n).float() + 1
        new = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:suite.settings.few_new_nodes].to(device)
        report.put(f"gcn_inference_{len(new)}_new_nodes_s", median_seconds(
            lambda: gcn_on_nodes(gcn, edge_index, n, features, new, 3, degree).argmax(1), 3, device=device))


def merge_cpu_eigsh(report: dict, path: Path = EIGSH) -> None:
    """scipy eigsh on a 2-core CPU (the scale suite's ``eigsh`` part): the largest graph run and the extrapolation."""
    import json

    if not path.exists():
        return
    scaling = json.loads(path.read_text())
    largest = max(scaling["runs"], key=lambda run: run["num_nodes"])
    report.update(eigsh_cpu_source=f"{path.relative_to(ROOT)} ({scaling['command']}, {scaling['device']})",
                  eigsh_cpu_k64_largest_nodes=largest["num_nodes"], eigsh_cpu_k64_largest_s=largest["seconds"],
                  eigsh_cpu_k64_fit=scaling["fit"], eigsh_cpu_k64_extrapolated_s=scaling["extrapolated_products_shape_s"])


def to_markdown(report: dict) -> str:
    graph = report["graph"]
    title = (f"Speed on a CSBM graph of {graph['num_nodes']:,} nodes and {graph['num_edges']:,} edges (synthetic), "
             f"{report['form']} form")
    lines = markdown_header(title, report) + [
        f"Model: {report.get('model', '')}; batch {report['batch_size']} seeds, fanout {report['fanout']}.", ""]
    lines += figure_rows(report, skip=("batch_size", "fanout", "input_columns"))
    if "eigsh_cpu_source" in report:
        lines += ["", f"eigsh_cpu_* figures: scipy eigsh on a CPU machine, from {report['eigsh_cpu_source']}; "
                      f"{report['eigsh_cpu_k64_fit']}, extrapolated to 2,449,029 nodes."]
    if "profile" in report:
        lines += [""] + step_profile.profile_markdown(report["profile"])
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--small", action="store_true", help="the small form: 3,000 nodes, CPU unless --device")
    parser.add_argument("--device", default=None, help="default: cuda (full form), cpu (small form)")
    parser.add_argument("--nodes", type=int, default=None, help="another graph size (a quick check on a GPU)")
    parser.add_argument("--edges", type=int, default=None)
    parser.add_argument("--sampled-steps", type=int, default=None)
    parser.add_argument("--full-steps", type=int, default=None)
    parser.add_argument("--reference-steps", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--profile-only", action="store_true",
                        help="only where a sampled step's time goes (into DIR/<stem>_profile.json and .md)")
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> Settings:
    settings = SMALL if args.small else Settings()
    changes = {name: value for name, value in dict(nodes=args.nodes, edges=args.edges, sampled_steps=args.sampled_steps,
                                                   full_steps=args.full_steps,
                                                   reference_steps=args.reference_steps).items() if value is not None}
    if args.no_compile:
        changes["compile"] = (False,)
    return dataclasses.replace(settings, **changes)


def main(argv: list[str] | None = None) -> dict:
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.data import csbm
    from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE

    args = parse(argv)
    settings = settings_of(args)
    device = torch.device(args.device or ("cpu" if args.small else "cuda"))
    shape = dict(PRODUCTS_SHAPE, num_nodes=settings.nodes, num_edges=settings.edges, num_features=settings.features)
    stem = ("speed_small" if args.small else "speed_products_shape") + ("_profile" if args.profile_only else "")
    report = Report(provenance("speed", argv, device, seeds=[0]), form="small" if args.small else "full",
                    synthetic=True, graph=shape, batch_size=settings.batch, fanout=FANOUT)
    graph = csbm(device=device, name="csbm-products", **shape)
    suite = Suite(graph, device, settings, report, Path(args.out), stem)
    print(f"graph ready; ceilings {report['matmul_tflops']} TFLOP/s, {report['copy_tb_per_s']} TB/s", flush=True)
    parts = (suite.profile,) if args.profile_only else (
        suite.training, suite.profile, suite.other_estimators, lambda: out_of_sample(suite), suite.eigensolver,
        suite.reference_configuration)
    report["parts_finished"] = []
    for part in parts:
        part()
        report["parts_finished"].append(getattr(part, "__name__", "out_of_sample"))
        print(f"{report['parts_finished'][-1]} done", flush=True)
        write_result(args.out, stem, report, to_markdown(report))  # nothing lost if a later part is cut short
    if not args.small and not args.profile_only:
        merge_cpu_eigsh(report)
    write_result(args.out, stem, report, to_markdown(report))
    return report


if __name__ == "__main__":
    main()
