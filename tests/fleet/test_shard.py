"""``--shard I/N``: a stable partition of business folders (property-tested)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli.exit_codes import for_business, worst
from reconciler.core.errors import ConfigError
from reconciler.fleet.businesses import Business, parse_shard, select, shard_of

folder_names = st.lists(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30),
                        unique=True, max_size=60)


@given(folder_names, st.integers(min_value=1, max_value=32))
def test_shards_are_disjoint_and_cover_every_business(names: list[str], n: int) -> None:
    businesses = [Business(name, Path(name)) for name in names]
    shards = [select(businesses, (i, n)) for i in range(n)]
    seen = [b.name for shard in shards for b in shard]
    assert sorted(seen) == sorted(names)  # every business exactly once
    assert len(seen) == len(set(seen))


@given(folder_names, st.integers(min_value=1, max_value=32))
def test_a_business_keeps_its_shard_whatever_else_exists(names: list[str], n: int) -> None:
    alone = {name: shard_of(name, n) for name in names}
    together = {b.name: i for i in range(n) for b in select([Business(x, Path(x)) for x in names], (i, n))}
    assert alone == together


def test_shard_of_is_a_fixed_function() -> None:
    # Pinned values: shards must not move between releases, Python versions or machines.
    assert [shard_of(name, 8) for name in ("acme", "beta", "gamma")] == [0, 1, 0]
    assert shard_of("acme", 1) == 0
    assert all(shard_of(f"b{i}", 4) == shard_of(f"b{i}", 4) for i in range(100))
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"business-{i}", 4)] += 1
    assert min(counts) > 900  # roughly even


@pytest.mark.parametrize("text", ["", "1", "4/4", "-1/4", "a/b", "0/0", "1/2/3"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_shard(text)


def test_worst_exit_code() -> None:
    assert worst([0, 3, 2, 0], "drift") == 2
    assert worst([0, 3, 2, 1], "drift") == 1
    assert worst([0, 3], "drift") == 3
    assert worst([], "drift") == 0
    assert worst([0, 2], "plan") == 2


def test_exit_code_of_a_business_row() -> None:
    assert [for_business("drift", s) for s in ("in sync", "drift", "pending", "error")] == [0, 2, 3, 1]
    assert [for_business("plan", s) for s in ("no changes", "changes", "errors", "error")] == [0, 2, 1, 1]
    assert for_business("plan", "changes", detailed=False) == 0
