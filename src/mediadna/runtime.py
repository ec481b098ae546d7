"""Process-wide tuning for the hot paths, applied by entry points (the CLI, the
Lambda handlers, the benchmarks), never on import: it changes the whole process.

Matching and fingerprinting allocate hundreds of NumPy temporaries of
0.1-30 MB per input.  glibc's malloc serves blocks over its mmap threshold
(128 KiB, raised only as blocks are freed) with fresh pages from the kernel and
trims freed heap back to it, so each temporary pays a page fault per 4 KiB it
touches.  On virtual machines (Firecracker, which runs Lambda) those faults
cost more than the arithmetic: a 60 s query against a 1,000-hour library
spent a fifth of its time in them.
"""

from __future__ import annotations

import ctypes
import sys

#: glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from malloc's heap and are reused once freed
#: (32 MiB is glibc's ceiling for the setting on 64-bit systems).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is kept, up to this much, rather than
#: handed back to the kernel.
TRIM_THRESHOLD = 512 << 20

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks for reuse (see the module doc).

    Idempotent.  Returns False, changing nothing, where the C library is not
    glibc (macOS, musl) or refuses the settings.
    """
    global _applied
    if _applied is None:
        _applied = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return _applied


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(param, value) == 1
