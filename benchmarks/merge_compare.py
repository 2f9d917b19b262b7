"""Merge the compare.json files of one graph, each from a run of some method groups, into one compare.json (and .md).

    python benchmarks/merge_compare.py OUT/compare.json PART/compare.json [PART/compare.json ...]

For a graph whose whole ``bench compare`` does not fit one run (the device's 10-minute calls): the parts are run
with disjoint ``--methods`` and merged here. They must agree on the graph, k, runs and label ratios. The merged
report keeps the first part's header, every part's rows (by label ratio, then part), the union of the method
groups and timings, and each part's command, date and methods under ``parts``; written as compact JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from graph_eigenmap.artifacts import atomic_write  # noqa: E402
from graph_eigenmap.evaluation.compare import to_markdown  # noqa: E402

AGREE = ("dataset", "num_nodes", "k", "runs", "label_ratios")


def merge(parts: list[dict]) -> dict:
    first = parts[0]
    for part in parts[1:]:
        clash = [key for key in AGREE if part[key] != first[key]]
        if clash:
            raise SystemExit(f"the parts disagree on {', '.join(clash)}; merge only runs of one graph and protocol")
    merged = dict(first)
    merged["methods"] = [m for part in parts for m in part["methods"]]
    merged["results"] = [row for ratio in first["label_ratios"] for part in parts
                         for row in part["results"] if row["label_ratio"] == ratio]
    merged["timings_s"] = {key: value for part in parts for key, value in part["timings_s"].items()}
    merged["parts"] = [entry for part in parts for entry in  # a part merged before brings its own parts
                       part.get("parts", [dict(command=part["command"], date=part["date"], methods=part["methods"])])]
    for part in parts:  # optional sections (the fitted config, truncation, cost) from whichever part has them
        for key, value in part.items():
            merged.setdefault(key, value)
    return merged


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
