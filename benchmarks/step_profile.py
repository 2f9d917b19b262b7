"""Where a training step's time goes: the speed suite's profile (``benchmarks/speed.py``, section "Where a sampled
step's time goes").

The library's training loop tells a ``mark`` callback the end of each phase of every step
(:data:`graph_eigenmap.train.STEP_PHASES`: draw, gather, forward, estimate, objective, backward, optimizer, then the
loop's own bookkeeping). :class:`PhaseClock` is that callback: at each mark it records a CUDA event on the current
stream (a GPU; nothing is synchronized, so the run is the ordinary one) and reads ``perf_counter`` (the host). The
time between one phase's mark and the previous one's is that phase's, so the phases of a step add up to the step
exactly. On a CPU the operations are synchronous and ``perf_counter`` is both clocks.

What the device time of a phase means: the time the device's stream took from the end of the previous phase to the
end of this one. When the device runs behind the host (the host queues work ahead), it is the device's own time for
the phase's kernels; when the host runs behind (the device waits for work to be queued, launch-bound), it is the
host's time to issue them. The host column tells which: a phase whose host time is close to its device time was
issued no faster than the device ran it. The host's waits for the device show in the phase that waits (``log``, whose
loss read syncs every ``log_every`` steps; any phase when the launch queue is full).

Each phase's floor is the least time for what it must do at the suite's measured ceilings
(:func:`benchmarks.common.floor_seconds`: bytes read and written once over the copy bandwidth, FLOPs over the bf16
matrix-multiply rate): :func:`phase_floors`.
"""

from __future__ import annotations

import time

from benchmarks.common import floor_seconds, mlp_multiply_adds

PHASE_NOTES = {
    "draw": "seeds, and fanout neighbours of each with their weights (`estimator.draw`)",
    "gather": "the model inputs of seeds and neighbours (`FeatureStore.rows`: a gather on the device; with "
              "`feature_storage='host'` a gather on the host and a copy to the device)",
    "forward": "MLP and L2-BN on the seeds (with autograd) and on the neighbours (without)",
    "estimate": "C, the sampled kernel product, from the neighbours' outputs (`estimator.estimate`)",
    "objective": "the NeuralEF loss and R",
    "backward": "gradients zeroed, then backpropagation through the seeds' rows",
    "optimizer": "the AdamW step (fused on a GPU)",
    "eigenvalues": "the learning-rate schedule and the running eigenvalue estimates",
    "reorder": "the outputs put in eigenvalue order, every 25 steps of the first 95 %",
    "log": "the loss history every 10 steps (a read of the loss: the host waits for the device)",
    "checkpoint": "none in the suite (`checkpoint_every=0`)",
}
"""What each phase of :data:`graph_eigenmap.train.STEP_PHASES` holds for the sampled estimator."""


class PhaseClock:
    """The training loop's ``mark``: the end of each phase on the device's timeline and on the host's.

    Args:
        device: the training device; on a GPU a timing CUDA event is recorded on the current stream at each mark.
        capacity: marks expected: their events are made beforehand (torch makes a CUDA event at its first
            record, so each is recorded once here), and making them costs no step any time.
        clock: the host clock (``time.perf_counter``).
    """

    def __init__(self, device, capacity: int = 0, clock=time.perf_counter):
        import torch  # deferred: --help answers without torch

        device = torch.device(device)
        self.cuda, self.device = device.type == "cuda", device
        self.clock = clock
        self.names: list[str] = []
        self.host: list[float] = []
        self.torch = torch
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(capacity)] if self.cuda else []
        self.stream = torch.cuda.current_stream(device) if self.cuda else None  # the one the training loop runs on
        for event in self.events:
            event.record(self.stream)
        if self.cuda:
            torch.cuda.synchronize(device)

    def __call__(self, phase: str) -> None:
        self.names.append(phase)
        self.host.append(self.clock())
        if self.cuda:
            if len(self.names) > len(self.events):
                self.events.append(self.torch.cuda.Event(enable_timing=True))
            self.events[len(self.names) - 1].record(self.stream)

    def device_seconds(self) -> list[float]:
        """Seconds on the device's timeline at each mark, from the first (the host's on a CPU): the device is
        synchronized, then the times between consecutive events are added up."""
        if not self.cuda:
            return [t - self.host[0] for t in self.host]
        self.torch.cuda.synchronize(self.device)
        events = self.events[:len(self.names)]
        times = [0.0]
        for before, after in zip(events, events[1:]):
            times.append(times[-1] + before.elapsed_time(after) / 1000)
        return times


def phase_times(names: list[str], times: list[float], phases: tuple, first_step: int) -> dict[str, float]:
    """Mean seconds per step of each phase from the marks' ``names`` and ``times`` (one clock), over the steps from
    ``first_step`` (0-based, at least 1: the first phase of a step runs from the previous step's last mark) on.

    Raises:
        ValueError: the marks are not ``phases`` in order, step after step, or no step is left after ``first_step``.
    """
    per_step = len(phases)
    steps = len(names) // per_step
    if first_step < 1 or steps <= first_step or names != list(phases) * steps or len(times) != len(names):
        raise ValueError(f"expected {list(phases)} step after step for more than {first_step} steps "
                         f"(at least 1), got {len(names)} marks: {names[:per_step + 1]} ...")
    totals = dict.fromkeys(phases, 0.0)
    for i in range(first_step * per_step, steps * per_step):
        totals[names[i]] += times[i] - times[i - 1]
    return {phase: total / (steps - first_step) for phase, total in totals.items()}


