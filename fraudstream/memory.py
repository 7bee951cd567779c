"""Give freed memory back to the operating system (glibc keeps it otherwise), for long-running services.

A scorer catching up after an outage works in full batches with a full prefetch queue; once it is caught up,
Python and librdkafka free that memory, but glibc's allocator keeps the pages, so the resident size stays at the
burst's high-water mark (the soak benchmark shows it after a broker kill). ``malloc_trim(0)`` returns them,
cheaply enough to call after each catch-up. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
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
