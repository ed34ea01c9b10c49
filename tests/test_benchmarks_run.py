"""The benchmarks stay runnable and use only augkit's public API (timings are `make bench`'s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_import_only_the_public_api():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import)\s", line):
                assert "experiments" not in line, f"{path.name}: {line.strip()}"
                assert not re.search(r"augkit\.(\w+\.)*_", line), f"{path.name}: {line.strip()}"


@pytest.mark.slow
def test_every_benchmark_runs_once():
    """Each case once, untimed (--benchmark-disable): an API change cannot break them unseen."""
    import os

    # audiomentations works one clip at a time: its side runs at tiny sizes here
    env = {**os.environ, "AUGKIT_BENCH_AM_BATCH": "2", "AUGKIT_BENCH_AM_SECONDS": "0.5"}
    res = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-q", "-p",
                          "no:cacheprovider", "--benchmark-disable"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
