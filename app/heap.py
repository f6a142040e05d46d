"""Memory and the garbage collector, tuned for a long-running process that holds a large model.

CPython's cyclic collector walks every tracked object it can reach on each full collection. The
loaded model, the mappers and the schemas are about a hundred thousand objects that live as long
as the process; a batch of a thousand mentions allocates enough to trigger several collections,
each walking all of them again: a fifth of a batch's CPU time went there. Once the process has
started, those objects are moved out of the collector's sight (`gc.freeze`), and the youngest
generation is collected after more allocations than the default 700.

glibc's allocator keeps what loading the model freed (its parsed file), and gives each thread
that allocates an arena of its own, up to eight per core, none of which shrinks: a worker grew
by a third under load. Where the C library is glibc, the free pages are given back once started
and the arenas are limited to two.
"""

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

# Allocations (net of deallocations) between two collections of the youngest generation.
YOUNG_THRESHOLD = 10_000
# glibc's mallopt parameter for the most arenas, and the number kept (the main one and one more).
M_ARENA_MAX = -8
ARENAS = 2

_settled = False


def settle() -> None:
    """Freeze what is alive now, raise the threshold, hand free memory back; once per process:
    objects frozen are never collected, so a process that starts many applications (a test run)
    freezes only the first one's."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
    _tune_glibc()


def _tune_glibc() -> None:
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(M_ARENA_MAX, ARENAS)
    libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it: musl, macOS are left alone
    except (OSError, AttributeError, TypeError):
        log.debug("not glibc: its allocator is left as it is")
        return None
    return libc
