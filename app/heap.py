"""The garbage collector, tuned for a long-running process that holds a large model.

CPython's cyclic collector walks every tracked object it can reach on each full collection. The
loaded model, the mappers and the schemas are about a hundred thousand objects that live as long
as the process; a batch of a thousand mentions allocates enough to trigger several collections,
each walking all of them again: a fifth of a batch's CPU time went there. Once the process has
started, those objects are moved out of the collector's sight (`gc.freeze`), and the youngest
generation is collected after more allocations than the default 700.
"""

import gc

# Allocations (net of deallocations) between two collections of the youngest generation.
YOUNG_THRESHOLD = 10_000

_settled = False


def settle() -> None:
    """Freeze what is alive now and raise the threshold; once per process: objects frozen are
    never collected, so a process that starts many applications (a test run) freezes only the
    first one's."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
