"""Reading and writing a fitted model's folder, atomically and without pickles.

A folder written by :func:`save_fit` holds:

* ``embeddings.npy``: float32 ``[n, k]``; row i is node i, column j the j-th eigenfunction
  (descending eigenvalue with stop-gradient);
* ``backbone.npy``: float32 ``[n, h]``, the penultimate ("backbone") features;
* ``metadata.json``: dataset, n, k, kernel, estimator, stop-gradient, eigenvalue estimates, seed,
  package versions, device, wall time, steps;
* ``model.pt``: the weights (``torch.load(..., weights_only=True)``) and ``model.json``: what is
  needed to rebuild the network;
* with ``inputs="propagated:K"`` only: ``known_inputs.npy`` (float32 ``[n, (K + 1) d]``, the training
  graph's propagated features) and ``known_degrees.npy`` (``[n]`` degrees of A + I), which embedding
  a new node from its edges needs (:class:`graph_eigenmap.inputs.KnownInputs`).

Every file is written to a temporary name in the same folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.models import NeuralEigenfunctions, build_model

EMBEDDINGS, BACKBONE, METADATA, WEIGHTS, MODEL_CONFIG = (
    "embeddings.npy", "backbone.npy", "metadata.json", "model.pt", "model.json")
KNOWN_INPUTS, KNOWN_DEGREES = "known_inputs.npy", "known_degrees.npy"


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_array(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False))


def save_json(path: Path, payload: dict) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=1) + "\n").encode()))


def save_fit(out_dir: str | Path, *, embedding: np.ndarray, backbone: np.ndarray, model: NeuralEigenfunctions,
             model_config: dict, metadata: dict, known_inputs=None) -> None:
    """Write the files of a fitted model to ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    if known_inputs is not None:
        save_array(out / KNOWN_INPUTS, known_inputs.inputs)
        atomic_write(out / KNOWN_DEGREES, lambda f: np.save(f, known_inputs.degrees, allow_pickle=False))
    save_array(out / EMBEDDINGS, embedding)
    save_array(out / BACKBONE, backbone)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_write(out / WEIGHTS, lambda f: torch.save(state, f))
    save_json(out / MODEL_CONFIG, model_config)
    save_json(out / METADATA, metadata)


def load_model(model_dir: str | Path, *, device: str | torch.device = "cpu") -> tuple[NeuralEigenfunctions, dict]:
    """Rebuild a fitted model (eval mode) and its ``model.json`` from a folder written by :func:`save_fit`."""
    folder = Path(model_dir)
    missing = [name for name in (WEIGHTS, MODEL_CONFIG) if not (folder / name).exists()]
    if missing:
        raise GraphEigenmapError(f"{folder} is not a fitted model folder (missing {', '.join(missing)}); "
                                 "give the --out folder of `graph-eigenmap fit`.")
    config = json.loads((folder / MODEL_CONFIG).read_text())
    model = build_model(_Namespace(config), config["num_features"], config["num_nodes"])
    try:
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # noqa: BLE001
        raise GraphEigenmapError(f"{folder / WEIGHTS} cannot be loaded ({type(err).__name__}: {err}); refit the model.") from None
    return model.to(device).eval(), config


def load_known_inputs(model_dir: str | Path, hops: int):
    """The :class:`~graph_eigenmap.inputs.KnownInputs` a propagated-inputs model folder holds."""
    from graph_eigenmap.inputs import KnownInputs

    folder = Path(model_dir)
    try:
        return KnownInputs(np.load(folder / KNOWN_INPUTS, mmap_mode="r"),
                           np.load(folder / KNOWN_DEGREES, allow_pickle=False), hops)
    except (OSError, ValueError) as err:
        raise GraphEigenmapError(f"{folder} lacks a readable {KNOWN_INPUTS} / {KNOWN_DEGREES} ({type(err).__name__}), "
                                 "which a propagated-inputs model needs for new nodes; refit it.") from None


def environment() -> dict:
    """Versions and machine facts recorded in metadata."""
    import scipy
    import torch_geometric

    from graph_eigenmap import __version__

    return dict(graph_eigenmap=__version__, torch=torch.__version__, torch_geometric=torch_geometric.__version__,
                numpy=np.__version__, scipy=scipy.__version__, python=platform.python_version())


class _Namespace:
    def __init__(self, mapping: dict):
        self.__dict__.update(mapping)
