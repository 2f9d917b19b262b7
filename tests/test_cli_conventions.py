"""Newcomer friction and CLI conventions: --version, --help without torch, one error style naming the option,
progress on stderr, resume summaries and extensions, wording, opt-in malloc, versions, the atomic writer."""

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import toy_arrays, write_ogb_folder
from typer.testing import CliRunner

from graph_eigenmap_cli.common import name_options
from graph_eigenmap_cli.main import app, label_ratio_text

runner = CliRunner()
SMALL = "csbm:num_nodes=300,num_edges=1500,num_classes=3,num_features=8"
FAST = ("--k", 4, "--width", 16, "--inputs", "features", "--device", "cpu")


def invoke(*args):
    return runner.invoke(app, list(map(str, args)))


def test_version_comes_from_package_metadata():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"graph-eigenmap {metadata.version('graph-eigenmap')}"


PARSE_ONLY = """
import sys
from graph_eigenmap_cli.main import app
for args in (["--help"], ["--version"], ["fit", "--help"], ["embed", "--help"], ["fit", "--out", "x", "--k", "0"],
             ["fit", "--norm", "x", "--out", "x"], ["nope"]):
    try:
        app(args, prog_name="graph-eigenmap")
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "numpy", "scipy", "pandas", "ogb", "torch_geometric", "rich", "graph_eigenmap.api",
                           "graph_eigenmap.data") if m in sys.modules)
print("HEAVY", heavy, file=sys.stderr)
"""


