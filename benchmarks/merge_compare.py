"""Merge the compare.json files of one graph, each from a run of some method groups, into one compare.json (and .md).

    python benchmarks/merge_compare.py OUT/compare.json PART/compare.json [PART/compare.json ...]

For a graph whose whole ``bench compare`` does not fit one run (the device's 10-minute calls): the parts are run
with disjoint ``--methods`` and merged here. They must agree on the graph, k, runs and label ratios. The merged
report keeps the first part's header, every part's rows (by label ratio, then part), the union of the method
groups and timings, and each part's command, date and methods under ``parts``; written as compact JSON.

A group re-run later (newer code) is merged after the older report: a method's rows in a later part replace that
method's rows of the earlier parts at the same label ratio, and the later part's ``parts`` entry says so. A part
whose report records its Neural Eigenmap config also records its MLP's size (``neural_eigenmap_mlp``) in its entry:
the merged header keeps the first part's config, and parts may have been fitted at another width.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from graph_eigenmap.evaluation.compare import to_markdown  # noqa: E402
from graph_eigenmap.files import atomic_write  # noqa: E402

AGREE = ("dataset", "num_nodes", "k", "runs", "label_ratios")
PER_PART = {"neural_eigenmap_fits": "one (seed 0) for every run"}
"""Settings that belong to each part's rows (with their value in reports written before the setting existed):
recorded in the part's ``parts`` entry, not in the merged header."""


def merge(parts: list[dict]) -> dict:
    first = parts[0]
    for part in parts[1:]:
        clash = [key for key in AGREE if part[key] != first[key]]
        if clash:
            raise SystemExit(f"the parts disagree on {', '.join(clash)}; merge only runs of one graph and protocol")
    merged = dict(first)
    merged["methods"] = list(dict.fromkeys(m for part in parts for m in part["methods"]))
    ratios = first["label_ratios"]
    later = [{ratio: _methods(parts[index + 1:], ratio) for ratio in ratios} for index in range(len(parts))]
    merged["results"] = [row for ratio in ratios for index, part in enumerate(parts)
                         for row in _rows(part, ratio) if row["method"] not in later[index][ratio]]
    merged["timings_s"] = {key: value for part in parts for key, value in part["timings_s"].items()}
    merged["parts"] = []
    for index, part in enumerate(parts):  # a part merged before brings its own parts
        own = dict(command=part["command"], date=part["date"], methods=part["methods"],
                   **{key: part[key] for key in PER_PART if key in part}, **_mlp(part))
        entries = [PER_PART | entry for entry in part.get("parts", [own])]  # entries written before a setting existed get its old value
        replaced = sorted(set().union(*(_methods(parts[index:index + 1], ratio) & _methods(parts[:index], ratio)
                                        for ratio in ratios)))
        merged["parts"] += [dict(entry, replaces_rows_of=replaced) if replaced else entry for entry in entries]
    for part in parts:  # optional sections (the fitted config, truncation, cost) from whichever part has them
        for key, value in part.items():
            merged.setdefault(key, value)
    for key in PER_PART:
        merged.pop(key, None)
    return merged


def _mlp(part: dict) -> dict:
    """``{"neural_eigenmap_mlp": "width W, depth D"}`` of a report that records its Neural Eigenmap config, else {}."""
    config = part.get("neural_eigenmap_config")
    return dict(neural_eigenmap_mlp=f"width {config['width']}, depth {config['depth']}") if config and "width" in config else {}


def _rows(part: dict, ratio: float) -> list[dict]:
    return [row for row in part["results"] if row["label_ratio"] == ratio]


def _methods(parts: list[dict], ratio: float) -> set[str]:
    return {row["method"] for part in parts for row in _rows(part, ratio)}


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    merged = merge([json.loads(Path(path).read_text()) for path in sys.argv[2:]])
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(merged, separators=(",", ":")) + "\n"  # compact: a graph's merged rows stay well under 1 MB
    atomic_write(out, lambda handle: handle.write(text.encode()))
    out.with_suffix(".md").write_text(to_markdown(merged))


if __name__ == "__main__":
    main()
