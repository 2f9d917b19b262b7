"""Every choice the library offers by name, each registered once: estimators, kernels, inputs, objectives, optimizers.

Validation (:mod:`graph_eigenmap.config`), the command line's ``--help`` and ``docs/architecture.md`` all read
these tables, so a choice added here appears in all three at once. A choice whose code is a class or a function
names it as ``"module:attribute"``; it is imported the first time it is used (:meth:`Choice.load`), so this
module imports nothing heavy and the command line answers ``--help`` without torch.

Adding a choice: write its code in a new module (an objective in ``graph_eigenmap/objectives/``, an estimator
beside the others in :mod:`graph_eigenmap.estimators`) and add one ``register`` call below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from graph_eigenmap.errors import GraphEigenmapError


@dataclass(frozen=True, eq=False)
class Choice:
    """One registered choice.

    Attributes:
        name: what users type (``"sampled"``).
        help: one line for ``--help`` and the docs.
        target: ``"module:attribute"`` of its code, imported by :meth:`load`; None for a choice that is a
            setting rather than code (a kernel variant, described by its traits).
        traits: facts other modules decide by (``holds_kernel=True``), read without importing the code.
    """

    name: str
    help: str
    target: str | None = None
    traits: dict = field(default_factory=dict)

    def load(self):
        """The class or function ``target`` names (its module imported on the first call)."""
        return _import(self.target)

    def __getattr__(self, trait: str):
        """A trait by name: ``ESTIMATORS["rows"].holds_kernel``."""
        try:
            return self.traits[trait]
        except KeyError:
            raise AttributeError(f"{self.name!r} has no trait {trait!r}") from None


def _import(target: str):
    """The attribute a ``"module:attribute"`` target names (the module is imported once, by Python's own cache)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Registry:
    """Choices of one kind, by name, in the order they were registered.

    Args:
        parameter: the option these choices are values of (``"estimator"``), for messages.
        home: ``"module:attribute"`` of the code that acts on choices without a target of their own (the kernel
            variants are built by :func:`graph_eigenmap.kernel.full_kernel` from their traits).
    """

    def __init__(self, parameter: str, home: str | None = None):
        self.parameter, self.home = parameter, home
        self._choices: dict[str, Choice] = {}

    def register(self, name: str, help: str, target: str | None = None, **traits) -> Choice:
        """Add a choice; a name can be registered once."""
        if name in self._choices:
            raise ValueError(f"{self.parameter} {name!r} is registered already")
        choice = Choice(name, help, target, dict(traits))
        self._choices[name] = choice
        return choice

    def names(self) -> tuple[str, ...]:
        return tuple(self._choices)

    def __contains__(self, name) -> bool:
        return name in self._choices

    def __iter__(self):
        return iter(self._choices.values())

    def __getitem__(self, name: str) -> Choice:
        """The choice called ``name``; a one-line error listing the valid names otherwise."""
        try:
            return self._choices[name]
        except (KeyError, TypeError):
            raise GraphEigenmapError(f"`{self.parameter}` must be one of {', '.join(self._choices)}; "
                                     f"got {name!r}.") from None

    def load(self, name: str):
        """The code of the choice called ``name`` (:meth:`Choice.load`)."""
        return self[name].load()


ESTIMATORS = Registry("estimator")
"""How a training step estimates R = ΨᵀĀΨ / n (:mod:`graph_eigenmap.estimators`). Traits: ``holds_kernel`` (the
step multiplies by the whole kernel, so every node's inputs are read each step and exact quotients are at hand),
``draws_nodes`` (steps differ by their draw: data-parallel ranks then do different work), ``one_sided_only``,
``reads`` (the options it reads: another given to it is said to be ignored, :func:`graph_eigenmap.recipe.resolve`)."""
ESTIMATORS.register("full", "every node each step, C = ĀΨ by one sparse product: exact",
                    "graph_eigenmap.estimators:FullGraphEstimator",
                    holds_kernel=True, draws_nodes=False, one_sided_only=False, reads=())
ESTIMATORS.register("rows", "exact ĀΨ without autograd, the gradient through batch_size rows drawn uniformly",
                    "graph_eigenmap.estimators:RowBatchEstimator",
                    holds_kernel=True, draws_nodes=True, one_sided_only=True, reads=("batch_size",))
ESTIMATORS.register("sampled", "batch_size uniform seeds and fanout neighbours each: for graphs that do not fit",
                    "graph_eigenmap.estimators:NeighborSampledEstimator",
                    holds_kernel=False, draws_nodes=True, one_sided_only=False, reads=("batch_size", "fanout"))
ESTIMATORS.register("block", "the reference's two uniform batches I, J and the block Ā[I, J]",
                    "graph_eigenmap.estimators:BlockEstimator",
                    holds_kernel=False, draws_nodes=True, one_sided_only=False, reads=("batch_size",))

KERNELS = Registry("kernel", home="graph_eigenmap.kernel:full_kernel")
"""Which operator's top eigenfunctions are learned (:mod:`graph_eigenmap.kernel`). Traits: ``self_loops`` (A + I
is normalized), ``shift`` ((I + Ā)/2), ``nontrivial`` (each component's trivial eigenvector removed), ``formula``
(as recorded in metadata.json)."""
KERNELS.register("adjacency", "D^-1/2 A D^-1/2", self_loops=False, shift=False, nontrivial=False,
                 formula="D^-1/2 A D^-1/2")
KERNELS.register("gcn", "with self-loops, D~^-1/2 (A+I) D~^-1/2", self_loops=True, shift=False, nontrivial=False,
                 formula="D~^-1/2 (A+I) D~^-1/2")
KERNELS.register("shifted", "(I + Ā)/2: positive semi-definite, same eigenvectors", self_loops=False, shift=True,
                 nontrivial=False, formula="(I + D^-1/2 A D^-1/2)/2")
KERNELS.register("nontrivial", "each connected component's trivial eigenvector √d/√vol(c) removed", self_loops=False,
                 shift=False, nontrivial=True,
                 formula="D^-1/2 A D^-1/2 - sum_c u_c u_c^T (components' trivial eigenvectors removed)")

OBJECTIVES = Registry("objective")
"""The loss a step minimizes on (A, C), the estimator's ψ and ĀΨ at the drawn nodes (``graph_eigenmap/objectives/``).
Each target is a function ``loss(a, c, *, alpha, stop_gradient, c_has_gradient, reduce, exact) -> (loss, [k, k] R)``.
Trait ``normalized_outputs``: the model's L2-BN divides the outputs in training (NeuralEF) or only tracks their
scale, normalizing them after training (NeuralSVD, whose outputs carry √λ_j)."""
OBJECTIVES.register("neuralef", "NeuralEF: −Σ R_jj + α Σ_{i<j} R̂_ij², ordered by stop-gradient (Deng et al. 2022)",
                    "graph_eigenmap.objectives.neuralef:neuralef_loss", normalized_outputs=True)
OBJECTIVES.register("neuralsvd", "NeuralSVD: nested low-rank approximation −2 Σ R_jj + Σ G_jl², G = ΨᵀΨ/n, "
                    "unnormalized outputs ordered by sequential nesting; the top-k eigenvalues if positive "
                    "(Ryu et al. 2024)",
                    "graph_eigenmap.objectives.neuralsvd:neuralsvd_loss", normalized_outputs=False)

OPTIMIZERS = Registry("optimizer", home="graph_eigenmap.optim:make_optimizer")
"""The optimizer of the network's parameters (:mod:`graph_eigenmap.optim`). Trait ``lr``: its default rate."""
OPTIMIZERS.register("adamw", "AdamW (the default for an MLP)", lr=3e-3)
OPTIMIZERS.register("lars", "SGD with momentum and a layer-wise trust ratio (the reference's)", lr=0.3)
OPTIMIZERS.register("sgd", "plain SGD with a per-row rate (the default for the identity table)", lr=0.2)

REPRESENTATIONS = Registry("representation", home="graph_eigenmap.representation:node_representation")
"""What a fit offers for downstream use (:mod:`graph_eigenmap.representation`). Trait ``parts``: the blocks, side by
side, each scaled on its own by the probe."""
REPRESENTATIONS.register("backbone", "the MLP's penultimate features [n, width]", parts=("backbone",))
REPRESENTATIONS.register("embedding", "the k eigenfunctions [n, k]", parts=("embedding",))
REPRESENTATIONS.register("backbone+features", "the backbone beside the node's own features [n, width + d]",
                         parts=("backbone", "features"))
REPRESENTATIONS.register("embedding+features", "the k eigenfunctions beside the node's own features [n, k + d]",
                         parts=("embedding", "features"))

INPUT_PARTS = Registry("inputs", home="graph_eigenmap.inputs:model_input_graph")
"""The parts an ``inputs`` value is made of (:class:`InputSpec`, :mod:`graph_eigenmap.inputs`): ``features``
alone, or ``svd:D`` and ``propagated:K`` joined by ``+`` in that order. Traits: the part's number and its range."""
INPUT_PARTS.register("features", "the node's own features: a new node needs nothing else")
INPUT_PARTS.register("svd", "the features first reduced to D columns by truncated SVD (for wide bag-of-words rows)",
                     number="D", low=1, high=None)
INPUT_PARTS.register("propagated", "[X, ÂX, ..., Â^K X]: a new node then needs its edges to known nodes",
                     number="K", low=1, high=10)


def _part_grammar(part: Choice) -> str:
    bound = f"{part.low}..{part.high}" if part.high is not None else f">= {part.low}"
    return f"'{part.name}:{part.number}' ({part.number} {'in ' if part.high is not None else ''}{bound})"


INPUTS_GRAMMAR = (f"'features', {_part_grammar(INPUT_PARTS['propagated'])}, {_part_grammar(INPUT_PARTS['svd'])} or "
                  "'svd:D+propagated:K' (e.g. svd:100+propagated:3)")
"""What an ``inputs`` value may be, in words (from :data:`INPUT_PARTS`)."""


@dataclass(frozen=True, eq=False)
class InputSpec:
    """What the model reads for each node, parsed once from an ``inputs`` value (:func:`parse_inputs`).

    A spec equals another with the same numbers and the string of its :attr:`name` (``spec == "propagated:3"``).

    Attributes:
        hops: K of ``propagated:K`` (0: not propagated).
        rank: D of ``svd:D`` (0: not reduced).
    """

    hops: int = 0
    rank: int = 0

    @property
    def name(self) -> str:
        """The value's canonical spelling: ``"svd:100+propagated:3"``, ``"features"``."""
        parts = ([f"svd:{self.rank}"] if self.rank else []) + ([f"propagated:{self.hops}"] if self.hops else [])
        return "+".join(parts) or "features"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return self.name == other
        return isinstance(other, InputSpec) and (self.hops, self.rank) == (other.hops, other.rank)

    def __hash__(self) -> int:
        return hash(self.name)

    def width(self, num_features: int) -> int:
        """Columns the model reads for ``num_features`` feature columns: (K + 1) · (D or d)."""
        return (self.rank or num_features) * (self.hops + 1)


def parse_inputs(text) -> InputSpec:
    """``"features"``, ``"propagated:K"``, ``"svd:D"`` or ``"svd:D+propagated:K"`` -> :class:`InputSpec` (an
    InputSpec is returned as it is); a one-line error naming :data:`INPUTS_GRAMMAR` otherwise."""
    if isinstance(text, InputSpec):
        return text
    if text == "features":
        return InputSpec()
    values = {}
    for part in str(text).split("+"):
        kind, _, number = part.partition(":")
        if kind not in ("svd", "propagated") or kind in values or not number.isdigit():
            values = None
            break
        values[kind] = int(number)
    in_order = values and list(values) in (["propagated"], ["svd"], ["svd", "propagated"])
    if in_order and all(_in_range(INPUT_PARTS[kind], value) for kind, value in values.items()):
        return InputSpec(hops=values.get("propagated", 0), rank=values.get("svd", 0))
    raise GraphEigenmapError(f"`inputs` must be {INPUTS_GRAMMAR}; got {text!r}.")


def _in_range(part: Choice, value: int) -> bool:
    return value >= part.low and (part.high is None or value <= part.high)


def choices_markdown() -> str:
    """Every registered choice as Markdown tables, one per registry (``docs/architecture.md`` holds this text;
    ``python -m graph_eigenmap.registry`` prints it)."""
    sections = []
    for registry in (ESTIMATORS, KERNELS, OBJECTIVES, OPTIMIZERS, INPUT_PARTS, REPRESENTATIONS):
        rows = [f"| `{choice.name}` | {choice.help} | `{choice.target or registry.home}` |" for choice in registry]
        sections.append("\n".join([f"`{registry.parameter}`:", "", "| name | what it is | code |", "|---|---|---|",
                                   *rows]))
    return "\n\n".join(sections) + "\n"


if __name__ == "__main__":
    print(choices_markdown(), end="")
