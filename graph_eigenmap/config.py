"""Training options, each declared once: the fields of :class:`TrainConfig`, with type, default, constraint and help.

Everything else is made from this declaration: :class:`~graph_eigenmap.api.NeuralEigenmap`'s parameters, the
command line's ``fit`` options (``graph_eigenmap_cli.options``), TrainConfig's own docstring, and
:func:`validate_options`, which checks every field against its constraint once for every caller (as
scikit-learn's ``_parameter_constraints`` do). What ``"auto"`` and None resolve to for a given graph and device is
decided in :mod:`graph_eigenmap.recipe`.

Messages name parameters in backquotes (```k```, ```inputs='features'```); the command line turns those into its
flags (``--k``, ``--inputs features``). This module imports nothing heavy: the command line reads it for ``--help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from numbers import Integral, Real

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.registry import (
    ESTIMATORS,
    INPUTS_GRAMMAR,
    KERNELS,
    OBJECTIVES,
    OPTIMIZERS,
    REPRESENTATIONS,
    InputSpec,
    Registry,
    parse_inputs,
)

FEATURE_MODES = ("auto", "input", "identity")
"""``features``: node features when the graph has them (auto), an MLP on them (input), or a free vector per node."""
FEATURE_STORAGES = ("auto", "float32", "bfloat16", "float16", "host")
"""``feature_storage`` (:mod:`graph_eigenmap.feature_store`)."""
NORMS = ("layer", "batch", "none")
ACTIVATIONS = ("gelu", "relu")


class Constraint:
    """What values a parameter accepts; ``bounds`` name limits known only at validation (``num_nodes``)."""

    type: type = object
    none: bool = False

    def accepts(self, value, bounds: dict) -> bool:
        raise NotImplementedError

    def describe(self, bounds: dict) -> str:
        raise NotImplementedError


class Interval(Constraint):
    """A number of ``kind`` (int or float) between ``low`` and ``high`` (None: unbounded; a string: a bound named at
    validation, skipped when it is not given). ``closed``: which ends belong, ``"both"``, ``"left"``, ``"right"``
    or ``"neither"``. ``none``: None is accepted too."""

    def __init__(self, kind: type, low=None, high=None, *, closed: str = "both", none: bool = False):
        self.type, self.low, self.high, self.closed, self.none = kind, low, high, closed, none

    def _bound(self, bound, bounds: dict):
        return bounds.get(bound) if isinstance(bound, str) else bound

    def accepts(self, value, bounds: dict) -> bool:
        if value is None:
            return self.none
        number = Integral if self.type is int else Real
        if isinstance(value, bool) or not isinstance(value, number):
            return False
        low, high = self._bound(self.low, bounds), self._bound(self.high, bounds)
        left = low is None or (value >= low if self.closed in ("both", "left") else value > low)
        right = high is None or (value <= high if self.closed in ("both", "right") else value < high)
        return left and right

    def describe(self, bounds: dict) -> str:
        kind = "an int" if self.type is int else "a number"
        low, high = self._bound(self.low, bounds), self._bound(self.high, bounds)
        if low is not None and high is not None:
            brackets = "[" if self.closed in ("both", "left") else "(", "]" if self.closed in ("both", "right") else ")"
            text = f"{kind} in {brackets[0]}{low}, {high}{brackets[1]}"
        elif low is not None:
            text = f"{kind} {'>=' if self.closed in ('both', 'left') else '>'} {low}"
        elif high is not None:
            text = f"{kind} {'<=' if self.closed in ('both', 'right') else '<'} {high}"
        else:
            text = kind
        return text + (" or None" if self.none else "")


class OneOf(Constraint):
    """One of a registry's names (or of a tuple of names), plus ``extra`` values such as ``"auto"``."""

    type = str

    def __init__(self, choices: Registry | tuple, *, extra: tuple = ("auto",)):
        self.choices, self.extra = choices, extra

    def names(self) -> tuple[str, ...]:
        registered = self.choices.names() if isinstance(self.choices, Registry) else tuple(self.choices)
        return tuple(name for name in self.extra if name not in registered) + registered

    def accepts(self, value, bounds: dict) -> bool:
        return isinstance(value, str) and value in self.names()

    def describe(self, bounds: dict) -> str:
        return "one of " + ", ".join(self.names())


