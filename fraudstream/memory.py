"""Memory of long-running services: give freed memory back to the operating system (glibc keeps it otherwise), and
keep the garbage collector off the objects that live as long as the process.

A scorer catching up after an outage works in full batches with a full prefetch queue; once it is caught up,
Python and librdkafka free that memory, but glibc's allocator keeps the pages, so the resident size stays at the
burst's high-water mark (the soak benchmark shows it after a broker kill). ``malloc_trim(0)`` returns them,
cheaply enough to call after each catch-up. Elsewhere than glibc it does nothing.

A service that has imported MLflow, sklearn and ONNX Runtime and loaded its model holds ~500,000 objects the
garbage collector tracks. Each full (generation 2) collection walks all of them: in the scorer it measured 235 ms,
a pause of every batch in flight (benchmarks/README.md, latency). :func:`freeze_long_lived` moves them to the
permanent generation once, at the end of start-up, so later collections walk only what came after.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging

log = logging.getLogger(__name__)


@functools.cache
def _trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; True when the C library could (glibc)."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True


def freeze_long_lived() -> int:
    """One full collection, then ``gc.freeze()``: every object alive now is left out of later collections (it is
    never freed, which is what a process-long object needs). Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
