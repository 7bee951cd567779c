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
    survivors = [[index] for index in range(1000)]  # lists: objects the collector tracks
    tracked_before = len(gc.get_objects())

    frozen = freeze_long_lived()

    # The count may only fall after the freeze (a thread of an earlier test freeing a frozen object: CI saw 897,976
    # returned, then 897,974), never rise: nothing joins the permanent generation but by gc.freeze().
    assert len(survivors) <= gc.get_freeze_count() <= frozen
    walked = gc.get_objects()
    assert len(walked) < tracked_before - len(survivors)  # a full collection no longer walks them
    walked_ids = {id(obj) for obj in walked}
    assert not any(id(survivor) in walked_ids for survivor in survivors)
    assert [survivor[0] for survivor in survivors] == list(range(1000))  # frozen objects stay alive and usable
