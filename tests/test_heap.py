import gc

from app import heap


def test_settling_freezes_the_live_objects_once_and_raises_the_young_threshold() -> None:
    heap.settle()  # the first application started in this process may have done it already
    frozen = gc.get_freeze_count()

    heap.settle()

    assert frozen > 10_000  # the test process' modules, at least
    assert gc.get_freeze_count() == frozen  # not again: what later apps hold stays collectable
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD


def test_the_allocator_is_tuned_only_where_it_is_glibc() -> None:
    libc = heap._glibc()
    if libc is None:  # musl, macOS: nothing to tune, and settling must not fail
        heap._tune_glibc()
        return
    assert libc.mallopt(heap.M_ARENA_MAX, heap.ARENAS) == 1  # glibc says 1 when it accepts
