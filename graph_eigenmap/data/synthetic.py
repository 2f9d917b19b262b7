"""A synthetic contextual stochastic block model (CSBM), the default dataset.

Graphs from here are **synthetic**: their accuracy numbers say nothing about real data and are
labelled as such wherever they appear. They exist for speed and scale tests (``csbm-products``
has ogbn-products' shape) and so that the main command runs with no download.

Model (seeded, vectorized, on CPU or GPU):
    * labels y_i uniform over C classes;
    * degree propensities θ_i = exp(s·z_i), z_i ~ N(0, 1) (s = ``degree_spread``; s = 0 gives
      Poisson degrees, s = 1 a heavy tail);
    * each edge picks its first end u with probability ∝ θ; with probability h (``homophily``)
      its other end v from u's class, otherwise from a uniformly chosen other class, ∝ θ inside
      the class. Self-loops and repeats are discarded and edges drawn until exactly
      ``num_edges`` distinct undirected edges remain;
    * features x_i = μ_{y_i} + ε_i, ε_i ~ N(0, I_d), class means μ_c ~ N(0, (r²/d) I_d), so
      ‖μ_c‖ ≈ r (``feature_snr``) against unit noise in every direction.

The same seed gives the same graph on the same device type (CPU and CUDA generators differ).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.graph import CleaningReport, Graph, csr_from_sorted_keys, mapped_file, random_split
from graph_eigenmap.data.sparse import row_blocks
from graph_eigenmap.data.validate import check_labels
from graph_eigenmap.errors import DataError

DEFAULTS = dict(
    num_nodes=10_000, num_edges=100_000, num_classes=10, num_features=100,
    homophily=0.8, feature_snr=1.5, degree_spread=1.0,
)
PRODUCTS_SHAPE = dict(num_nodes=2_449_029, num_edges=61_859_140, num_classes=47, num_features=100)
PAPERS100M_SHAPE = dict(num_nodes=111_059_956, num_edges=1_615_685_872, num_classes=172, num_features=128)
"""ogbn-papers100M's shape: generate it on a GPU (``device="cuda"``). On the host it takes a 26 GB int64 CSR
index array, 13 GB of float32 edge weights and 57 GB of float32 features. Time and memory measured on one
GPU: ``benchmarks/results/scale/speed_papers100m_shape.json``."""
EDGE_DRAW_BLOCK = 1 << 27
"""Edges drawn per block (the one-time working arrays of a draw are a few times this many int64)."""
CSR_BLOCK_ENTRIES = 1 << 28
"""Stored adjacency entries sorted at once when building the CSR matrix (:func:`_symmetric_csr`)."""
CSR_HOST_BLOCK_ENTRIES = 1 << 24
"""The same on a CPU, where the sort's working arrays are host memory (the CSR is the same either way)."""
MEAN_BLOCK_ROWS = 1 << 16
"""Rows whose class means are added at once (no ``[n, d]`` copy of the means of all rows)."""
RANDPERM_MAX = 1 << 30
"""Distinct keys up to which the surplus is dropped by one permutation of all of them (:func:`_keep_mask` beyond)."""
FEATURE_BLOCK_ELEMENTS = 1 << 28
"""Feature values generated per block (1 GiB of float32)."""
PRESETS = {"csbm": DEFAULTS, "csbm-products": {**DEFAULTS, **PRODUCTS_SHAPE},
           "csbm-papers100m": {**DEFAULTS, **PAPERS100M_SHAPE}}


