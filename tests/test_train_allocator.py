"""CPU training's host memory (awr/train/allocator.py): with glibc's mmap and trimming off, a
freed 64 MiB block is reused by the next allocation instead of being faulted in again page by
page; the user's own malloc settings are left alone."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

# A step's pattern: two 64 MiB activations and a smaller one, allocated, filled and freed, 16
# times; each step's new page faults. Aligned requests do not always fit the freed blocks at
# first, so the heap grows for a few steps and then serves every step from freed blocks.
PROBE = """
import json, resource, torch
from awr.train.allocator import reuse_freed_memory
on = reuse_freed_memory()
def step(n=16 * 2**20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(n); b = torch.ones(n // 3); del a; c = torch.ones(n); del b, c
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"on": on, "again": reuse_freed_memory(), "faults": [step() for _ in range(16)]}))
"""
PAGES = 16 * 2**20 * 4 // 4096  # pages of one 64 MiB block (4 KiB pages)

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",)}
    clean = {k: v for k, v in clean.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@glibc
def test_a_freed_large_block_is_reused_not_faulted_in_again() -> None:
    result = probe()
    assert (result["on"], result["again"]) == (True, True)
    assert max(result["faults"][-4:]) < PAGES // 20  # settled: freed blocks reused


@glibc
def test_the_users_own_malloc_settings_win() -> None:
    result = probe(GLIBC_TUNABLES="glibc.malloc.check=0")
    assert (result["on"], result["again"]) == (False, False)
    # glibc's default: both 64 MiB blocks are fresh mmaps in every step
    assert min(result["faults"][-4:]) > 2 * PAGES * 9 // 10
