"""Checkpoints: everything a run needs to resume, written atomically and checked on load.

A checkpoint holds the model, optimizer, schedule, sampler RNG state, eigenvalue estimates and the
configuration; it is written to a temporary file and renamed, so a killed run loses at most one
checkpoint interval and never leaves a half-written file. Loading refuses a checkpoint made with
another configuration or graph.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError

CHECKPOINT_NAME = "checkpoint.pt"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path, config, graph, model, optimizer, schedule, sampler, eigenvalues, state,
                     estimator) -> None:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise GraphEigenmapError(f"{path} cannot be read ({type(err).__name__}); delete it to start over.") from None
    saved = payload["config"]
    differences = [f"{key}: {saved.get(key)!r} there, {value!r} now" for key, value in config.to_dict().items()
                   if key not in ("checkpoint_every", "compile") and saved.get(key) != value]
    if differences:
        raise GraphEigenmapError(
            f"{path} was made with a different configuration ({'; '.join(differences)}); "
            "rerun with the same options or choose another --out."
        )
    if payload["graph"] != graph_fingerprint(graph):
        raise GraphEigenmapError(f"{path} was made on another graph ({payload['graph']}); choose another --out.")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    sampler.set_state(payload["sampler"])
    eigenvalues.copy_(payload["eigenvalues"])
    state["step"] = int(payload["step"])
    state["reorders"] = int(payload.get("reorders", 0))
    state["history"] = [tuple(entry) for entry in json.loads(payload["history"])]
    sums = getattr(estimator, "component_sums", None)
    if sums is not None and payload.get("component_sums") is not None:
        sums.sums = payload["component_sums"].to(eigenvalues.device)
