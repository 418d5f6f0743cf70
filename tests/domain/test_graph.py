"""Graph rules: cycles, order, downstream sets and structure hashes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vidpipe_dagster.domain.graph import (
    dependencies,
    downstream_of,
    find_cycle,
    structure_hash,
    topological_order,
)


def test_dependencies_accept_arrays_and_single_strings():
    deps = dependencies({"m": {"segments": ["a", "b"], "extra": "c"}, "a": {}, "b": None})
    assert deps == {"m": ["a", "b", "c"], "a": [], "b": []}


@pytest.mark.parametrize(
    ("deps", "has_cycle"),
    [
        ({"a": [], "b": ["a"], "c": ["a", "b"]}, False),
        ({"a": ["a"]}, True),
        ({"a": ["c"], "b": ["a"], "c": ["b"]}, True),
        ({"a": ["missing"], "b": ["a"]}, False),
    ],
)
def test_find_cycle(deps, has_cycle):
    cycle = find_cycle(deps)
    assert (cycle is not None) == has_cycle
    if cycle:
        assert cycle[0] == cycle[-1]
        for parent, child in zip(cycle, cycle[1:], strict=False):
            assert child in deps[parent]


def test_topological_order_puts_dependencies_first():
    deps = {"merge": ["a", "b"], "mix": ["merge", "voice"], "a": [], "b": [], "voice": []}
    order = topological_order(deps)
    for node, parents in deps.items():
        for parent in parents:
            assert order.index(parent) < order.index(node)
    with pytest.raises(ValueError):
        topological_order({"a": ["b"], "b": ["a"]})


def test_downstream_of():
    deps = {"a": [], "b": ["a"], "c": ["b"], "d": []}
    assert downstream_of(deps, ["a"]) == {"b", "c"}
    assert downstream_of(deps, ["d"]) == set()


def test_structure_hash_ignores_key_order_and_title_but_not_structure():
    base = structure_hash(node_type="asset", inputs={}, config={"a": 1, "b": 2}, asset=None)
    assert base == structure_hash(node_type="asset", inputs={}, config={"b": 2, "a": 1}, asset=None)
    assert base != structure_hash(node_type="asset", inputs={}, config={"a": 1, "b": 3}, asset=None)
    assert base != structure_hash(node_type="asset", inputs={}, config={"a": 1, "b": 2}, asset={})


def test_structure_hash_is_stable_across_processes():
    code = (
        "from vidpipe_dagster.domain.graph import structure_hash;"
        "print(structure_hash(node_type='asset', inputs={}, config={'x': 'y'}, asset=None))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == structure_hash(node_type="asset", inputs={}, config={"x": "y"}, asset=None)