def phase_floors(peak: dict, *, batch: int, fanout: int, d_in: int, feature_bytes: int, width: int, depth: int,
                 k: int, parameters: int) -> dict[str, float]:
    """The least seconds of each phase of a sampled step that has work of its own (the loop's bookkeeping has none),
    each byte it must read or write counted once (a random gather moves whole 32-byte sectors on a GPU: more).

    * draw: per seed its row pointer, count and degree, its id written (24 B); per neighbour its column id and
      inverse square-root degree read, its id (int64) and weight written (20 B);
    * gather: the ids, and each of the ``batch (1 + fanout)`` rows read and written in the storage's precision;
    * forward: ``2 m w`` FLOPs for the MLP on m rows (:func:`~benchmarks.common.mlp_multiply_adds`), its rows read;
    * estimate: the neighbours' bf16 outputs and weights read, C written; objective: AᵀC and ``A`` and ``C`` read;
    * backward: the seeds' weight gradients and input gradients of every layer but the first, ``2 b (2 w − d h)``;
    * optimizer: AdamW reads parameter, gradient and both moments and writes three of them, 28 B a parameter.
    """
    b, f, m = batch, fanout, batch * (1 + fanout)
    w = mlp_multiply_adds(d_in, width, depth, k)
    return dict(
        draw=floor_seconds(peak, 0, b * 24 + b * f * 20),
        gather=floor_seconds(peak, 0, m * 8 + 2 * m * d_in * feature_bytes),
        forward=floor_seconds(peak, 2 * m * w, m * d_in * feature_bytes + m * k * 2),
        estimate=floor_seconds(peak, 2 * b * f * k, b * f * (2 * k + 4) + b * k * 4),
        objective=floor_seconds(peak, 2 * b * k * k, 2 * b * k * 4),
        backward=floor_seconds(peak, 2 * b * (2 * w - d_in * width), 0),
        optimizer=floor_seconds(peak, 0, 28 * parameters),
    )


def summarize(clock: PhaseClock, phases: tuple, first_step: int, floors: dict[str, float]) -> dict:
    """The profile of one run: each phase's mean device and host milliseconds a step, its share of the step, its
    floor and ratio to it; their sums."""
    device = phase_times(clock.names, clock.device_seconds(), phases, first_step)
    host = phase_times(clock.names, clock.host, phases, first_step)
    total = sum(device.values())
    rows = []
    for phase in phases:
        floor = floors.get(phase)
        rows.append(dict(phase=phase, ms=round(1000 * device[phase], 4),
                         share=round(device[phase] / total, 4) if total > 0 else 0.0,
                         host_ms=round(1000 * host[phase], 4),
                         floor_ms=None if floor is None else round(1000 * floor, 5),
                         ratio_to_floor=round(device[phase] / floor, 1) if floor else None))
    floor_sum = sum(floors.values())
    return dict(steps=len(clock.names) // len(phases) - first_step, phases=rows, sum_ms=round(1000 * total, 4),
                host_sum_ms=round(1000 * sum(host.values()), 4),
                host_ms_outside_log=round(1000 * (sum(host.values()) - host.get("log", 0.0)), 4),
                floor_sum_ms=round(1000 * floor_sum, 5),
                ratio_to_floor_sum=round(total / floor_sum, 1) if floor_sum else None)


def profile_markdown(profile: dict) -> list[str]:
    """The section "Where a sampled step's time goes" of the speed suite's Markdown."""
    modes = [mode for mode in ("eager", "compiled") if mode in profile]
    lines = ["## Where a sampled step's time goes", "",
             f"Sampled estimator, k = {profile['k']}, {profile['batch_size']:,} seeds a step, fanout "
             f"{profile['fanout']}, {profile['steps']} steps; {profile['modes_note']} Each phase as the training loop "
             f"names it (`graph_eigenmap.train.STEP_PHASES`), its mean over {profile['window']}. {profile['clock']}",
             "", "| phase | what it holds |", "|---|---|"]
    lines += [f"| {phase} | {note} |" for phase, note in PHASE_NOTES.items()]
    for mode in modes:
        run = profile[mode]
        lines += ["", f"### {mode}", "", "| phase | ms a step | share | host ms | floor ms | ratio to floor |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {row['phase']} | {row['ms']:.3f} | {100 * row['share']:.1f} % | {row['host_ms']:.3f} | "
                  f"{'' if row['floor_ms'] is None else format(row['floor_ms'], '.4f')} | "
                  f"{'' if row['ratio_to_floor'] is None else row['ratio_to_floor']} |" for row in run["phases"]]
        lines += [f"| sum | {run['sum_ms']:.3f} | 100 % | {run['host_sum_ms']:.3f} | {run['floor_sum_ms']:.4f} | "
                  f"{run['ratio_to_floor_sum'] or ''} |", ""]
        largest = sorted(run["phases"], key=lambda row: -row["ms"])[:3]
        host = (f" The host spends {run['host_ms_outside_log']:.3f} ms a step in the phases other than log (whose "
                "time is mostly the wait for the device)." if profile["cuda"] else "")
        lines.append(f"Inputs: {run['input_columns']} columns stored as {run['feature_storage']}. The phases add up "
                     f"to {run['sum_ms']:.3f} ms a step; the profiled run's own step time (its training history) is "
                     f"{run['step_ms']:.3f} ms, an unprofiled run's {run['unprofiled_step_ms']:.3f} ms (the profile's "
                     f"overhead {100 * run['overhead']:+.1f} %). Largest: "
                     + ", ".join(f"{row['phase']} {100 * row['share']:.0f} %" for row in largest) + "." + host)
    return lines
