"""mediadna.runtime: freed memory is reused instead of faulted in afresh."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from mediadna import runtime

# Allocates and frees blocks of mixed sizes (as a query's NumPy temporaries)
# and prints the page faults the repeats cost.
_WORK = """
import resource, sys
import numpy as np
if sys.argv[1] == "retain":
    from mediadna.runtime import retain_freed_memory
    assert retain_freed_memory()
sizes = [1 << 19, 3 << 20, 1 << 20, 12 << 20, 2 << 20, 6 << 20, 20 << 20]
def work():
    held = [np.ones(s // 8) for s in sizes]
    del held
work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    work()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _WORK, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_retained_memory_is_reused_without_page_faults():
    default, retained = _faults("default"), _faults("retain")
    # 10 repeats of ~45 MB: the default trims and re-faults most of it
    assert default > 5_000
    assert retained < default / 10


def test_retain_freed_memory_is_idempotent(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setattr(runtime, "_mallopt", lambda p, v: calls.append((p, v)) or True)
    assert runtime.retain_freed_memory() is True
    assert runtime.retain_freed_memory() is True
    assert calls == [(runtime.M_MMAP_THRESHOLD, runtime.MMAP_THRESHOLD), (runtime.M_TRIM_THRESHOLD, runtime.TRIM_THRESHOLD)]


def test_without_glibc_nothing_changes(monkeypatch):
    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setattr(runtime.sys, "platform", "darwin")
    assert runtime.retain_freed_memory() is False


def test_the_cli_applies_it(monkeypatch, tmp_path):
    from mediadna import cli

    seen = []
    monkeypatch.setattr(cli, "retain_freed_memory", lambda: seen.append(True) or True)
    assert cli.main(["--home", str(tmp_path), "library", "list"]) == 0
    assert seen == [True]
