"""The ``graph-eigenmap`` command line: a thin Typer layer over :mod:`graph_eigenmap`."""
