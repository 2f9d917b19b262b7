"""benchmarks/merge_compare.py: the parts of one graph's bench compare merged into one report."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "merge_compare", Path(__file__).resolve().parent.parent / "benchmarks" / "merge_compare.py")
merge_compare = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(merge_compare)


def _part(methods, rows, **overrides):
    report = dict(dataset="cora", num_nodes=10, k=4, runs=2, label_ratios=[1.0, 0.1], methods=methods,
                  command=f"compare {','.join(methods)}", date="2026-12-01", timings_s={m: 1.0 for m in methods},
                  results=[dict(method=m, label_ratio=r) for m, r in rows])
    return report | overrides


def test_parts_merge_by_label_ratio_then_part_with_each_part_recorded():
    a = _part(["features"], [("Features", 1.0), ("Features", 0.1)], neural_eigenmap_config={"k": 4})
    b = _part(["gcn"], [("GCN", 1.0), ("GCN", 0.1)])
    merged = merge_compare.merge([a, b])
    assert [(row["method"], row["label_ratio"]) for row in merged["results"]] == [
        ("Features", 1.0), ("GCN", 1.0), ("Features", 0.1), ("GCN", 0.1)]
    assert merged["methods"] == ["features", "gcn"] and set(merged["timings_s"]) == {"features", "gcn"}
    assert [part["command"] for part in merged["parts"]] == ["compare features", "compare gcn"]
    assert merged["neural_eigenmap_config"] == {"k": 4}
    again = merge_compare.merge([merged, _part(["mlp"], [("MLP", 1.0)])])  # a merged report merged once more
    assert [part["command"] for part in again["parts"]] == ["compare features", "compare gcn", "compare mlp"]


def test_parts_of_different_protocols_are_refused():
    with pytest.raises(SystemExit, match="runs"):
        merge_compare.merge([_part(["features"], []), _part(["gcn"], [], runs=3)])


def test_a_group_rerun_later_replaces_the_older_rows_of_its_methods():
    old = _part(["features", "le"], [("Features", 1.0), ("LE", 1.0), ("Features", 0.1), ("LE", 0.1)])
    new = _part(["le"], [("LE", 1.0), ("LE", 0.1)], command="compare le (newer code)")
    new["results"] = [dict(row, test_acc_mean=0.9) for row in new["results"]]
    merged = merge_compare.merge([old, new])
    assert [(row["method"], row["label_ratio"], row.get("test_acc_mean")) for row in merged["results"]] == [
        ("Features", 1.0, None), ("LE", 1.0, 0.9), ("Features", 0.1, None), ("LE", 0.1, 0.9)]
    assert merged["methods"] == ["features", "le"]
    assert merged["parts"][1] == dict(command="compare le (newer code)", date="2026-12-01", methods=["le"],
                                      neural_eigenmap_fits="one (seed 0) for every run", replaces_rows_of=["LE"])
    assert "replaces_rows_of" not in merged["parts"][0]


def test_how_neural_eigenmap_was_fitted_stays_with_each_part():
    old = _part(["ne"], [("NE", 1.0)])  # written before the setting existed: one fit for every run
    new = _part(["ne"], [("NE", 1.0)], neural_eigenmap_fits="one per run (seed r for run r)")
    merged = merge_compare.merge([old, new])
    assert "neural_eigenmap_fits" not in merged
    assert [part["neural_eigenmap_fits"] for part in merged["parts"]] == ["one (seed 0) for every run",
                                                                          "one per run (seed r for run r)"]


def test_each_part_records_the_size_of_the_mlp_it_fitted():
    old = _part(["ne"], [("NE", 1.0)], neural_eigenmap_config={"k": 4, "width": 256, "depth": 2})
    wide = _part(["ne"], [("NE", 1.0)], neural_eigenmap_config={"k": 4, "width": 1024, "depth": 2})
    merged = merge_compare.merge([old, _part(["gcn"], [("GCN", 1.0)]), wide])
    assert [part.get("neural_eigenmap_mlp") for part in merged["parts"]] == [
        "width 256, depth 2", None, "width 1024, depth 2"]
    assert merged["parts"][2]["replaces_rows_of"] == ["NE"]
