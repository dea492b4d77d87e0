"""The garbage collector's settings during a run (``applier.run.frozen_heap``): the heap from
before the run frozen, young objects collected less often, and the process's own settings back
afterwards, whatever happened; a process that chose otherwise keeps its choice."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler.applier.run import YOUNG_GC_THRESHOLD, frozen_heap


@pytest.fixture(autouse=True)
def _gc_settings() -> Iterator[None]:
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == frozen


def test_during_a_run_young_objects_are_collected_less_often_and_the_old_heap_is_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    with frozen_heap():
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_the_settings_come_back_when_the_run_fails() -> None:
    gc.set_threshold(500, 7, 3)
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == (500, 7, 3) and gc.get_freeze_count() == 0


@pytest.mark.parametrize("thresholds", [(0, 10, 10), (50_000, 10, 10)])
def test_collection_turned_off_or_rarer_already_is_left_as_it_is(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(*thresholds)
    with frozen_heap():
        assert gc.get_threshold() == thresholds
    assert gc.get_threshold() == thresholds


def test_a_heap_the_process_froze_itself_stays_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        made = [[] for _ in range(1000)]  # young objects a second freeze would take in
        with frozen_heap():
            # not unfrozen (0), not frozen again (it would grow by the young objects); frozen
            # objects that other tests left dying may still leave the permanent generation
            assert 0 < gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen
        del made
    finally:
        gc.unfreeze()
