"""How benchmarks run ``graph-eigenmap`` as a subprocess, from an installed package or from this checkout."""

from __future__ import annotations

import importlib.util
import sys


def cli_command() -> list[str]:
    """``[python, -m, <the CLI module>]``: the installed ``graph_eigenmap_cli``, else this checkout's ``cli``
    (with the checkout on ``PYTHONPATH``, as on the GPU machine, where nothing is installed)."""
    module = "graph_eigenmap_cli.main" if importlib.util.find_spec("graph_eigenmap_cli") else "cli.main"
    return [sys.executable, "-m", module]
