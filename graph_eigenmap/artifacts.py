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

Every file (checkpoints included, :mod:`graph_eigenmap.checkpoint`) goes through :func:`atomic_write`:
a temporary file with a unique name beside the target, flushed to disk, then renamed into place, so a
reader sees the old file or the new one and never half of one. :func:`check_output_folder` and
:func:`check_output_file` test an output path before any work, and :func:`removed_on_failure` takes
back what a failed command wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.models import NeuralEigenfunctions, build_model

EMBEDDINGS, BACKBONE, METADATA, WEIGHTS, MODEL_CONFIG = (
    "embeddings.npy", "backbone.npy", "metadata.json", "model.pt", "model.json")
KNOWN_INPUTS, KNOWN_DEGREES, INPUT_PROJECTION = "known_inputs.npy", "known_degrees.npy", "input_projection.npy"
MODEL_KEYS = ("features", "k", "num_features", "num_nodes")
"""Keys every ``model.json`` holds; an MLP's also holds :data:`MLP_KEYS`."""
MLP_KEYS = ("width", "depth", "residual", "norm", "dropout")
TEMPORARY_SUFFIX = ".tmp"


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(binary_file)`` on a new temporary file beside ``path``, then rename it to ``path``.

    The temporary name is unique (``.NAME.<pid>.<random>.tmp``), so two writers never share one; the
    data is flushed and fsynced before the rename. Missing parent folders are created. On any failure
    (``write`` raising, a full disk, an interrupt) the temporary file and the folders this call created
    are removed and ``path`` is left as it was.

    Args:
        path: the file to write.
        write: a callable taking the open binary file object.
    """
    path = Path(path)
    created = _missing_folders(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def save_array(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as a float32 ``.npy`` file without pickles, atomically."""
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False))


def save_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=1) + "\n").encode()))


def check_output_folder(path: str | Path, option: str = "--out") -> None:
    """Fail now, in one line, when ``path`` cannot become an output folder.

    Nothing is created: an existing folder must accept a new file, and where the folder is missing
    its nearest existing parent must.

    Args:
        path: the folder a command will write.
        option: the option that named it, for the message.

    Raises:
        GraphEigenmapError: ``path`` is a file, lies below a file, or is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GraphEigenmapError(f"{option} {path} is an existing file, not a folder; give a folder path "
                                 "(it is created if missing) or move the file away.")
    _check_writable(path, option)


def check_output_file(path: str | Path, option: str = "--out", example: str = "embeddings.npy") -> None:
    """Fail now, in one line, when ``path`` cannot be written as a file (nothing is created).

    Args:
        path: the file a command will write.
        option: the option that named it, for the message.
        example: a file name to suggest when ``path`` is a folder.

    Raises:
        GraphEigenmapError: ``path`` is a folder, lies below a file, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise GraphEigenmapError(f"{option} {path} is a folder; give a file path such as {path / example}.")
    _check_writable(path.parent, option, shown=path)


def _check_writable(folder: Path, option: str, shown: Path | None = None) -> None:
    shown = folder if shown is None else shown
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GraphEigenmapError(f"{option} {shown} lies below {existing}, which is a file; choose another path.")
    probe = existing / f".graph_eigenmap-write-test.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise GraphEigenmapError(f"{option} {shown} cannot be written ({existing}: {reason}); "
                                 "choose a location you can write to.") from None
    os.unlink(probe)


@contextlib.contextmanager
def removed_on_failure(*paths: str | Path, keep_on_interrupt: tuple[str, ...] = ()):
    """Take back what a failed command wrote to its outputs.

    On an exception inside the ``with`` block: an output (file or folder) that did not exist before is
    removed together with any missing parent folder the command created; in a folder that existed,
    the entries added since are removed. The exception then propagates. On a KeyboardInterrupt,
    entries named in ``keep_on_interrupt`` (a checkpoint) stay, so that the run can be resumed.

    Args:
        paths: the command's output files and folders.
        keep_on_interrupt: names inside an output folder to keep after an interrupt.
    """
    states = []
    for path in map(Path, paths):
        created = _missing_folders(path)
        before = set(os.listdir(path)) if path.is_dir() else None
        states.append((path, path.exists(), created[0] if created else None, before))
    try:
        yield
    except BaseException as err:
        keep = set(keep_on_interrupt) if isinstance(err, KeyboardInterrupt) else set()
        for path, existed, top, before in states:
            _take_back(path, existed, top, before, keep)
        raise


def _take_back(path: Path, existed: bool, top: Path | None, before: set | None, keep: set) -> None:
    if path.is_dir() and not path.is_symlink():
        added = [name for name in os.listdir(path) if before is None or name not in before]
        for name in added:
            if name not in keep:
                _remove(path / name)
        if any(name in keep for name in added):
            return
    if not existed and top is not None:
        _remove(top)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def save_fit(out_dir: str | Path, *, embedding: np.ndarray | None, backbone: np.ndarray | None,
             model: NeuralEigenfunctions, model_config: dict, metadata: dict, known_inputs=None) -> None:
    """Write the files of a fitted model to ``out_dir`` (see the module docstring).

    ``embedding`` and ``backbone`` None: they were written already (:func:`streamed_outputs`).
    """
    out = Path(out_dir)
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
                                 "give the --out folder of `graph-eigenmap fit`.")
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
    from graph_eigenmap.inputs import KnownInputs, parse_inputs

    folder, spec = Path(model_dir), parse_inputs(inputs)
    needed = ([KNOWN_INPUTS, KNOWN_DEGREES] if spec.hops else []) + ([INPUT_PROJECTION] if spec.rank else [])
    try:
        known = np.load(folder / KNOWN_INPUTS, mmap_mode="r") if spec.hops else None
        degrees = np.load(folder / KNOWN_DEGREES, allow_pickle=False) if spec.hops else None
        projection = np.load(folder / INPUT_PROJECTION, allow_pickle=False) if spec.rank else None
    except (OSError, ValueError) as err:
        raise GraphEigenmapError(f"{folder} lacks a readable {' / '.join(needed)} ({type(err).__name__}), which a model "
                                 f"fitted with --inputs {inputs} needs for new nodes; refit it.") from None
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