def test_help_version_and_option_errors_import_nothing_heavy():
    result = subprocess.run([sys.executable, "-c", PARSE_ONLY], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "HEAVY []", result.stderr


def test_help_keeps_shapes_in_brackets():
    for command, shape in (("embed", "[m, k]"), ("embed", "[2, E]"), ("evaluate", "[n, d]")):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and shape in " ".join(result.stdout.split()), (command, result.stdout)
    assert "graph-eigenmap fit --out runs/csbm --resume --steps 1000" in invoke("fit", "--help").stdout  # examples kept as lines


@pytest.mark.parametrize("args, needle", [
    (("fit", "--out", "x", "--kk", 3), "--kk"),
    (("fit", "--out", "x", "--norm", "batchnorm"), "'--norm'"),
    (("fit", "--out", "x", "--k", 0), "'--k'"),
    (("fit", "--out", "x", "--k", "many"), "'--k'"),
    (("fit",), "'--out'"),
    (("evaluate", "--embeddings", "x", "--runs", 0), "'--runs'"),
    (("bench", "compare", "--out", "x", "--kernel", "laplacian"), "'--kernel'"),
    (("no-such-command",), "no-such-command"),
])
def test_option_errors_are_one_line_naming_the_option(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert "--help" in lines[0] and "╭" not in result.stderr and "Usage:" not in result.stderr


def test_library_checks_name_the_option_not_the_field(tmp_path):
    result = invoke("fit", "--dataset", SMALL, "--out", tmp_path / "run", *FAST, "--k", 1000, "--quiet")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: --k must be an int in [1, 300]") and "'k'" not in line, line
    result = invoke("fit", "--dataset", SMALL, "--out", tmp_path / "run", *FAST, "--lr", 0, "--quiet")
    assert result.exit_code == 2 and "'--lr': must be a number > 0" in result.stderr, result.stderr  # while parsing
    result = invoke("fit", "--dataset", SMALL, "--out", tmp_path / "run", "--k", 4, "--width", 16, "--device", "cpu",
                    "--features", "identity", "--inputs", "propagated:2", "--quiet")
    assert result.exit_code == 2 and "error: --inputs propagated:2 needs node features; drop it for --features " \
        "identity." in result.stderr, result.stderr  # a library check: the values it names become options
    assert not (tmp_path / "run").exists()


def test_name_options_leaves_values_and_unknown_names_alone():
    parameters = ["k", "batch_size", "fanout", "features", "inputs", "resume", "one_sided_gradient", "backbone"]
    assert name_options("`batch_size` must be >= 2 and `fanout` >= 1", parameters) == "--batch-size must be >= 2 and --fanout >= 1"
    assert name_options("`inputs` must be 'features', 'propagated:K'; got 'features'", parameters) == \
        "--inputs must be 'features', 'propagated:K'; got 'features'"  # a value is never made a flag
    assert name_options("use `inputs='features'` or `inputs=svd:100`", parameters) == "use --inputs features or --inputs svd:100"
    assert name_options("pass `resume=True`; `one_sided_gradient=True`", parameters) == \
        "pass --resume; --one-sided-gradient"
    assert name_options("`save_backbone=False`", parameters) == "--no-backbone"
    assert name_options("`warmup` must lie in [0, 1)", parameters) == "warmup must lie in [0, 1)"  # not an option here


def test_progress_bar_goes_to_stderr(tmp_path, monkeypatch):
    import graph_eigenmap.progress as progress

    monkeypatch.setattr(progress, "SHOW_AFTER_EXPECTED_S", 0.0)  # any run counts as long
    result = invoke("fit", "--dataset", SMALL, "--out", tmp_path / "run", "--steps", 20, *FAST)
    assert result.exit_code == 0, result.output
    assert "20/20" in result.stderr and "━" in result.stderr
    assert "━" not in result.stdout and "20/20" not in result.stdout
    assert result.stdout.splitlines()[0].startswith("csbm (synthetic): 300 nodes")
    quiet = invoke("fit", "--dataset", SMALL, "--out", tmp_path / "quiet", "--steps", 20, *FAST, "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_progress_is_decided_by_expected_time_not_node_count(capsys):
    from graph_eigenmap.progress import SHOW_AFTER_EXPECTED_S, ProgressBar

    eigenvalues = torch.tensor([0.9, 0.8, 0.7])
    with ProgressBar(None, total=1000, completed=0) as slow:
        slow.started -= SHOW_AFTER_EXPECTED_S / 50  # 10 steps took 1/50 of the threshold: 1000 steps will take 2x it
        slow.update(10, 0.5, eigenvalues)
        assert slow.progress is not None
    with ProgressBar(None, total=20, completed=0) as fast:
        fast.started -= 0.001
        fast.update(10, 0.5, eigenvalues)
        assert fast.progress is None
    with ProgressBar(False, total=1000, completed=0) as off:
        off.started -= 100.0
        off.update(10, 0.5, eigenvalues)
        assert off.progress is None
    captured = capsys.readouterr()
    assert captured.out == "" and "10/1000" in captured.err


def test_resume_reports_the_steps_it_ran_and_extends_a_finished_run(tmp_path):
    run = tmp_path / "run"
    first = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 30, *FAST)
    assert first.exit_code == 0 and " 30 steps in " in first.stdout, first.output
    finished = np.load(run / "embeddings.npy")

    extended = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 50, "--resume", *FAST)
    assert extended.exit_code == 0, extended.output
    assert "20 steps (resumed at step 30, now 50)" in extended.stdout
    assert json.loads((run / "metadata.json").read_text())["steps"] == 50
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 50
    assert not np.allclose(np.load(run / "embeddings.npy"), finished)  # the extension trained

    again = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 50, "--resume", *FAST)
    assert again.exit_code == 0 and "0 steps (resumed at step 50, now 50)" in again.stdout, again.output

    before = sorted(p.name for p in run.iterdir())
    shorter = invoke("fit", "--dataset", "no-such-dataset", "--out", run, "--steps", 40, "--resume", *FAST)
    assert shorter.exit_code == 2
    assert "has already taken 50 steps" in shorter.stderr and "--steps 50 or more" in shorter.stderr
    assert sorted(p.name for p in run.iterdir()) == before


def test_evaluate_wording():
    assert label_ratio_text(1.0) == "all train labels"
    assert label_ratio_text(0.1) == "10% of the train labels" and label_ratio_text(0.01) == "1% of the train labels"


