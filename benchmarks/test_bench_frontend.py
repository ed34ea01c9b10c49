"""Frontend throughput: augkit vs torchaudio batched vs the tutorial's per-sample pipeline.

Each case of one group sees the same batch; ``python -m benchmarks.report``
prints clips/s and the ratio to torchaudio's batched MelSpectrogram.
"""

from __future__ import annotations

import pytest
import torch
import torchaudio

import augkit as ak

from .conftest import BATCHES, MEL, SAMPLE_RATE, SECONDS


def batch(b, seconds, device):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, SAMPLE_RATE * seconds, generator=g).to(device)


def tutorial_per_sample(x):
    """The tutorial's ``__getitem__``: a new MelSpectrogram per clip, clamp, 3 channels, 224."""
    out = []
    for clip in x:
        mel = torchaudio.transforms.MelSpectrogram(**MEL).to(clip.device)(clip)
        mel = torch.clamp(mel, min=1e-10)
        img = mel.repeat(3, 1, 1)
        out.append(torch.nn.functional.adaptive_avg_pool2d(img, (224, 224)))
    return torch.stack(out)


@pytest.mark.parametrize("seconds", SECONDS)
@pytest.mark.parametrize("b", BATCHES)
@pytest.mark.parametrize("impl", ["augkit", "augkit_db", "torchaudio", "tutorial_per_sample"])
def test_frontend(run, device, impl, b, seconds):
    x = batch(b, seconds, device)
    if impl == "augkit":
        fn = ak.MelFrontend(**MEL, log=None).to(device)
    elif impl == "augkit_db":
        fn = ak.MelFrontend(**MEL, log="db").to(device)
    elif impl == "torchaudio":
        fn = torchaudio.transforms.MelSpectrogram(**MEL).to(device)
    else:
        fn = tutorial_per_sample
    run(lambda: fn(x), group=f"frontend B={b} {seconds}s {device.type}", clips=b,
        impl=impl, batch=b, seconds=seconds)