class Flag(Constraint):
    """True or False (or None, meaning "decide for me", when ``none``)."""

    type = bool

    def __init__(self, *, none: bool = False):
        self.none = none

    def accepts(self, value, bounds: dict) -> bool:
        return isinstance(value, bool) or (value is None and self.none)

    def describe(self, bounds: dict) -> str:
        return "True or False" + (" or None" if self.none else "")


class Inputs(Constraint):
    """``"auto"``, an :class:`~graph_eigenmap.registry.InputSpec`, or a value :func:`parse_inputs` reads."""

    type = str

    def accepts(self, value, bounds: dict) -> bool:
        if value == "auto" or isinstance(value, InputSpec):
            return True
        try:
            parse_inputs(value)
        except GraphEigenmapError:
            return False
        return True

    def describe(self, bounds: dict) -> str:
        return f"'auto', {INPUTS_GRAMMAR}"


def option(default, help: str, constraint: Constraint, *, flags: str | None = None):
    """A :class:`TrainConfig` field: its ``default``, one line of ``help``, its ``constraint`` and, for the command
    line, ``flags`` when they differ from ``--name`` (``"--one-sided-gradient/--two-sided-gradient"``)."""
    return field(default=default, metadata=dict(help=help, constraint=constraint, flags=flags))


@dataclass(frozen=True)
class TrainConfig:
    k: int = option(64, "Number of eigenfunctions.", Interval(int, 1, "num_nodes"))
    features: str = option(
        "auto", "auto (node features if the graph has them, else identity), input (an MLP on the node features) or "
                "identity (a free vector per node: a scalable, exact Laplacian Eigenmap).",
        OneOf(FEATURE_MODES, extra=()))
    width: int = option(256, "MLP width. With inputs='features' on graphs of thousands to tens of thousands of nodes, "
                             "1024 probes better on valid (benchmarks/results/quality/capacity_sweep).",
                        Interval(int, 1))
    depth: int = option(2, "MLP linear layers before the k outputs.", Interval(int, 1))
    residual: bool = option(False, "Residual MLP.", Flag())
    norm: str = option("layer", "Normalization between the MLP's layers: layer, batch or none.", OneOf(NORMS, extra=()))
    dropout: float = option(0.0, "Dropout probability, in [0, 1).", Interval(float, 0, 1, closed="left"))
    activation: str = option("gelu", "The MLP's activation: gelu or relu.", OneOf(ACTIVATIONS, extra=()))
    kernel: str = option("adjacency", "Which operator's top eigenfunctions: " + "; ".join(
        f"{choice.name} ({choice.help})" for choice in KERNELS) + ".", OneOf(KERNELS, extra=()))
    inputs: str | InputSpec = option(
        "auto", "What the MLP reads: auto (propagated:3 for an MLP on node features when they fit in a quarter of host "
                "memory; svd:100+propagated:3 for 256 feature columns or more), features (a new node needs nothing "
                "else), propagated:K ([X, ÂX, ..., Â^K X]; new nodes then need their edges), svd:D or "
                "svd:D+propagated:K (the features first reduced to D columns by truncated SVD).", Inputs())
    objective: str = option("neuralef", "The loss: " + "; ".join(f"{c.name} ({c.help})" for c in OBJECTIVES) + ".",
                            OneOf(OBJECTIVES, extra=()))
    estimator: str = option(
        "auto", "How a step estimates ΨᵀĀΨ: auto (rows or full when the graph fits in half the free device memory, "
                "else sampled); " + "; ".join(f"{c.name} ({c.help})" for c in ESTIMATORS) + ".", OneOf(ESTIMATORS))
    batch_size: int = option(4096, "Rows with gradient (rows) or seed nodes (sampled, block) per step.",
                             Interval(int, 2))
    fanout: int = option(8, "Neighbours drawn per seed (sampled).", Interval(int, 1))
    steps: int = option(500, "Optimizer steps in all; with resume, more than the checkpoint's extends the run.",
                        Interval(int, 1))
    optimizer: str = option("auto", "auto (AdamW for an MLP, SGD for identity), " + ", ".join(OPTIMIZERS.names()) + ".",
                            OneOf(OPTIMIZERS))
    lr: float | None = option(None, "Learning rate; None: the optimizer's default (" + ", ".join(
        f"{c.name} {c.lr:g}" for c in OPTIMIZERS) + "); SGD's is per row.",
        Interval(float, 0, closed="neither", none=True))
    weight_decay: float = option(0.0, "Decoupled weight decay.", Interval(float, 0))
    warmup: float = option(0.05, "Fraction of the steps of linear learning-rate warm-up, in [0, 1).",
                           Interval(float, 0, 1, closed="left"))
    alpha: float = option(1.0, "Weight of the orthogonality penalty.", Interval(float, 0))
    reorder: bool = option(True, "With stop-gradient, permute the outputs into eigenvalue order during the first "
                                 "95% of training whenever they are not (outputs in the wrong order sit at a saddle).",
                           Flag())
    stop_gradient: bool = option(True, "Ordered eigenfunctions (on) or only their span (off).", Flag())
    rayleigh_ritz: bool = option(False, "After training, solve the output layer by Rayleigh-Ritz on the backbone's "
                                        "span: outputs exactly ordered.", Flag())
    one_sided_gradient: bool | None = option(
        None, "Estimate ĀΨ without autograd and double the gradient through the drawn nodes (same gradient, less "
              "work). None: one-sided, except for identity features with a sampling estimator.", Flag(none=True),
        flags="--one-sided-gradient/--two-sided-gradient")
    seed: int = option(0, "Random seed of the initialization and the sampler.", Interval(int))
    bf16: bool = option(True, "bfloat16 autocast on a GPU (ignored on a CPU).", Flag())
    compile: bool = option(False, "torch.compile the network (fused layers; compiling first takes up to a minute).",
                           Flag())
    checkpoint_every: int = option(200, "Steps between checkpoints (0: none).", Interval(int, 0))
    feature_storage: str = option(
        "auto", "Where the MLP's inputs live while training: on the device (float32, or bfloat16/float16 in half the "
                "bytes) or in host memory (rows copied each step; sampled and block estimators). auto: float32 when "
                "they fit in a quarter of the device's free memory, else bfloat16 when that fits in half, else host.",
        OneOf(FEATURE_STORAGES, extra=()))

    representation: str = option(
        "auto", "What the fit recommends for downstream use (written, named in metadata.json, returned by transform): "
                "auto (chosen from the graph by graph_eigenmap.recipe, label-free), " + ", ".join(
                    f"{c.name} ({c.help})" for c in REPRESENTATIONS) + ".", OneOf(REPRESENTATIONS))

    def __post_init__(self):
        if self.inputs != "auto" and not isinstance(self.inputs, InputSpec) and isinstance(self.inputs, str):
            try:  # parsed once, here: the typed spec travels from here to the model
                object.__setattr__(self, "inputs", parse_inputs(self.inputs))
            except GraphEigenmapError:
                pass  # validate_options reports it with every other problem

    @property
    def identity(self) -> bool:
        """Whether the model is the free table of one vector per node (``features="identity"``)."""
        return self.features == "identity"

    def to_dict(self) -> dict:
        """Every field, with ``inputs`` spelled as a string (as metadata.json, model.json and checkpoints keep it)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {name: str(value) if isinstance(value, InputSpec) else value for name, value in values.items()}


def train_options() -> tuple[dataclasses.Field, ...]:
    """The fields of :class:`TrainConfig`, in declaration order (what every other list of options is made from)."""
    return dataclasses.fields(TrainConfig)


def defaults() -> dict:
    """``{name: default}`` of every training option."""
    return {f.name: f.default for f in train_options()}


def validate_options(config: TrainConfig, **bounds) -> None:
    """Check every field against its declared constraint; one error naming every problem.

    Args:
        bounds: limits the constraints name, such as ``num_nodes`` for ``k`` (unchecked when absent).

    Raises:
        GraphEigenmapError: "`k` must be an int in [1, 300]; got 1000." (every bad field, joined by "; ").
    """
    problems = [f"`{f.name}` must be {f.metadata['constraint'].describe(bounds)}; got {getattr(config, f.name)!r}"
                for f in train_options() if not f.metadata["constraint"].accepts(getattr(config, f.name), bounds)]
    if problems:
        raise GraphEigenmapError("; ".join(problems) + ".")


def _docstring() -> str:
    lines = ["Everything that determines a training run; each field is one option, declared once (see the module).",
             "", "Attributes:"]
    for f in train_options():
        lines.append(f"    {f.name}: {f.metadata['help']} Default {f.default!r}; "
                     f"{f.metadata['constraint'].describe({'num_nodes': 'n'})}.")
    return "\n".join(lines)


TrainConfig.__doc__ = _docstring()