def test_evaluate_says_all_train_labels_and_one_run(tmp_path):
    from graph_eigenmap import load_graph

    np.save(tmp_path / "x.npy", load_graph(SMALL).features)
    result = invoke("evaluate", "--embeddings", tmp_path / "x.npy", "-d", SMALL, "--runs", 1, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "csbm (synthetic), all train labels, 1 run, probe: test accuracy" in result.stdout


def test_info_counts_eigenvalue_one_only_for_components_with_edges(tmp_path):
    edges, features, labels = toy_arrays()  # a ring with a chord and one isolated node: 2 components
    folder = write_ogb_folder(tmp_path / "ogbn_toy", edges, 12, features, labels)
    text = invoke("info", folder).stdout
    line = next(row for row in text.splitlines() if row.startswith("components"))
    assert line.split()[1] == "2" and "1 with edges, each adding one eigenvalue 1" in line
    assert "1 isolated nodes add eigenvalue 0" in line
    loops = next(row for row in invoke("info", folder, "--self-loops").stdout.splitlines() if row.startswith("components"))
    assert "each adds one eigenvalue 1" in loops  # with A + I the isolated node's row is 1 too


MALLOC_PROBE = """
import sys
import graph_eigenmap.host_memory as host_memory
from typer.testing import CliRunner
if sys.argv[1] == "library":
    from graph_eigenmap import neural_eigenmap
    neural_eigenmap("csbm:num_nodes=200,num_edges=800,num_features=4", k=2, steps=3, width=8, device="cpu")
else:
    from graph_eigenmap_cli.main import app
    result = CliRunner().invoke(app, ["fit", "-d", "csbm:num_nodes=200,num_edges=800,num_features=4", "--k", "2",
                                      "--steps", "3", "--width", "8", "--device", "cpu", "--quiet", "--out", sys.argv[2]])
    assert result.exit_code == 0, result.output
print(host_memory._applied)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_malloc_setting_is_opt_in_for_the_library_and_on_in_the_cli(tmp_path):
    def applied(*args):
        done = subprocess.run([sys.executable, "-c", MALLOC_PROBE, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    if os.environ.get("GRAPH_EIGENMAP_KEEP_FREED_MEMORY") == "0":
        pytest.skip("GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0 declines the setting")
    assert applied("library") == "False"
    assert applied("cli", str(tmp_path / "run")) == "True"


def test_versions_are_read_without_importing_torch_geometric():
    script = ("import sys; from graph_eigenmap.artifacts import environment; v = environment(); "
              "print(v['torch_geometric'], v['graph_eigenmap'], 'torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == [metadata.version("torch-geometric"), metadata.version("graph-eigenmap"), "False"]


def test_atomic_write_leaves_the_old_file_and_no_temporary_on_failure(tmp_path):
    from graph_eigenmap.files import atomic_write

    target = tmp_path / "old.bin"
    target.write_bytes(b"old")

    def half_then_fail(handle):
        handle.write(b"new, but only half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new" / "deeper" / "file.bin", half_then_fail)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["old.bin"] and target.read_bytes() == b"old"


def test_checkpoints_use_the_atomic_writer(tmp_path, monkeypatch):
    import graph_eigenmap.checkpoint as checkpoint

    run = tmp_path / "run"
    assert invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 20, "--checkpoint-every", 10, *FAST,
                  "--quiet").exit_code == 0
    saved = (run / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def save_then_crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(28, "No space left on device")

    writes = []
    real_atomic = checkpoint.atomic_write
    monkeypatch.setattr(checkpoint, "atomic_write", lambda path, write: writes.append(Path(path)) or real_atomic(path, write))
    monkeypatch.setattr(torch, "save", save_then_crash)
    result = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 30, "--checkpoint-every", 10, "--resume", *FAST,
                    "--quiet")
    assert result.exit_code != 0 and writes == [run / "checkpoint.pt"]
    assert (run / "checkpoint.pt").read_bytes() == saved  # the step-20 checkpoint is intact
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