def csbm(
    num_nodes: int = DEFAULTS["num_nodes"],
    num_edges: int = DEFAULTS["num_edges"],
    num_classes: int = DEFAULTS["num_classes"],
    num_features: int = DEFAULTS["num_features"],
    *,
    homophily: float = DEFAULTS["homophily"],
    feature_snr: float = DEFAULTS["feature_snr"],
    degree_spread: float = DEFAULTS["degree_spread"],
    seed: int = 0,
    device: str | torch.device = "cpu",
    name: str = "csbm",
    arrays_dir: str | Path | None = None,
) -> Graph:
    """Generate a contextual stochastic block model graph (synthetic).

    Args:
        num_nodes: n (default 10,000).
        num_edges: distinct undirected edges, exactly (default 100,000: mean degree 20).
        num_classes: C (default 10).
        num_features: d (default 100).
        homophily: fraction h of edges drawn inside a class (default 0.8; 1/C is no signal).
        feature_snr: norm r of the class means against unit noise (default 1.5).
        degree_spread: s, the log-normal spread of degree propensities (default 1.0).
        seed: random seed (default 0); also seeds the 10/10/80 split.
        device: where to generate (``"cuda"`` is much faster at ogbn-products' size).
        arrays_dir: a folder (created) where the features and the CSR arrays are written as ``.npy`` files as they
            are made, and from which they are memory-mapped read-only: pages of files, which the kernel can write
            back and drop, instead of anonymous memory (papers100M's shape: 57 GB of features and 40 GB of CSR). The
            caller removes the folder when done with the graph (the maps stay valid). None: in memory.

    Returns:
        A :class:`Graph` with ``synthetic=True``: adjacency ``[n, n]``, features ``[n, d]``
        float32, labels ``[n]`` int64 in ``[0, C)``.

    Cost (measured): ogbn-products' shape (2,449,029 nodes, 61,859,140 edges, d = 100) takes
    75 s and 6.2 GiB peak host memory on a 2-core CPU (``benchmarks/results/scale/csbm_generation_cpu.json``),
    2.2 s on an H100 with ``device="cuda"`` (``benchmarks/results/scale/products_shape_gpu.json``);
    ogbn-papers100M's shape (111M nodes, 1.6B edges, d = 128) 65 s on an H200, with 53 GiB peak GPU and
    93 GiB peak host memory (``benchmarks/results/scale/speed_papers100m_shape.json``).

    Example:
        >>> graph = csbm(1000, 5000, 4, 16, seed=0)
        >>> graph.num_nodes, graph.num_edges
        (1000, 5000)
    """
    _check_params(num_nodes, num_edges, num_classes, num_features, homophily, feature_snr, degree_spread, seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    labels = torch.randint(num_classes, (num_nodes,), generator=gen, device=device)
    sampler = _ClassSampler(labels, num_classes, degree_spread, gen)
    keys = _distinct_edges(sampler, num_nodes, num_edges, homophily, gen)
    del sampler
    folder = None if arrays_dir is None else Path(arrays_dir)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    adjacency = _symmetric_csr(keys, num_nodes, folder)
    del keys
    features = _features(labels, num_classes, num_features, feature_snr, gen,
                         None if folder is None else _new_file(folder / "features.npy", (num_nodes, num_features)))
    if folder is not None:
        adjacency, features = _mapped_csr(adjacency, folder), mapped_file(features, folder / "features.npy")
    if labels.is_cuda:
        torch.cuda.empty_cache()  # hand back the generator's working memory (tens of GB at papers100M's size)
    params = dict(num_nodes=num_nodes, num_edges=num_edges, num_classes=num_classes, num_features=num_features,
                  homophily=homophily, feature_snr=feature_snr, degree_spread=degree_spread, seed=seed)
    where = f"{name} (generated)"
    graph = Graph(
        adjacency=adjacency,
        features=features,
        labels=check_labels(labels.cpu().numpy().astype(np.int64), num_nodes, where, num_classes=num_classes),
        # slices of one permutation: disjoint by construction (check_split would take 6 s at papers100M's shape)
        split=random_split(num_nodes, seed=seed),
        name=name,
        source="synthetic csbm(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")",
        cleaning=CleaningReport(2 * num_edges, 0, 0, 0),
        synthetic=True,
    )
    graph.extra["csbm"] = params
    return graph


class _ClassSampler:
    """Draws nodes ∝ θ, from all nodes or from given classes, by inverse CDF over class-sorted nodes."""

    def __init__(self, labels: torch.Tensor, num_classes: int, spread: float, gen: torch.Generator):
        device = labels.device
        theta = torch.exp(spread * torch.randn(labels.numel(), generator=gen, device=device, dtype=torch.float64))
        self.order = torch.argsort(labels)
        self.labels = labels
        self.cum = torch.cumsum(theta[self.order], 0)
        counts = torch.bincount(labels, minlength=num_classes)
        self.end = torch.cumsum(counts, 0)
        self.start = self.end - counts
        cum0 = torch.cat([self.cum.new_zeros(1), self.cum])
        self.low, self.high = cum0[self.start], cum0[self.end]
        self.num_classes = num_classes
        self.gen = gen

    def any_node(self, count: int) -> torch.Tensor:
        r = torch.rand(count, generator=self.gen, device=self.cum.device, dtype=torch.float64) * self.cum[-1]
        return self.order[torch.searchsorted(self.cum, r).clamp(max=self.cum.numel() - 1)]

    def in_class(self, classes: torch.Tensor) -> torch.Tensor:
        r = torch.rand(classes.numel(), generator=self.gen, device=classes.device, dtype=torch.float64)
        target = self.low[classes] + r * (self.high[classes] - self.low[classes])
        pos = torch.searchsorted(self.cum, target)
        pos = torch.minimum(torch.maximum(pos, self.start[classes]), self.end[classes] - 1)
        return self.order[pos]


