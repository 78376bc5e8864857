"""Document-number sets held as masks answer exactly like Arrow's ``is_in``.

Random sets of numbers (empty ones included), probes past the mask's length
(documents a delta numbered after the mask was made), repeats among the numbers
a mask is made of, and both ways of making a mask (``inverse_permutation`` where
pyarrow binds it, a bitmap otherwise)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.discovery.search import sets
from arco.discovery.search.sets import DocSet, intersect, mask_of, within, without
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1

numbers = st.lists(st.integers(0, 300), max_size=60)


def arr(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int32())


def as_mask(values: list[int], size: int) -> DocSet:
    distinct = sorted(set(values))
    return DocSet(len(distinct), mask=mask_of(arr(values), size))


@pytest.fixture(params=[True, False], ids=["inverse_permutation", "bitmap"])
def mask_maker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param and not sets._HAS_INVERSE:
        # CI's pyarrow has it: a skip there would hide the path servers take.
        require_or_skip("this pyarrow binds no inverse_permutation options")
    monkeypatch.setattr(sets, "_HAS_INVERSE", request.param)


@pytest.mark.usefixtures("mask_maker")
@settings(max_examples=200, deadline=None)
@given(members=numbers, probes=numbers, size=st.integers(0, 200))
def test_a_mask_answers_like_is_in(members: list[int], probes: list[int], size: int) -> None:
    # ``size`` may fall short of the largest member (the mask grows) and of probes
    # (numbers past the mask are outside the set).
    expected = pc.is_in(arr(probes), value_set=arr(members))
    held = as_mask(members, size)
    assert held.mask is not None
    assert len(held.mask) >= max([size, *(m + 1 for m in members)])
    assert held.member(arr(probes)).equals(expected)
    assert DocSet.of(arr(sorted(set(members)))).member(arr(probes)).equals(expected)
    assert within(arr(probes), held).to_pylist() == [p for p in probes if p in set(members)]
    assert without(arr(probes), held).to_pylist() == [p for p in probes if p not in set(members)]
    assert held.ids().to_pylist() == sorted(set(members))
    every = pa.array(range(400), pa.int32())
    assert held.ids(every).to_pylist() == sorted(set(members))


@pytest.mark.usefixtures("mask_maker")
@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(st.tuples(numbers, st.booleans(), st.integers(0, 320)), max_size=4),
    use_every=st.booleans(),
)
def test_intersecting_sets_of_either_form_gives_the_common_numbers(
    groups: list[tuple[list[int], bool, int]], use_every: bool
) -> None:
    held = [
        as_mask(values, size) if masked else DocSet.of(arr(sorted(set(values))))
        for values, masked, size in groups
    ]
    every = pa.array(range(320), pa.int32()) if use_every else None
    expected = set.intersection(*(set(v) for v, _, _ in groups)) if groups else set()
    got = intersect(held, every).to_pylist()
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))


def test_compact_keeps_small_sets_as_numbers_and_large_ones_as_masks() -> None:
    small = DocSet.of(arr(list(range(10))))
    assert small.compact(1_000).gids is not None
    large = DocSet.of(arr(list(range(0, 3 * sets.MASK_MIN_DOCS, 3))))
    compacted = large.compact(10)
    assert compacted.gids is None
    assert compacted.mask is not None
    assert len(compacted) == sets.MASK_MIN_DOCS
    assert compacted.nbytes < large.nbytes
    assert compacted.member(arr([0, 1, 3, 3 * sets.MASK_MIN_DOCS])).to_pylist() == [
        True,
        False,
        True,
        False,
    ]


@pytest.mark.usefixtures("mask_maker")
@settings(max_examples=200, deadline=None)
@given(members=numbers, probes=numbers)
def test_a_set_of_numbers_probed_by_many_answers_like_is_in(
    members: list[int], probes: list[int]
) -> None:
    """Past ``PROBES_FOR_MASK`` probes a set held as numbers is probed through a mask
    made for the call; a few probes of a small set are answered in Python."""
    held = DocSet.of(arr(sorted(set(members))))
    expected = pc.is_in(arr(probes), value_set=arr(members))
    saved = sets.PROBES_FOR_MASK
    sets.PROBES_FOR_MASK = 1
    try:
        assert held.member(arr(probes)).equals(expected)
    finally:
        sets.PROBES_FOR_MASK = saved
    assert held.flags(arr(probes), probes) == expected.to_pylist()
    assert as_mask(members, 10).flags(arr(probes), probes) == expected.to_pylist()
