"""Data-parallel training on CPUs (gloo, 2 processes): the same step, the same spectrum, and no hang when a rank dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

GRAPH = "csbm:num_nodes=1500,num_edges=9000,num_classes=4,num_features=16,seed=4"
SEEDS, FANOUT = 64, 4


def _setup(batch_size: int, one_sided: bool):
    """Graph, resolved config, model, optimizer and estimator, identical in every process."""
    from graph_eigenmap import load_graph
    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.estimators import make_estimator
    from graph_eigenmap.feature_store import FeatureStore
    from graph_eigenmap.models import build_model
    from graph_eigenmap.optim import make_optimizer
    from graph_eigenmap.recipe import resolve

    graph = load_graph(GRAPH)
    config = resolve(TrainConfig(k=6, width=32, estimator="sampled", batch_size=batch_size, fanout=FANOUT, inputs="features",
                         one_sided_gradient=one_sided), graph, torch.device("cpu"))
    model = build_model(config, graph.num_features, graph.num_nodes, generator=torch.Generator().manual_seed(0),
                        features=graph.features)
    optimizer = make_optimizer(model, config, rows_per_step=batch_size)
    estimator = make_estimator(config, graph.adjacency, shift=False, device="cpu")
    return graph, config, model, optimizer, estimator, FeatureStore(graph.features, torch.device("cpu"), "float32")


def _full_draw():
    """One draw of 2 × SEEDS seeds with their neighbours, the same in every process."""
    _, _, _, _, estimator, _ = _setup(2 * SEEDS, True)
    return estimator.draw(torch.Generator().manual_seed(11))


def _half(draw, rank: int):
    """Rank ``rank``'s half of ``draw``: its seeds, their neighbours and weights."""
    from graph_eigenmap.estimators import Draw

    seeds, neighbours = draw.node_ids[:2 * SEEDS], draw.node_ids[2 * SEEDS:].view(2 * SEEDS, FANOUT)
    part = slice(rank * SEEDS, (rank + 1) * SEEDS)
    (weight,) = draw.pairs
    return Draw(torch.cat([seeds[part], neighbours[part].reshape(-1)]), SEEDS, SEEDS, (weight[part],))


def _step_result(model, loss, r) -> dict:
    return dict(loss=float(loss), r=r.numpy().tolist(), rms=model.norm.running_rms.numpy().tolist(),
                grads=[p.grad.numpy().tolist() for p in model.parameters()],
                weights=[p.detach().numpy().tolist() for p in model.parameters()])


def _one_step_on_rank(ranks, out: str, one_sided: bool) -> None:
    from graph_eigenmap import distributed
    from graph_eigenmap.train import _data_parallel, train_step

    torch.set_num_threads(1)
    distributed.start(ranks, torch.device("cpu"))
    _, config, model, optimizer, estimator, inputs = _setup(SEEDS, one_sided)
    network = _data_parallel(model, estimator, ranks, torch.device("cpu"))
    loss, r = train_step(network, optimizer, estimator, _half(_full_draw(), ranks.rank), inputs, config,
                         reduce=distributed.mean_over_ranks)
    Path(out, f"rank{ranks.rank}.json").write_text(json.dumps(_step_result(model, loss, r)))


@pytest.mark.parametrize("one_sided", [True, False])
def test_one_step_of_two_ranks_equals_one_process_with_both_batches(tmp_path, one_sided):
    from graph_eigenmap import distributed
    from graph_eigenmap.train import train_step

    distributed.launch(2, _one_step_on_rank, str(tmp_path), one_sided)
    _, config, model, optimizer, estimator, inputs = _setup(2 * SEEDS, one_sided)
    loss, r = train_step(model, optimizer, estimator, _full_draw(), inputs, config)
    expected = _step_result(model, loss, r)
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert abs(got["loss"] - expected["loss"]) < 1e-5
        for key in ("r", "rms"):
            np.testing.assert_allclose(got[key], expected[key], atol=1e-5)
        for key in ("grads", "weights"):
            for mine, theirs in zip(got[key], expected[key]):
                np.testing.assert_allclose(mine, theirs, atol=1e-5)


def _cli(*args: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-c", "from graph_eigenmap_cli.main import main; main()", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"), **popen)


def test_fit_on_two_processes_finds_the_spectrum_of_one_process_with_both_batches(tmp_path):
    options = ["--k", "6", "--steps", "150", "--estimator", "sampled", "--width", "64", "--inputs", "features",
               "--device", "cpu", "--quiet"]
    done = _cli("fit", "-d", GRAPH, "--out", str(tmp_path / "two"), "--nproc", "2", "--batch-size", "256", *options)
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr[-2000:]
    metadata = json.loads((tmp_path / "two" / "metadata.json").read_text())
    assert metadata["processes"] == 2 and metadata["steps"] == 150
    two, one = _captured_by_fit_and_one_process(tmp_path / "two")
    assert abs(two - one) < 0.01
    assert two > 0.3  # what an MLP on these 16 features reaches; a random 6-d subspace scores about 0


def _captured_by_fit_and_one_process(folder: Path) -> tuple[float, float]:
    """Captured spectrum of the fit written to ``folder`` and of one plain process with both ranks' seeds (512)."""
    from scipy.sparse.linalg import eigsh

    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.distributed import Ranks
    from graph_eigenmap.kernel import normalized_adjacency
    from graph_eigenmap.metrics import captured_spectrum

    graph = load_graph(GRAPH)
    one = neural_eigenmap(graph, k=6, steps=150, estimator="sampled", width=64, inputs="features",
                          batch_size=512, device="cpu", progress=False, ranks=Ranks())
    kernel = normalized_adjacency(graph)
    exact = eigsh(kernel.astype(np.float64), k=6, which="LA")[0]
    return (captured_spectrum(np.load(folder / "embeddings.npy"), kernel, exact),
            captured_spectrum(one.embedding, kernel, exact))


