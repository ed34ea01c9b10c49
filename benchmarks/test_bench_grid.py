"""The ablation grid's wall time: one pair after another vs several at a time on Ray.

Through the runner's command line only (``python -m experiments.ablate`` in a
subprocess, timed from start to exit: Ray's start-up, worker imports and the
report included). On the CPU: 8 pairs of the quick preset (epochs cut to 4)
sequentially at 1 thread (the reference), sequentially at 2 threads, and 2 at a
time on Ray (``--workers 2 --cpus-per-run 1``); on a GPU: 8 pairs of the quick
preset as it is, sequentially vs packed 4 per GPU (``--gpus-per-run 0.25``). The
decoded set is cached before timing. ``clips`` in the record is the number of pairs,
so the report's clips/s reads pairs/s and its ratio is the speed-up over sequential.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchaudio

import augkit

ROOT = Path(__file__).resolve().parents[1]
#: The quick preset (its embedded synthetic set, model and frontend), 4 epochs.
QUICK = ["--preset", "quick", "--epochs", "4"]
#: What `make test` runs once (--benchmark-disable): the test suite's tiny sizes.
TINY = ["--preset", "quick", "--epochs", "2", "--sample-rate", "8000", "--crop-seconds", "1",
        "--set", "n_fft=256", "--set", "hop_length=128", "--set", "n_mels=32", "--set",
        'synthetic={"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}']

#: The quick preset (embedded synthetic set) at a fixed 20 epochs, so every case trains alike.
FULL = ["--preset", "quick", "--epochs", "20"]

CASES = {
    # name: (sizes, device, arms, seeds, extra flags)
    "sequential": (QUICK, "cpu", "baseline,all", "0,1,2,3", ["--cpus-per-run", "1"]),
    "sequential_2threads": (QUICK, "cpu", "baseline,all", "0,1,2,3", ["--cpus-per-run", "2"]),
    "ray_workers2": (QUICK, "cpu", "baseline,all", "0,1,2,3",
                     ["--cpus-per-run", "1", "--workers", "2"]),
}
GPU_CASES = {
    "sequential": (FULL, "cuda", "baseline,all", "0,1,2,3", []),
    "ray_packed4": (FULL, "cuda", "baseline,all", "0,1,2,3",
                    ["--workers", "4", "--gpus-per-run", "0.25", "--cpus-per-run", "2"]),
}


def _ablate(args: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _time_grid(benchmark, tmp_path, impl: str, case: tuple, group: str) -> None:
    sizes, device, arms, seeds, extra = case
    if benchmark.disabled:  # run once by `make test`: that it works, not how fast
        sizes, seeds = TINY, "0"
    common = [*sizes, "--device", device, "--swanlab-mode", "disabled", "--no-progress",
              "--cache-dir", str(tmp_path / "cache"), "--arms", arms, "--seeds", seeds]
    if not benchmark.disabled:  # decode (and generate) the set before timing
        _ablate([*common, "--out", str(tmp_path / "warm"), "--arms", "baseline", "--seeds",
                 "0", "--epochs", "1"])  # later flags win
    rounds = iter(range(100))

    def setup():
        return ([*common, *extra, "--out", str(tmp_path / f"out{next(rounds)}")],), {}

    units = len(arms.split(",")) * len(seeds.split(","))
    benchmark.group = group
    benchmark.extra_info.update(
        impl=impl, clips=units, pairs=units, device=device,
        device_name=(torch.cuda.get_device_name(0) if device == "cuda" else
                     f"{platform.machine()} CPU ({len(os.sched_getaffinity(0))} cores)"),
        command=" ".join(["python -m experiments.ablate", *sizes, *extra]),
        torch=torch.__version__, torchaudio=torchaudio.__version__,
        augkit=augkit.__version__)
    benchmark.pedantic(_ablate, setup=setup, rounds=1 if benchmark.disabled else 2,
                       iterations=1)


@pytest.mark.parametrize("impl", list(CASES))
def test_grid_wall_time_cpu(benchmark, tmp_path, impl):
    if impl.startswith("ray"):
        pytest.importorskip("ray")
    _time_grid(benchmark, tmp_path, impl, CASES[impl], "grid wall time, 8 pairs, CPU")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("impl", list(GPU_CASES))
def test_grid_wall_time_gpu(benchmark, tmp_path, impl):
    if impl.startswith("ray"):
        pytest.importorskip("ray")
    _time_grid(benchmark, tmp_path, impl, GPU_CASES[impl], "grid wall time, 8 pairs, 1 GPU")

