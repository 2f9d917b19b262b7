"""Checkpoints: everything a run needs to resume, written atomically and checked on load.

A checkpoint holds the model, optimizer, schedule, sampler RNG state, eigenvalue estimates and the
configuration. It is written by :func:`graph_eigenmap.artifacts.atomic_write` (a unique temporary
file, fsynced, then renamed), so a killed run loses at most one checkpoint interval and never leaves
a half-written file. Loading refuses a checkpoint made with another configuration or graph, with one
exception: ``steps`` may grow, which extends a run (also a finished one) with the schedule of the new
total; it may not fall below the steps already taken.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from graph_eigenmap.config import defaults
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.files import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
IGNORED_KEYS = ("checkpoint_every", "compile", "representation")
"""Configuration fields that may change between a checkpoint and its resumption (besides ``steps``)."""


def graph_fingerprint(graph: Graph) -> dict:
    return dict(name=graph.name, num_nodes=graph.num_nodes, num_edges=graph.num_edges, num_features=graph.num_features)


def save_checkpoint(path: Path, config, graph, model, optimizer, schedule, sampler, eigenvalues, state,
                    estimator) -> None:
    sums = getattr(estimator, "component_sums", None)
    payload = dict(
        config=config.to_dict(),
        graph=graph_fingerprint(graph),
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        schedule=schedule.state_dict(),
        sampler=sampler.get_state(),
        eigenvalues=eigenvalues.cpu(),
        step=state["step"],
        reorders=state.get("reorders", 0),
        history=json.dumps(state["history"]),
        component_sums=None if sums is None or sums.sums is None else sums.sums.cpu(),
    )
    atomic_write(path, lambda handle: torch.save(payload, handle))


def read_checkpoint(path: Path) -> dict:
    """The payload of a checkpoint file (tensors memory-mapped where the file allows it).

    Raises:
        GraphEigenmapError: the file is not a readable checkpoint of ours.
    """
    try:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # files in torch's legacy format cannot be memory-mapped
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch's message suggests unsafe loading; never repeat it
        raise GraphEigenmapError(f"{path} cannot be read ({type(err).__name__}); it is damaged: delete it to "
                                 "start over, or choose another output folder.") from None
    needed = ("config", "graph", "model", "optimizer", "schedule", "sampler", "eigenvalues", "step", "history")
    if not isinstance(payload, dict) or any(key not in payload for key in needed):
        raise GraphEigenmapError(f"{path} is not a graph_eigenmap checkpoint; delete it to start over, "
                                 "or choose another output folder.")
    return payload


def checkpoint_step(path: Path) -> int:
    """Steps taken by the run a checkpoint holds (the file is memory-mapped, not read whole)."""
    return int(read_checkpoint(path)["step"])


def resume_step(out_dir: str | Path, *, resume: bool, steps: int) -> int:
    """The step a fit into ``out_dir`` starts from (0 without a checkpoint), checked before any work.

    Raises:
        GraphEigenmapError: a checkpoint there without ``resume``, or one that has taken more than ``steps``.
    """
    checkpoint = Path(out_dir) / CHECKPOINT_NAME
    if not checkpoint.exists():
        return 0
    if not resume:
        raise GraphEigenmapError(f"{checkpoint} exists from an earlier run; pass `resume=True` to continue it (a "
                                 "larger `steps` extends it), or choose another `out_dir`.")
    start = checkpoint_step(checkpoint)
    if start > steps:
        raise GraphEigenmapError(f"{checkpoint} has already taken {start} steps; give `steps={start}` or more to "
                                 "resume it (more extends the run), or choose another `out_dir`.")
    return start


def load_checkpoint(path: Path, config, graph, model, optimizer, schedule, sampler, eigenvalues, state,
                    estimator) -> None:
    payload = read_checkpoint(path)
    saved, done = dict(defaults(), **payload["config"]), int(payload["step"])  # an option added since: its default
    differences = [f"{key}: {saved.get(key)!r} there, {value!r} now" for key, value in config.to_dict().items()
                   if key not in (*IGNORED_KEYS, "steps") and saved.get(key) != value]
    if differences:
        raise GraphEigenmapError(
            f"{path} was made with a different configuration ({'; '.join(differences)}); "
            "rerun with the same options or choose another output folder."
        )
    if config.steps < done:
        raise GraphEigenmapError(f"{path} has already taken {done} steps; to resume it give `steps={done}` or more "
                                 "(more extends the run), or choose another output folder.")
    if payload["graph"] != graph_fingerprint(graph):
        raise GraphEigenmapError(f"{path} was made on another graph ({payload['graph']}); "
                                 "choose another output folder.")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    if config.steps != saved.get("steps"):  # an extended run: the learning rate follows the new schedule from here
        for group, base, factor in zip(optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
            group["lr"] = base * factor(schedule.last_epoch)
    sampler.set_state(payload["sampler"])
    eigenvalues.copy_(payload["eigenvalues"])
    state["step"] = done
    state["reorders"] = int(payload.get("reorders", 0))
    state["history"] = [tuple(entry) for entry in json.loads(payload["history"])]
    sums = getattr(estimator, "component_sums", None)
    if sums is not None and payload.get("component_sums") is not None:
        sums.sums = payload["component_sums"].to(eigenvalues.device)
