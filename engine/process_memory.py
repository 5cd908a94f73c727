"""The glibc allocator settings of a process that runs stages (the local backend's, each Ray worker's).

Frames, x264's buffers and model activations come and go in 1-40 MB pieces from several threads. Left alone,
glibc gives each thread its own heap arena and moves its mmap threshold with the sizes it sees, and resident
memory creeps up clip after clip.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt parameters


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def bound_malloc(mmap_threshold: int = 64 << 20, arenas: int = 2) -> bool:
    """Keep the process's resident memory to what the records in flight hold (glibc only; elsewhere a no-op).

    Mapping every piece of 1 MB and up on its own kept it flat but made each such allocation fault its pages in
    afresh: TransNetV2 on CPU took twice its CPU time, half of it in the kernel. So pieces under ``mmap_threshold``
    come from ``arenas`` shared heaps whose pages are reused, and ``release_free_memory`` hands the heaps' free
    pages back after each batch a worker finishes (a page is faulted in once per batch, not once per allocation)."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) \
        and bool(libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Return the free pages of every heap arena to the kernel (glibc's ``malloc_trim``)."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))