def test_a_killed_rank_ends_the_run_with_an_error_and_no_hang(tmp_path):
    import psutil

    run = _cli("fit", "-d", GRAPH, "--out", str(tmp_path / "run"), "--nproc", "2", "--estimator", "sampled",
               "--batch-size", "64", "--steps", "1000000", "--device", "cpu", "--quiet")
    parent = psutil.Process(run.pid)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until both ranks train (a checkpoint-free run: watch the processes)
        ranks = [p for p in parent.children(recursive=True) if "spawn" in " ".join(p.cmdline())]
        if len(ranks) == 2 and all(p.cpu_times().user > 4 for p in ranks):
            break
        time.sleep(0.5)
    else:
        run.kill()
        pytest.fail("the two ranks did not start training")
    ranks[1].send_signal(signal.SIGKILL)
    killed = time.time()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode not in (0, None) and time.time() - killed < 60
    assert "error:" in stderr and "training process" in stderr
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_resume_works_with_another_number_of_processes(tmp_path):
    common = ["-d", GRAPH, "--out", str(tmp_path / "run"), "--k", "6", "--estimator", "sampled", "--batch-size", "128",
              "--device", "cpu", "--quiet", "--checkpoint-every", "10"]
    for extra in (["--steps", "30", "--nproc", "2"], ["--steps", "50", "--resume"], ["--steps", "70", "--resume", "--nproc", "2"]):
        run = _cli("fit", *common, *extra)
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-2000:]
        metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
        assert metadata["steps"] == int(extra[1]) and metadata["processes"] == (2 if "--nproc" in extra else 1)


def _fit_forced_rank(ranks, out: str) -> None:
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.distributed import Ranks

    forced = Ranks(ranks.rank, ranks.world_size, ranks.local_rank, forced=True)
    neural_eigenmap(GRAPH, k=6, steps=150, estimator="sampled", width=64, inputs="features", batch_size=512,
                    device="cpu", progress=False, ranks=forced, out_dir=out, checkpoint_every=0)


def test_one_rank_forced_through_ddp_finds_the_spectrum_of_the_plain_path(tmp_path, monkeypatch):
    """GRAPH_EIGENMAP_DISTRIBUTED=1 (what the scaling benchmark uses to cost the machinery) trains correctly."""
    from graph_eigenmap import distributed
    from graph_eigenmap.distributed import Ranks, ranks_from_environment

    assert not Ranks().active and Ranks(forced=True).active and not ranks_from_environment().active
    monkeypatch.setenv("GRAPH_EIGENMAP_DISTRIBUTED", "1")
    assert ranks_from_environment().active
    monkeypatch.delenv("GRAPH_EIGENMAP_DISTRIBUTED")
    distributed.launch(1, _fit_forced_rank, str(tmp_path / "forced"))
    metadata = json.loads((tmp_path / "forced" / "metadata.json").read_text())
    assert metadata["processes"] == 1 and metadata["steps"] == 150
    forced, plain = _captured_by_fit_and_one_process(tmp_path / "forced")
    assert abs(forced - plain) < 0.01 and forced > 0.3


def test_the_differentiable_all_reduce_hands_contiguous_tensors_to_the_backend(monkeypatch):
    """NCCL refuses non-contiguous tensors (gloo does not), and L2-BN's gradient reaches the all-reduce transposed."""
    import torch
    import torch.distributed as dist

    from graph_eigenmap.distributed import mean_over_ranks

    seen = []
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, *a, **k: seen.append(tensor.is_contiguous()))
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 1)
    x = torch.randn(3, 5, requires_grad=True)
    y = mean_over_ranks(x.t())  # a non-contiguous input and, below, a non-contiguous gradient
    upstream = torch.randn(3, 5)
    (y * upstream.t()).sum().backward()
    assert seen == [True, True]
    torch.testing.assert_close(y, x.t())  # one rank: the mean is the tensor itself ...
    torch.testing.assert_close(x.grad, upstream)  # ... and its gradient passes through


def _fit_rows_and_save_head(ranks, out: str) -> None:
    import graph_eigenmap.train
    from graph_eigenmap import load_graph
    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.train import train

    exact = graph_eigenmap.train.exact_quotients  # rank 1 alone would order its outputs otherwise (rising noise)
    graph_eigenmap.train.exact_quotients = lambda *args: exact(*args) + ranks.rank * torch.linspace(0, 1, 6)

    config = TrainConfig(k=6, steps=100, estimator="rows", width=32, inputs="features", batch_size=256,
                         checkpoint_every=0)
    trained = train(load_graph(GRAPH), config, device="cpu", progress=False, ranks=ranks)
    torch.save(dict(head=trained.model.head.weight.detach().clone(), reorders=trained.reorders),
               Path(out) / f"rank{ranks.rank}.pt")


def test_ranks_reordering_by_exact_quotients_apply_one_permutation(tmp_path):
    """The rows estimator orders by exact quotients, computed on every rank: averaged over the ranks, they give
    every rank the same permutation, so the replicas stay identical even where the ranks' quotients differ."""
    from graph_eigenmap import distributed

    distributed.launch(2, _fit_rows_and_save_head, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["reorders"] == ranks[1]["reorders"] > 0
    torch.testing.assert_close(ranks[0]["head"], ranks[1]["head"])
