"""Reading and writing a fitted model's folder, atomically and without pickles.

A folder written by :func:`save_fit` holds:

* ``embeddings.npy``: float32 ``[n, k]``; row i is node i, column j the j-th eigenfunction
  (descending eigenvalue with stop-gradient);
* ``backbone.npy``: float32 ``[n, h]``, the penultimate ("backbone") features;
* ``representation.npy``: where the fit recommends several parts side by side (``"embedding+features"``:
  ``[n, k + d]``); metadata.json's ``representation`` names the recommended representation, its parts and the
  file that holds it (:mod:`graph_eigenmap.representation`);
* ``metadata.json``: dataset, n, k, kernel, estimator, stop-gradient, eigenvalue estimates, seed,
  package versions, device, wall time, steps;
* ``model.pt``: the weights (``torch.load(..., weights_only=True)``) and ``model.json``: what is
  needed to rebuild the network;
* with ``inputs="propagated:K"`` only: ``known_inputs.npy`` (float32 ``[n, (K + 1) d]``, the training
  graph's propagated features) and ``known_degrees.npy`` (``[n]`` degrees of A + I), which embedding
  a new node from its edges needs (:class:`graph_eigenmap.inputs.KnownInputs`).

Every file goes through :func:`graph_eigenmap.files.atomic_write` (a reader sees the old file or the new one,
never half of one), or, for outputs too large to hold, :func:`streamed_outputs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.files import TEMPORARY_SUFFIX, atomic_write, save_array, save_json
from graph_eigenmap.inputs import KnownInputs
from graph_eigenmap.models import NeuralEigenfunctions, build_model
from graph_eigenmap.registry import parse_inputs

EMBEDDINGS, BACKBONE, METADATA, WEIGHTS, MODEL_CONFIG = (
    "embeddings.npy", "backbone.npy", "metadata.json", "model.pt", "model.json")
KNOWN_INPUTS, KNOWN_DEGREES, INPUT_PROJECTION = "known_inputs.npy", "known_degrees.npy", "input_projection.npy"
REPRESENTATION = "representation.npy"
MODEL_KEYS = ("features", "k", "num_features", "num_nodes")
"""Keys every ``model.json`` holds; an MLP's also holds :data:`MLP_KEYS`."""
MLP_KEYS = ("width", "depth", "residual", "norm", "dropout")


def model_config(config, graph) -> dict:
    """What :func:`load_model` needs to rebuild the network: the resolved configuration's fields (``inputs`` as a
    string) and the graph's numbers of features and nodes, as ``model.json`` holds them."""
    return dict(config.to_dict(), num_features=graph.num_features, num_nodes=graph.num_nodes)


def save_fit(out_dir: str | Path, *, embedding: np.ndarray | None, backbone: np.ndarray | None,
             model: NeuralEigenfunctions, model_config: dict, metadata: dict, known_inputs=None,
             representation: np.ndarray | None = None) -> None:
    """Write the files of a fitted model to ``out_dir`` (see the module docstring).

    ``embedding`` and ``backbone`` None: they were written already (:func:`streamed_outputs`). ``representation``:
    the recommended representation when it is several parts side by side (``representation.npy``).
    """
    out = Path(out_dir)
    if representation is not None:
        save_array(out / REPRESENTATION, representation)
    if known_inputs is not None and known_inputs.inputs is not None:
        save_array(out / KNOWN_INPUTS, known_inputs.inputs)
        atomic_write(out / KNOWN_DEGREES, lambda f: np.save(f, known_inputs.degrees, allow_pickle=False))
    if known_inputs is not None and known_inputs.projection is not None:
        save_array(out / INPUT_PROJECTION, known_inputs.projection)
    if embedding is not None:
        save_array(out / EMBEDDINGS, embedding)
    if backbone is not None:
        save_array(out / BACKBONE, backbone)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_write(out / WEIGHTS, lambda f: torch.save(state, f))
    save_json(out / MODEL_CONFIG, model_config)
    save_json(out / METADATA, metadata)


