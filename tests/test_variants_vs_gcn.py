"""benchmarks/variants_vs_gcn.py: the representation targets read off compare.json files."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "variants_vs_gcn", Path(__file__).resolve().parent.parent / "benchmarks" / "variants_vs_gcn.py")
variants_vs_gcn = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(variants_vs_gcn)


def _row(method, test, valid=0.5, ratio=0.01):
    return dict(method=method, label_ratio=ratio, test_acc=list(test), test_acc_mean=float(np.mean(test)),
                valid_acc_mean=valid)


def test_paired_gap_is_the_run_by_run_difference_in_points():
    ne, mlp = _row("NE", [0.30, 0.20, 0.25]), _row("MLP", [0.25, 0.22, 0.25])
    mean, error, wins, runs = variants_vs_gcn.paired_gap(ne, mlp)
    gaps = np.array([5.0, -2.0, 0.0])
    assert mean == pytest.approx(gaps.mean())
    assert error == pytest.approx(gaps.std(ddof=1) / np.sqrt(3))
    assert (wins, runs) == (1, 3)


def test_a_graph_free_miss_is_listed_with_its_paired_gap(tmp_path, capsys, monkeypatch):
    rows = [_row("NE stop-grad: eigenfunctions", [0.30, 0.20], valid=0.6),
            _row("NE stop-grad: eigenfunctions + C&S", [0.40, 0.40], valid=0.7),
            _row("GCN (supervised)", [0.35, 0.35]),
            _row("Features (linear probe)", [0.10, 0.10]),
            _row("MLP on features (supervised)", [0.28, 0.24]),
            _row("Laplacian Eigenmap, nontrivial + features", [0.10, 0.10])]
    (tmp_path / "ogb" / "cora").mkdir(parents=True)
    (tmp_path / "ogb" / "cora" / "compare.json").write_text(json.dumps(dict(label_ratios=[0.01], results=rows)))
    (tmp_path / "scripts").mkdir()  # a folder without compare.json files is not a layout
    lines = variants_vs_gcn.layout_table(tmp_path / "ogb")
    assert any("| cora | 1% | 40.0 | NE stop-grad: eigenfunctions + C&S | 35.0 | 25.0 |" in line for line in lines)
    assert "* cora, 1% labels, against MLP on features (supervised): -1.00 ± 3.00 points, ahead in 1 of 2 runs." in lines
    monkeypatch.setattr("sys.argv", ["variants_vs_gcn.py", str(tmp_path)])
    variants_vs_gcn.main()
    report = capsys.readouterr().out
    assert "## ogb layout" in report and "## scripts layout" not in report
