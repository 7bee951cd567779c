"""The kernel's memory helpers for long-running services."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fraudstream.memory import freeze_long_lived


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


@pytest.mark.usefixtures("unfrozen")
def test_freezing_leaves_the_live_objects_out_of_later_collections() -> None:
    survivor = [object() for _ in range(1000)]
    tracked_before = len(gc.get_objects())

    frozen = freeze_long_lived()

    assert frozen == gc.get_freeze_count() >= len(survivor)
    assert len(gc.get_objects()) < tracked_before - len(survivor)  # a full collection no longer walks them
    assert all(obj is not None for obj in survivor)  # frozen objects stay alive and usable
