import gc

from app import heap


def test_settling_freezes_the_live_objects_once_and_raises_the_young_threshold() -> None:
    heap.settle()  # the first application started in this process may have done it already
    frozen = gc.get_freeze_count()

    heap.settle()

    assert frozen > 10_000  # the test process' modules, at least
    assert gc.get_freeze_count() == frozen  # not again: what later apps hold stays collectable
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