def _distinct_edges(sampler: _ClassSampler, n: int, m: int, homophily: float, gen: torch.Generator) -> torch.Tensor:
    """``[m]`` sorted keys ``min(u,v) * n + max(u,v)`` of m distinct undirected non-loop edges."""
    device = sampler.cum.device
    keys = torch.empty(0, dtype=torch.int64, device=device)
    for _ in range(50):
        missing = m - keys.numel()
        if missing <= 0:
            break
        draw = int(missing * 1.05) + 1024
        new = [_draw_keys(sampler, n, min(EDGE_DRAW_BLOCK, draw - begin), homophily, gen)
               for begin in range(0, draw, EDGE_DRAW_BLOCK)]
        keys = torch.unique(torch.cat([keys, *new]))
        del new
    else:
        raise DataError(f"csbm: could not place {m:,} distinct edges among {n:,} nodes; ask for fewer edges.")
    if keys.numel() > m:
        if keys.numel() <= RANDPERM_MAX:
            pick = torch.randperm(keys.numel(), generator=gen, device=device)[:m]
            keys = keys[pick].sort().values
        else:
            keys = keys[_keep_mask(keys.numel(), keys.numel() - m, gen, device)]  # stays sorted
    return keys


def _keep_mask(size: int, drop: int, gen: torch.Generator, device) -> torch.Tensor:
    """``[size]`` bool, False at ``drop`` positions chosen uniformly without replacement (``drop`` << ``size``).

    Distinct positions from repeated uniform draws form a uniformly random set given their number, and a
    uniform subset of it of exactly ``drop`` is then uniform too: no permutation of all ``size`` positions,
    which torch draws very slowly on a GPU beyond about 2^30 (minutes for papers100M's 1.7 billion keys).
    """
    picked = torch.empty(0, dtype=torch.int64, device=device)
    while picked.numel() < drop:
        more = torch.randint(size, (int(1.05 * (drop - picked.numel())) + 64,), generator=gen, device=device)
        picked = torch.unique(torch.cat([picked, more]))
    picked = picked[torch.randperm(picked.numel(), generator=gen, device=device)[:drop]]
    keep = torch.ones(size, dtype=torch.bool, device=device)
    keep[picked] = False
    return keep


def _draw_keys(sampler: _ClassSampler, n: int, count: int, homophily: float, gen: torch.Generator) -> torch.Tensor:
    """Keys ``min(u,v) * n + max(u,v)`` of ``count`` drawn edges, self-loops dropped (repeats kept)."""
    device = sampler.cum.device
    u = sampler.any_node(count)
    same = torch.rand(count, generator=gen, device=device) < homophily
    shift = torch.randint(1, max(sampler.num_classes, 2), (count,), generator=gen, device=device)
    target_class = torch.where(same, sampler.labels[u], (sampler.labels[u] + shift) % sampler.num_classes)
    v = sampler.in_class(target_class)
    keep = u != v
    u, v = u[keep], v[keep]
    return torch.minimum(u, v) * n + torch.maximum(u, v)


