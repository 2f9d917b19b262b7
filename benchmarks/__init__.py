"""The benchmark suites, each one entry point with a small form that CI runs (tests/test_benchmarks.py):

    python -m benchmarks.speed         training and inference speed at ogbn-products' shape (GPU)
    python -m benchmarks.quality       accuracy and spectrum on the shared graphs (bench compare, truncation)
    python -m benchmarks.scale         generation, loading, exact eigensolvers, the probe, the one fit command at scale
    python -m benchmarks.distributed   data-parallel scaling of ``fit --nproc N``
    python -m benchmarks.objectives    NeuralSVD against NeuralEF at equal training time on the shared graphs

``benchmarks/common.py`` records the provenance every result file holds; ``benchmarks/results/README.md`` indexes the
committed results.
"""
