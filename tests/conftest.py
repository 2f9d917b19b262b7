"""Shared fixtures: the real datasets in ../shared/data (skipped where absent) and a private cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("GRAPH_EIGENMAP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
DATASET_NAMES = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs")


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "datasets.json").exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set GRAPH_EIGENMAP_SHARED_DATA to run these tests)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_or_skip()


@pytest.fixture(scope="session")
def expected_counts(shared_data) -> dict[str, dict]:
    return {entry["name"]: entry for entry in json.loads((shared_data / "datasets.json").read_text())}


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep processed files of this test session out of the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("GRAPH_EIGENMAP_CACHE")
    os.environ["GRAPH_EIGENMAP_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GRAPH_EIGENMAP_CACHE", None)
    else:
        os.environ["GRAPH_EIGENMAP_CACHE"] = old
