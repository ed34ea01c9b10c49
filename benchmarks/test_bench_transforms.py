"""Throughput of each transform alone and of the full chain, on one batch."""

from __future__ import annotations

import pytest
import torch

import augkit as ak

from .conftest import BATCHES, MEL, SAMPLE_RATE, SECONDS

FRAMES = lambda seconds: 1 + SAMPLE_RATE * seconds // MEL["hop_length"]  # noqa: E731

WAVEFORM = {
    "gain": lambda: ak.Gain(gain_db=(-6, 6), p=1.0),
    "noise_snr": lambda: ak.GaussianNoise(snr_db=(10, 30), p=1.0),
    "time_shift": lambda: ak.TimeShift(0.25, p=1.0),
    "polarity": lambda: ak.PolarityInversion(p=1.0),
    "random_crop": lambda: ak.RandomCrop(SAMPLE_RATE * 3),
}
SPECTROGRAM = {
    "time_mask": lambda: ak.TimeMasking(20, num_masks=2),
    "freq_mask": lambda: ak.FrequencyMasking(20, num_masks=2),
    "noise_std": lambda: ak.GaussianNoise(std=0.01, p=1.0),
    "gain_factor": lambda: ak.Gain(factor=(0.8, 1.2), p=1.0),
}


def full_chain(crop_seconds=None):
    steps = [ak.Gain(gain_db=(-6, 6)), ak.GaussianNoise(snr_db=(10, 40)), ak.TimeShift(0.1)]
    if crop_seconds:
        steps.append(ak.RandomCrop(SAMPLE_RATE * crop_seconds))
    return ak.Compose(steps + [ak.MelFrontend(**MEL), ak.TimeMasking(20, num_masks=2),
                               ak.FrequencyMasking(20, num_masks=2)])


@pytest.mark.parametrize("seconds", SECONDS)
@pytest.mark.parametrize("b", BATCHES)
@pytest.mark.parametrize("name", list(WAVEFORM) + list(SPECTROGRAM) + ["mixup"])
def test_transform(run, device, name, b, seconds):
    g = torch.Generator().manual_seed(0)
    if name in WAVEFORM:
        x = torch.randn(b, 1, SAMPLE_RATE * seconds, generator=g).to(device)
        t = WAVEFORM[name]().to(device)
        fn = lambda: t(x)  # noqa: E731
    elif name in SPECTROGRAM:
        x = torch.rand(b, 1, MEL["n_mels"], FRAMES(seconds), generator=g).to(device)
        t = SPECTROGRAM[name]().to(device)
        fn = lambda: t(x)  # noqa: E731
    else:
        x = torch.rand(b, 1, MEL["n_mels"], FRAMES(seconds), generator=g).to(device)
        y = torch.randint(0, 10, (b,)).to(device)
        t = ak.Mixup(num_classes=10).to(device)
        fn = lambda: t(x, target=y)  # noqa: E731
    run(fn, group=f"transform {name} B={b} {seconds}s {device.type}", clips=b, impl=name,
        batch=b, seconds=seconds)


@pytest.mark.parametrize("seconds", SECONDS)
@pytest.mark.parametrize("b", BATCHES)
def test_full_chain(run, device, b, seconds):
    x = torch.randn(b, 1, SAMPLE_RATE * seconds, generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    chain = full_chain().to(device)
    run(lambda: chain(x), group=f"chain B={b} {seconds}s {device.type}", clips=b,
        impl="full_chain", batch=b, seconds=seconds)