@contextlib.contextmanager
def streamed_outputs(out_dir: str | Path | None):
    """Temporary paths for ``embeddings.npy`` and ``backbone.npy`` written in pieces, renamed into place on success.

    Yields ``(embedding path, backbone path)`` (unique temporary names beside the final ones), or None
    when ``out_dir`` is None. When the block completes, both files are fsynced and renamed to their
    final names; when it raises, they are removed, so no partial output is ever left.
    """
    if out_dir is None:
        yield None
        return
    out = Path(out_dir)
    finals = (out / EMBEDDINGS, out / BACKBONE)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    temporaries = tuple(path.with_name(f".{path.name}.{token}{TEMPORARY_SUFFIX}") for path in finals)
    try:
        out.mkdir(parents=True, exist_ok=True)
        yield temporaries
        for temporary, final in zip(temporaries, finals):
            if temporary.exists():
                with open(temporary, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(temporary, final)
    finally:
        for temporary in temporaries:
            with contextlib.suppress(OSError):
                temporary.unlink()


def read_model_config(model_dir: str | Path) -> dict:
    """The checked ``model.json`` of a folder written by :func:`save_fit`.

    Raises:
        GraphEigenmapError: the folder lacks ``model.pt`` or ``model.json``, or ``model.json`` is not
            valid JSON or lacks what rebuilding the network needs.
    """
    folder = Path(model_dir)
    missing = [name for name in (WEIGHTS, MODEL_CONFIG) if not (folder / name).is_file()]
    if missing:
        raise GraphEigenmapError(f"{folder} is not a fitted model folder (missing {', '.join(missing)}); "
                                 "give the output folder of a fit (`graph-eigenmap fit --out`, "
                                 "neural_eigenmap's out_dir).")
    path = folder / MODEL_CONFIG
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GraphEigenmapError(f"{path} is not valid JSON ({type(err).__name__} at character "
                                 f"{getattr(err, 'pos', '?')}); the file is damaged: refit the model.") from None
    if not isinstance(config, dict):
        raise GraphEigenmapError(f"{path} holds a JSON {type(config).__name__}, not an object; refit the model.")
    needed = MODEL_KEYS + (MLP_KEYS if config.get("features") != "identity" else ())
    lacking = [key for key in needed if key not in config]
    if lacking:
        raise GraphEigenmapError(f"{path} lacks {', '.join(lacking)}, which rebuilding the network needs; it was not "
                                 "written by `graph-eigenmap fit` or is damaged: refit the model.")
    return config


def load_model(model_dir: str | Path, *, device: str | torch.device = "cpu") -> tuple[NeuralEigenfunctions, dict]:
    """Rebuild a fitted model (eval mode) and its ``model.json`` from a folder written by :func:`save_fit`.

    Raises:
        GraphEigenmapError: a missing, damaged or mismatched ``model.json`` / ``model.pt``.
    """
    folder = Path(model_dir)
    config = read_model_config(folder)
    try:
        model = build_model(_Namespace(config), int(config["num_features"]), int(config["num_nodes"]))
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise GraphEigenmapError(f"{folder / MODEL_CONFIG} describes no network that can be built "
                                 f"({type(err).__name__}); refit the model.") from None
    try:
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch's message suggests unsafe loading; never repeat it
        raise GraphEigenmapError(f"{folder / WEIGHTS} is not a readable weights file ({type(err).__name__}); "
                                 "it is damaged or was not written by `graph-eigenmap fit`: refit the model.") from None
    try:
        model.load_state_dict(state)
    except Exception as err:  # noqa: BLE001
        raise GraphEigenmapError(f"{folder / WEIGHTS} does not match {MODEL_CONFIG} ({type(err).__name__}); the two "
                                 "files come from different fits: refit the model.") from None
    return model.to(device).eval(), config


def load_known_inputs(model_dir: str | Path, inputs: str):
    """The :class:`~graph_eigenmap.inputs.KnownInputs` a model folder fitted with ``inputs`` (propagated, svd) holds."""
    folder, spec = Path(model_dir), parse_inputs(inputs)
    needed = ([KNOWN_INPUTS, KNOWN_DEGREES] if spec.hops else []) + ([INPUT_PROJECTION] if spec.rank else [])
    try:
        known = np.load(folder / KNOWN_INPUTS, mmap_mode="r") if spec.hops else None
        degrees = np.load(folder / KNOWN_DEGREES, allow_pickle=False) if spec.hops else None
        projection = np.load(folder / INPUT_PROJECTION, allow_pickle=False) if spec.rank else None
    except (OSError, ValueError) as err:
        raise GraphEigenmapError(f"{folder} lacks a readable {' / '.join(needed)} ({type(err).__name__}), which a "
                                 f"model fitted with `inputs={inputs!s}` needs for new nodes; refit it.") from None
    return KnownInputs(known, degrees, spec.hops, projection)


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (from its metadata, without importing it), or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions and machine facts recorded in metadata (read with importlib.metadata: nothing is imported)."""
    return dict(graph_eigenmap=package_version("graph-eigenmap"), torch=torch.__version__,
                torch_geometric=package_version("torch-geometric"), numpy=np.__version__,
                scipy=package_version("scipy"), python=platform.python_version())


class _Namespace:
    def __init__(self, mapping: dict):
        self.__dict__.update(mapping)
