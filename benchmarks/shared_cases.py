"""Scaffolding of the benchmarks that run one process per shared graph × layout ("case") and collect a report.

A script gives :func:`case_arguments` its own options, a ``run_case(args, layout, name, graph, device)``
that returns the case's JSON-able result, and :func:`run_cases` runs every case (``--parallel`` at a time,
each in its own spawned process with ``--threads`` torch threads), writes OUT/<layout>_<name>.json as each
finishes and returns the cases in order, with the report's header (command, date, device).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import multiprocessing
import sys
from pathlib import Path

from compare_shared import DATASETS, dataset_path  # the shared graphs and their paths in each layout


def case_arguments(description: str) -> argparse.ArgumentParser:
    """The options every case benchmark takes: --data, --out, --device, --layouts, --datasets, --steps, --parallel, --threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--layouts", nargs="+", default=["ogb", "npz"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--steps", type=int, default=None, help="override the default steps (script check only)")
    parser.add_argument("--parallel", type=int, default=1, help="cases run at once, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    return parser


def _one_case(run_case, args: argparse.Namespace, job: tuple[str, str]) -> dict:
    import torch

    from graph_eigenmap import load_graph
    from graph_eigenmap.transfer import resolve_device

    layout, name = job
    torch.set_num_threads(args.threads)
    graph = load_graph(dataset_path(Path(args.data), layout, name))
    case = dict(layout=layout, graph=name) | run_case(args, layout, name, graph, resolve_device(args.device))
    (Path(args.out) / f"{layout}_{name}.json").write_text(json.dumps(case, indent=1) + "\n")
    print(f"done: {layout}/{name}", flush=True)
    return case


def run_cases(run_case, args: argparse.Namespace) -> dict:
    """Every case of ``args``; returns ``{command, date, device, cases: [case, ...]}`` in layout × dataset order."""
    import torch

    Path(args.out).mkdir(parents=True, exist_ok=True)
    report = dict(command="PYTHONPATH=. python " + " ".join(sys.argv),
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else "CPU")
    jobs = [(layout, name) for layout in args.layouts for name in args.datasets]
    with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
        report["cases"] = pool.map(functools.partial(_one_case, run_case, args), jobs)
    return report


def write_report(out: str | Path, stem: str, report: dict, to_markdown) -> None:
    """OUT/<stem>.json and OUT/<stem>.md (``to_markdown(report)``), and the Markdown on stdout."""
    out = Path(out)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    print(to_markdown(report))
