"""Reading and writing a fitted model's folder, atomically and without pickles.

A folder written by :func:`save_fit` holds:

* ``embeddings.npy``: float32 ``[n, k]``; row i is node i, column j the j-th eigenfunction
  (descending eigenvalue with stop-gradient);
* ``backbone.npy``: float32 ``[n, h]``, the penultimate ("backbone") features;
* ``metadata.json``: dataset, n, k, kernel, estimator, stop-gradient, eigenvalue estimates, seed,
  package versions, device, wall time, steps;
* ``model.pt``: the weights (``torch.load(..., weights_only=True)``) and ``model.json``: what is
  needed to rebuild the network.

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
             model_config: dict, metadata: dict) -> None:
    """Write the five files of a fitted model to ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
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