def _symmetric_csr(keys: torch.Tensor, n: int, folder: Path | None = None) -> sp.csr_matrix:
    """The ``[n, n]`` CSR adjacency of sorted undirected ``keys`` (each edge once), both directions stored.

    Up to :data:`CSR_BLOCK_ENTRIES` stored entries in one sort; beyond, one block of rows at a time, so the
    device never holds more than the keys and one block (papers100M: 13 GB of keys instead of 26 GB of
    both directions and the sort's copy of them), and the column ids go straight into a host array (into the file
    ``folder/indices.npy`` when a folder is given, and the weights into ``folder/data.npy``).
    """
    block_entries = CSR_BLOCK_ENTRIES if keys.is_cuda else min(CSR_BLOCK_ENTRIES, CSR_HOST_BLOCK_ENTRIES)
    if 2 * keys.numel() <= block_entries:
        both = torch.cat([keys, (keys % n) * n + keys // n]).sort().values
        return csr_from_sorted_keys(both, torch.ones(both.numel(), device=both.device), n)
    count = torch.zeros(n, dtype=torch.int64, device=keys.device)
    for block in keys.split(EDGE_DRAW_BLOCK):
        count += torch.bincount(block // n, minlength=n) + torch.bincount(block % n, minlength=n)
    indptr = torch.zeros(n + 1, dtype=torch.int64, device=keys.device)
    indptr[1:] = count.cumsum(0)
    del count
    indptr = indptr.cpu().numpy()
    nnz = int(indptr[-1])
    index = np.int32 if nnz < 2**31 else np.int64
    indices = np.empty(nnz, dtype=index) if folder is None else _new_file(folder / "indices.npy", (nnz,), index)
    for first, last in row_blocks(indptr, block_entries):
        rows = _rows_block(keys, n, first, last)
        indices[indptr[first]:indptr[last]] = (rows % n).cpu().numpy()
    if folder is None:
        return sp.csr_matrix((np.ones(nnz, dtype=np.float32), indices, indptr.astype(index)), shape=(n, n))
    data = _new_file(folder / "data.npy", (nnz,))
    for begin in range(0, nnz, EDGE_DRAW_BLOCK):
        data[begin:begin + EDGE_DRAW_BLOCK] = 1.0
    return sp.csr_matrix((data, indices, indptr.astype(index)), shape=(n, n))


def _new_file(path: Path, shape: tuple, dtype=np.float32) -> np.memmap:
    """A new ``.npy`` file of ``shape``, memory-mapped for writing."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _mapped_csr(adjacency: sp.csr_matrix, folder: Path) -> sp.csr_matrix:
    """``adjacency`` with its three arrays memory-mapped read-only from ``folder`` (written there when not yet)."""
    arrays = [mapped_file(getattr(adjacency, key), folder / f"{key}.npy") for key in ("data", "indices", "indptr")]
    return sp.csr_matrix((arrays[0], arrays[1], arrays[2]), shape=adjacency.shape)


def _rows_block(keys: torch.Tensor, n: int, first: int, last: int) -> torch.Tensor:
    """Sorted keys ``u * n + v`` of every stored entry of rows ``first <= u < last`` (both directions)."""
    bounds = torch.tensor([first * n, last * n], device=keys.device)
    low, high = torch.searchsorted(keys, bounds).tolist()
    parts = [keys[low:high]]  # entries (u, v) with u < v: the keys themselves, contiguous
    for block in keys.split(EDGE_DRAW_BLOCK):  # entries (v, u) with u < v: v of this row block
        v = block % n
        picked = (v >= first) & (v < last)
        parts.append(v[picked] * n + block[picked] // n)
    return torch.cat(parts).sort().values


def _features(labels, num_classes: int, dim: int, snr: float, gen: torch.Generator,
              out: np.ndarray | None = None) -> np.ndarray:
    """``[n, d]`` float32 host features, generated on the labels' device (in blocks of rows beyond
    :data:`FEATURE_BLOCK_ELEMENTS` values, each copied to the host array ``out`` as it is made; None: a new one)."""
    device = labels.device
    means = torch.randn(num_classes, dim, generator=gen, device=device) * (snr / math.sqrt(dim))
    n = labels.numel()
    if n * dim <= FEATURE_BLOCK_ELEMENTS:
        x = torch.randn(n, dim, generator=gen, device=device)
        for begin in range(0, n, MEAN_BLOCK_ROWS):
            x[begin:begin + MEAN_BLOCK_ROWS] += means[labels[begin:begin + MEAN_BLOCK_ROWS]]
        if out is None:
            return x.cpu().numpy()
        out[:] = x.cpu().numpy()
        return out
    out = np.empty((n, dim), dtype=np.float32) if out is None else out
    rows = max(1, FEATURE_BLOCK_ELEMENTS // dim)
    for begin in range(0, n, rows):
        x = torch.randn(min(rows, n - begin), dim, generator=gen, device=device)
        x += means[labels[begin:begin + rows]]
        torch.from_numpy(out[begin:begin + len(x)]).copy_(x)
    return out


def csbm_bytes(num_nodes: int, num_edges: int, num_features: int, **_) -> int:
    """Host bytes of the arrays :func:`csbm` makes: features, CSR column ids, weights and row pointers."""
    index = 4 if 2 * num_edges < 2**31 else 8
    return 4 * num_nodes * num_features + 2 * num_edges * (index + 4) + 8 * (num_nodes + 1)


def _check_params(n, m, c, d, h, snr, spread, seed) -> None:
    problems = []
    if not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise DataError(f"csbm: seed must be an int in [0, 2^63), got {seed!r}.")
    if not isinstance(n, int) or n < 2:
        problems.append(f"num_nodes must be an int >= 2, got {n!r}")
    elif not isinstance(m, int) or not 1 <= m <= 0.5 * n * (n - 1) * 0.9:
        problems.append(f"num_edges must be an int in [1, 0.9 n(n-1)/2], got {m!r}")
    if not isinstance(c, int) or not 1 <= c <= max(n, 1):
        problems.append(f"num_classes must be an int in [1, num_nodes], got {c!r}")
    if not isinstance(d, int) or d < 1:
        problems.append(f"num_features must be an int >= 1, got {d!r}")
    if not 0.0 <= h <= 1.0:
        problems.append(f"homophily must lie in [0, 1], got {h!r}")
    if not (0 <= snr < math.inf and 0 <= spread < math.inf):
        problems.append(f"feature_snr and degree_spread must be finite and >= 0, got {snr!r} and {spread!r}")
    if problems:
        raise DataError("csbm: " + "; ".join(problems) + ".")
