"""Files written safely: atomically, after checking the path, and taken back when a command fails.

Every file the library writes (outputs, checkpoints, result JSON) goes through :func:`atomic_write`: a
temporary file with a unique name beside the target, flushed to disk, then renamed into place, so a reader
sees the old file or the new one and never half of one. :func:`check_output_folder` and
:func:`check_output_file` test an output path before any work: it must be writable, must not be an input of the
same command (nor an existing file inside an input folder), and an existing file there must be of the kind the
command writes (:func:`file_kind`), so that a command never destroys what it reads or another kind of file.
:func:`removed_on_failure` takes back what a failed command wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from graph_eigenmap.errors import GraphEigenmapError

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
    """Write ``array`` as a float32 ``.npy`` file without pickles, atomically.

    A float32 array that is a whole ``.npy`` file mapped read-only (``np.load(..., mmap_mode="r")``, such as a fit's
    propagated inputs, :func:`graph_eigenmap.inputs.model_input_graph`) is linked into place (a hard link: no second
    copy on disk, nothing read or written) where the file system allows, else written.
    """
    if not _link_mapped(path, array):
        atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False))


def _link_mapped(path: str | Path, array) -> bool:
    """Hard-link the ``.npy`` file ``array`` maps read-only, whole, to ``path`` (atomically); False where it cannot."""
    if not (isinstance(array, np.memmap) and array.mode == "r" and array.dtype == np.float32
            and array.flags.c_contiguous and array.filename):
        return False
    path, source = Path(path), Path(array.filename)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
    try:
        whole = np.load(source, mmap_mode="r", allow_pickle=False)
        if whole.shape != array.shape or whole.dtype != array.dtype:
            return False
        del whole
        with open(source, "rb") as handle:
            os.fsync(handle.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, temporary)
        os.replace(temporary, path)
        return True
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False


def save_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=1) + "\n").encode()))


def check_output_folder(path: str | Path, option: str = "--out", *, inputs: dict | None = None) -> None:
    """Fail now, in one line, when ``path`` cannot become an output folder.

    Nothing is created: an existing folder must accept a new file, and where the folder is missing
    its nearest existing parent must.

    Args:
        path: the folder a command will write.
        option: the option that named it, for the message.
        inputs: the command's inputs, ``{option: path or None}`` (:func:`check_not_an_input`).

    Raises:
        GraphEigenmapError: ``path`` is a file, lies below a file, is an input, or is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GraphEigenmapError(f"{option} {path} is an existing file, not a folder; give a folder path "
                                 "(it is created if missing) or move the file away.")
    check_not_an_input(path, option, inputs)
    _check_writable(path, option)


def check_output_file(path: str | Path, option: str = "--out", example: str = "embeddings.npy", *,
                      kind: str | None = None, inputs: dict | None = None) -> None:
    """Fail now, in one line, when ``path`` cannot be written as a file (nothing is created).

    Args:
        path: the file a command will write.
        option: the option that named it, for the message.
        example: a file name to suggest when ``path`` is a folder or taken.
        kind: what the command writes there (``"npy"``, ``"json"``; see :func:`file_kind`): an existing file of
            another kind is refused rather than overwritten. None: any.
        inputs: the command's inputs, ``{option: path or None}`` (:func:`check_not_an_input`).

    Raises:
        GraphEigenmapError: ``path`` is a folder, an input, an existing file of another kind, lies below a
            file, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise GraphEigenmapError(f"{option} {path} is a folder; give a file path such as {path / example}.")
    check_not_an_input(path, option, inputs)
    if kind is not None and path.is_file():
        found = file_kind(path)
        if found not in (kind, "empty"):
            raise GraphEigenmapError(
                f"{option} {path} is an existing file of another kind: it holds {KIND_NAMES[found]}, and this "
                f"command writes {KIND_NAMES[kind]} there, which would destroy it; give a new path such as "
                f"{path.with_name(example)}, or move the file away.")
    _check_writable(path.parent, option, shown=path)


def check_not_an_input(path: str | Path, option: str, inputs: dict | None) -> None:
    """Fail when the output ``path`` is also an input of the command, or an existing file inside an input folder.

    Args:
        path: an output file or folder.
        option: the option that named it.
        inputs: ``{option: path or None}``: the files and folders the command reads (None: not given).

    Raises:
        GraphEigenmapError: writing ``path`` would replace, or write into, what the command reads.
    """
    path = Path(path)
    for name, source in (inputs or {}).items():
        if source is None:
            continue
        source = Path(source)
        if _same_path(path, source):
            raise GraphEigenmapError(f"{option} {path} is also {name}, an input of this command: writing it would "
                                     "replace what it reads; give another path.")
        if source.is_dir() and path.exists() and _inside(path, source):
            raise GraphEigenmapError(f"{option} {path} is a file of {name} {source}: writing it would replace "
                                     f"part of an input; give a path outside {source}, or a new file name.")


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


KIND_NAMES = {
    "npy": "a .npy array", "json": "a JSON file", "zip": "a zip archive (.npz, or a torch .pt file)",
    "gzip": "a gzip file", "pickle": "a pickle", "text": "a text file", "empty": "an empty file",
    "binary": "a binary file",
}
"""What :func:`file_kind` names, in words."""


def file_kind(path: str | Path) -> str:
    """What an existing file holds, from its first bytes: ``"npy"``, ``"json"``, ``"zip"`` (``.npz``, torch's
    ``.pt``), ``"gzip"``, ``"pickle"``, ``"text"``, ``"empty"`` or ``"binary"``."""
    with open(path, "rb") as stream:
        head = stream.read(512)
    if not head:
        return "empty"
    magic = {b"\x93NUMPY": "npy", b"PK\x03\x04": "zip", b"PK\x05\x06": "zip", b"\x1f\x8b": "gzip"}
    for prefix, kind in magic.items():
        if head.startswith(prefix):
            return kind
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    text = None
    for cut in range(4):  # the read may end inside a character
        try:
            text = head[:len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text is None or "\x00" in text:
        return "binary"
    return "json" if text.lstrip()[:1] in ("{", "[") else "text"


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
