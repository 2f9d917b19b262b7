"""Options shared by several commands, and the error handling every command uses."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from graph_eigenmap.errors import GraphEigenmapError

DEBUG_VARIABLE = "GRAPH_EIGENMAP_DEBUG"

DatasetArg = Annotated[
    str,
    typer.Argument(help="Dataset: csbm[:key=value,...], csbm-products, ogbn-NAME (with --root), an OGB-layout folder, or a .npz file."),
]
DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Dataset: csbm[:key=value,...], csbm-products, ogbn-NAME (with --root), an OGB-layout folder, or a .npz file."),
]
RootOpt = Annotated[Optional[Path], typer.Option(help="Folder that holds (or will hold) OGB datasets, for ogbn-* names.")]
CacheOpt = Annotated[Optional[Path], typer.Option(help="Cache for processed files (default ~/.cache/graph_eigenmap).")]
SplitSeedOpt = Annotated[int, typer.Option(help="Seed of the 10/10/80 split for sources without one (.npz).")]
DeviceOpt = Annotated[str, typer.Option(help="Device: auto (GPU when present), cpu, cuda, cuda:1, ...")]


def friendly_errors(command):
    """Turn a GraphEigenmapError into one line on stderr and exit code 2 (traceback with GRAPH_EIGENMAP_DEBUG=1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GraphEigenmapError as err:
            if os.environ.get(DEBUG_VARIABLE):
                traceback.print_exc()
            message = " ".join(str(err).split())
            print(f"error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(code=130) from None

    return wrapper



def load_npy(path: Path, what: str):
    """A .npy array without pickles, or a one-line GraphEigenmapError saying what is wrong with it."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GraphEigenmapError(f"no such file: {path}; give a .npy array of {what}.") from None
    except (ValueError, OSError, EOFError) as err:
        raise GraphEigenmapError(f"{path} is not a readable .npy array without pickles ({err}).") from None
