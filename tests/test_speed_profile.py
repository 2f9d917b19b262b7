"""The speed suite's profile of a sampled step (benchmarks/step_profile.py): the training loop's own phases, timed so
that they add up to the step, with their floors (CPU, seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import speed, step_profile  # noqa: E402
from graph_eigenmap import load_graph  # noqa: E402
from graph_eigenmap.config import TrainConfig  # noqa: E402
from graph_eigenmap.estimators import NeighborSampledEstimator  # noqa: E402
from graph_eigenmap.feature_store import FeatureStore  # noqa: E402
from graph_eigenmap.models import build_model  # noqa: E402
from graph_eigenmap.train import STEP_PHASES, train  # noqa: E402

WORK_PHASES = ("draw", "gather", "forward", "estimate", "objective", "backward", "optimizer")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: two would fight the other processes of a 2-core CI."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def graph():
    return load_graph("csbm:num_nodes=300,num_edges=1500,num_classes=3,num_features=12,seed=2")


@pytest.mark.parametrize("estimator", ["sampled", "full"])
def test_the_loop_marks_each_phase_of_every_step_and_marking_changes_nothing(graph, estimator):
    sampling = dict(batch_size=32, fanout=4) if estimator == "sampled" else {}
    config = TrainConfig(k=4, width=16, depth=2, steps=7, estimator=estimator, checkpoint_every=0, **sampling)
    marks = []
    marked = train(graph, config, progress=False, log_every=2, mark=marks.append)
    plain = train(graph, config, progress=False, log_every=2)
    assert marks == list(STEP_PHASES) * 7
    assert [entry[2:] for entry in marked.history] == [entry[2:] for entry in plain.history]  # losses, R_11
    assert (marked.eigenvalues == plain.eigenvalues).all()
    for a, b in zip(marked.model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)


def test_phase_times_are_the_intervals_between_marks_averaged_over_the_steps_after_the_first():
    names = ["a", "b"] * 3
    times = [0.0, 1.0, 3.0, 6.0, 10.0, 15.0]  # step 1: a 3 - 1, b 6 - 3; step 2: a 10 - 6, b 15 - 10
    assert step_profile.phase_times(names, times, ("a", "b"), 1) == {"a": 3.0, "b": 4.0}
    assert step_profile.phase_times(names, times, ("a", "b"), 2) == {"a": 4.0, "b": 5.0}
    with pytest.raises(ValueError, match="step after step"):
        step_profile.phase_times(names, times, ("a", "b"), 0)  # the first step's first phase has no start
    with pytest.raises(ValueError, match="step after step"):
        step_profile.phase_times(names, times, ("a", "b"), 3)  # no step left
    with pytest.raises(ValueError, match="step after step"):
        step_profile.phase_times(["b", "a"] * 3, times, ("a", "b"), 1)


def test_a_cpu_clock_summary_gives_shares_floors_and_host_times():
    ticks = iter([0.0, 0.001, 0.004, 0.006, 0.010, 0.013])
    clock = step_profile.PhaseClock("cpu", clock=lambda: next(ticks))
    for _ in range(3):
        clock("a")
        clock("b")
    assert clock.device_seconds() == pytest.approx([0.0, 0.001, 0.004, 0.006, 0.010, 0.013])
    run = step_profile.summarize(clock, ("a", "b"), 1, {"a": 0.0005})
    a, b = run["phases"]  # a: (4 - 1 + 10 - 6) / 2 ms, b: (6 - 4 + 13 - 10) / 2 ms
    assert (a["ms"], b["ms"], run["sum_ms"], run["steps"]) == (pytest.approx(3.5), pytest.approx(2.5),
                                                                pytest.approx(6.0), 2)
    assert (a["share"], b["share"]) == (0.5833, 0.4167) and a["host_ms"] == a["ms"]
    assert (a["floor_ms"], a["ratio_to_floor"], b["floor_ms"], b["ratio_to_floor"]) == (0.5, 7.0, None, None)
    assert (run["floor_sum_ms"], run["ratio_to_floor_sum"]) == (0.5, 12.0)


class FakeCuda:
    """Stands in for ``torch.cuda`` on a machine without a GPU: events read a device clock when recorded."""

    def __init__(self, device_times):
        self.device_times, self.synchronized, self.streams = iter(device_times), 0, []
        cuda = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing

            def record(self, stream=None):
                cuda.streams.append(stream)
                self.time = next(cuda.device_times)

            def elapsed_time(self, other):  # milliseconds, as torch's
                assert cuda.synchronized, "read before the device was synchronized"
                return 1000 * (other.time - self.time)

        self.Event = Event

    def synchronize(self, device=None):
        self.synchronized += 1


def test_on_a_gpu_the_phases_are_the_times_between_events_on_the_training_stream():
    clock = step_profile.PhaseClock("cpu", clock=iter([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]).__next__)
    fake = FakeCuda([5.0, 5.002, 5.003, 5.007, 5.008, 5.012])  # device clock at each mark
    clock.cuda, clock.torch, clock.stream = True, type("FakeTorch", (), {"cuda": fake}), "training stream"
    for _ in range(3):
        clock("a")
        clock("b")
    assert fake.streams == ["training stream"] * 6 and len(clock.events) == 6
    assert clock.device_seconds() == pytest.approx([0.0, 0.002, 0.003, 0.007, 0.008, 0.012])
    run = step_profile.summarize(clock, ("a", "b"), 1, {})
    a, b = run["phases"]  # device: a from 5.002 to 5.003 and 5.007 to 5.008, b 4 ms twice; host: 0.1 s each
    assert (a["ms"], b["ms"], run["sum_ms"]) == (pytest.approx(1.0), pytest.approx(4.0), pytest.approx(5.0))
    assert (a["host_ms"], b["host_ms"]) == (pytest.approx(100.0), pytest.approx(100.0))


def test_floors_count_the_bytes_of_a_real_draw_and_the_flops_of_the_real_model(graph):
    peak = {"flops": 1.0, "bytes": 1.0}  # a floor is then the larger of the FLOPs and the bytes themselves
    b, f, k, width, depth = 16, 4, 4, 32, 2
    config = TrainConfig(k=k, width=width, depth=depth, batch_size=b, fanout=f, features="input")
    model = build_model(config, graph.num_features, graph.num_nodes)
    parameters = sum(p.numel() for p in model.parameters())
    floors = step_profile.phase_floors(peak, batch=b, fanout=f, d_in=graph.num_features, feature_bytes=4,
                                       width=width, depth=depth, k=k, parameters=parameters)
    assert set(floors) == set(WORK_PHASES)
    draw = NeighborSampledEstimator(graph.adjacency, batch_size=b, fanout=f).draw(torch.Generator().manual_seed(0))
    rows = FeatureStore(graph.features, torch.device("cpu"), "float32").rows(draw.node_ids)
    assert floors["gather"] == draw.node_ids.nbytes + 2 * rows.nbytes  # the ids read, each row read and written
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    multiply_adds = sum(m.in_features * m.out_features for m in linear)  # a row's forward through every layer
    assert floors["forward"] == 2 * multiply_adds * b * (1 + f)
    first = linear[0].in_features * linear[0].out_features  # no input gradient for the first layer
    assert floors["backward"] == 2 * b * (2 * multiply_adds - first)
    assert floors["optimizer"] == 28 * parameters
    # the draw writes its ids and weights and reads a row pointer, count and degree per seed, a column id and an
    # inverse square-root degree per neighbour
    (weight,) = draw.pairs
    assert floors["draw"] == draw.node_ids.nbytes + weight.nbytes + b * (8 + 4 + 4) + b * f * (4 + 4)


def test_small_form_profile_has_every_phase_and_adds_up_to_the_step(tmp_path):
    report = speed.main(["--out", str(tmp_path), "--small", "--profile-only"])
    written = json.loads((tmp_path / "speed_small_profile.json").read_text())
    assert written == json.loads(json.dumps(report))
    profile = report["profile"]
    assert (profile["k"], profile["batch_size"], profile["fanout"]) == (speed.SMALL.ks[0], speed.SMALL.batch,
                                                                         speed.FANOUT)
    assert list(profile) >= ["eager"] and "compiled" not in profile  # the small form does not compile
    run = profile["eager"]
    assert [row["phase"] for row in run["phases"]] == list(STEP_PHASES)
    assert run["steps"] == speed.SMALL.sampled_steps - speed.LOG_EVERY
    assert all(row["ms"] >= 0 and row["host_ms"] >= 0 for row in run["phases"])
    assert sum(row["share"] for row in run["phases"]) == pytest.approx(1.0, abs=0.002)
    assert sum(row["ms"] for row in run["phases"]) == pytest.approx(run["sum_ms"], abs=0.001)
    # the phases add up to the profiled run's own step time (its history), on the same clock
    assert run["sum_ms"] == pytest.approx(run["step_ms"], rel=0.05)
    # and the profiled run is an ordinary one: within a factor of two of an unprofiled run (a noisy 2-core CPU)
    assert 0.5 < run["step_ms"] / run["unprofiled_step_ms"] < 2.0
    assert run["overhead"] == pytest.approx(run["step_ms"] / run["unprofiled_step_ms"] - 1, abs=1e-3)
    work = {row["phase"]: row for row in run["phases"] if row["phase"] in WORK_PHASES}
    assert all(row["floor_ms"] > 0 and row["ratio_to_floor"] >= 0 for row in work.values())
    assert all(row["floor_ms"] is None for row in run["phases"] if row["phase"] not in WORK_PHASES)
    assert run["floor_sum_ms"] == pytest.approx(sum(row["floor_ms"] for row in work.values()), rel=1e-3, abs=1e-4)
    assert run["input_columns"] == 4 * speed.SMALL.features and run["feature_storage"] == "float32"
    text = (tmp_path / "speed_small_profile.md").read_text()
    assert "## Where a sampled step's time goes" in text and "### eager" in text
    assert all(f"| {phase} | {row['ms']:.3f} |" in text for phase, row in zip(STEP_PHASES, run["phases"]))
