"""Benchmark fixtures: device matrix, CUDA-synchronised timing, recorded versions."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

import augkit

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]
BATCHES = [1, 16]
SECONDS = [5, 30]
SAMPLE_RATE = 22050
# The tutorial's frontend settings.
MEL = dict(sample_rate=SAMPLE_RATE, n_fft=2048, hop_length=640, n_mels=128)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def run(benchmark, device):
    """``run(fn, group, clips, **info)``: time ``fn`` (synchronised on CUDA) and record context."""

    def _run(fn, group: str, clips: int, **info):
        def timed():
            out = fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out

        benchmark.group = group
        benchmark.extra_info.update(
            clips=clips, device=str(device), device_name=device_name(device),
            torch=torch.__version__, torchaudio=torchaudio.__version__,
            augkit=augkit.__version__, **info)
        with torch.inference_mode():
            timed()  # warm-up (allocator, lazy init, cuFFT plans)
            return benchmark(timed)

    return _run


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    """Folders of 8 noise clips (3 s) and 8 room responses (0.3 s) as 16 kHz WAV files,
    for the peer benchmarks' background-noise and reverb pairs."""
    sr = 16000
    rng = np.random.default_rng(0)
    out = {}
    for kind, seconds in (("noise", 3.0), ("ir", 0.3)):
        folder = tmp_path_factory.mktemp(kind)
        for i in range(8):
            n = int(seconds * sr)
            x = rng.standard_normal(n).astype(np.float32) * 0.1
            if kind == "ir":
                x *= np.exp(-np.arange(n) / (0.05 * sr)).astype(np.float32)
                x[0] = 1.0
            sf.write(folder / f"{kind}{i}.wav", x, sr)
        out[kind] = str(folder)
    return out
