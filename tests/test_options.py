"""Each training option is declared once (graph_eigenmap.config.TrainConfig); every list of options is made from it.

These tests fail when one side lacks a field: the estimator's parameters, the command line's ``fit`` options, the
PyG transform, the validation and the resumption of checkpoints written before an option existed.
"""

import dataclasses
import inspect

import pytest
import torch
import typer

from graph_eigenmap import NeuralEigenmap
from graph_eigenmap.config import Flag, Inputs, Interval, OneOf, TrainConfig, defaults, train_options, validate_options
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.registry import ESTIMATORS, KERNELS, OBJECTIVES, InputSpec
from graph_eigenmap_cli.main import app

FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


def _click_params(path: tuple[str, ...]) -> dict:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {param.name: param for param in command.params}


def test_the_estimator_has_every_option_with_its_default():
    signature = inspect.signature(NeuralEigenmap.__init__).parameters
    assert [name for name in signature if name != "self"] == FIELDS + ["device"]
    assert {name: signature[name].default for name in FIELDS} == defaults()


def test_fit_on_the_command_line_has_every_option_with_its_default():
    params = _click_params(("fit",))
    missing = [name for name in FIELDS if name not in params]
    assert not missing, f"graph-eigenmap fit lacks {missing}"
    assert {name: params[name].default for name in FIELDS} == defaults()
    assert "--warmup" in params["warmup"].opts and "--two-sided-gradient" in params["one_sided_gradient"].secondary_opts


def test_fit_help_lists_every_registered_choice():
    params = _click_params(("fit",))
    for name, registry in (("estimator", ESTIMATORS), ("kernel", KERNELS), ("objective", OBJECTIVES)):
        assert set(registry.names()) <= set(params[name].metavar.split("|")), name


def test_bench_compare_takes_its_neural_eigenmap_options_from_the_same_declaration():
    params = _click_params(("bench", "compare"))
    for name in ("steps", "width", "depth", "estimator", "kernel"):
        assert params[name].default == defaults()[name] and params[name].help == \
            next(f for f in train_options() if f.name == name).metadata["help"]


def test_the_transform_takes_every_option():
    from graph_eigenmap.transforms import AddNeuralEigenmapPE

    for name in FIELDS[1:]:
        AddNeuralEigenmapPE(4, **{name: defaults()[name]})
    with pytest.raises(GraphEigenmapError, match="unknown option"):
        AddNeuralEigenmapPE(4, not_an_option=1)


def _bad_value(constraint):
    if isinstance(constraint, Interval):
        return "many" if constraint.low is None else constraint.low - 1
    if isinstance(constraint, OneOf):
        return "no-such-choice"
    if isinstance(constraint, Flag):
        return "yes"
    assert isinstance(constraint, Inputs)
    return "propagated:0"


@pytest.mark.parametrize("field", train_options(), ids=lambda f: f.name)
def test_every_option_is_validated_from_its_constraint(field):
    constraint = field.metadata["constraint"]
    assert constraint.accepts(field.default, {"num_nodes": 100}), "the default must satisfy its own constraint"
    with pytest.raises(GraphEigenmapError, match=f"^`{field.name}` must be .*; got "):
        validate_options(TrainConfig(**{field.name: _bad_value(constraint)}), num_nodes=100)


def test_bounds_named_at_validation_are_checked_where_given():
    validate_options(TrainConfig(k=1000))  # no graph: k's upper bound is unknown
    with pytest.raises(GraphEigenmapError, match=r"`k` must be an int in \[1, 100\]; got 1000"):
        validate_options(TrainConfig(k=1000), num_nodes=100)


def test_inputs_are_parsed_once_into_a_typed_spec():
    config = TrainConfig(inputs="svd:100+propagated:3")
    assert config.inputs == InputSpec(hops=3, rank=100) and config.inputs == "svd:100+propagated:3"
    assert config.to_dict()["inputs"] == "svd:100+propagated:3" and TrainConfig().inputs == "auto"
    params = _click_params(("fit",))
    assert params["inputs"].callback(None, params["inputs"], "propagated:2") == InputSpec(hops=2)


def test_a_checkpoint_without_a_newer_option_resumes_with_its_default(tmp_path):
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.checkpoint import CHECKPOINT_NAME

    graph = "csbm:num_nodes=300,num_edges=1500,num_features=8"
    options = dict(k=4, width=16, inputs="features", device="cpu", progress=False, checkpoint_every=5)
    neural_eigenmap(graph, steps=10, out_dir=tmp_path, **options)
    payload = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    del payload["config"]["objective"]  # as written before the option existed
    torch.save(payload, tmp_path / CHECKPOINT_NAME)
    assert neural_eigenmap(graph, steps=15, out_dir=tmp_path, resume=True, **options).metadata["steps"] == 15
