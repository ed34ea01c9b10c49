"""One training epoch's data path: augkit on the device vs the tutorial's Dataset/DataLoader.

Both produce the tutorial's model input from the same clips (WAV files for the
tutorial, decoded once for augkit): batch, random crop, power mel, noise/gain on
the power mel, time/frequency masks, clamp, 3-channel 224x224 image.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from torch.utils.data import DataLoader, Dataset

import augkit as ak
from augkit import functional as F

from .conftest import MEL, SAMPLE_RATE

N_CLIPS, CLIP_S, CROP_S, BATCH = 48, 30, 10, 16


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    waves = (rng.standard_normal((N_CLIPS, SAMPLE_RATE * CLIP_S)) * 0.1).astype(np.float32)
    paths = []
    for i, w in enumerate(waves):
        p = root / f"clip{i:03d}.wav"
        sf.write(p, w, SAMPLE_RATE, subtype="PCM_16")
        paths.append(p)
    labels = torch.arange(N_CLIPS) % 10
    int16 = torch.from_numpy(np.round(waves * 32767).astype(np.int16))
    return paths, labels, int16


class TutorialDataset(Dataset):
    """The per-sample pipeline: load, crop, a fresh MelSpectrogram, augment, clamp, 3x224."""

    def __init__(self, paths, labels):
        self.paths, self.labels = paths, labels

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        wave, sr = sf.read(self.paths[i], dtype="float32")
        crop = CROP_S * sr
        start = np.random.randint(0, len(wave) - crop + 1)
        wave = torch.from_numpy(wave[start : start + crop]).unsqueeze(0)
        mel = torchaudio.transforms.MelSpectrogram(**MEL)(wave)
        if np.random.rand() < 0.5:
            mel = mel + 0.01 * torch.randn_like(mel)
        if np.random.rand() < 0.5:
            mel = mel * np.random.uniform(0.8, 1.2)
        mel = torchaudio.transforms.TimeMasking(20)(mel)
        mel = torchaudio.transforms.FrequencyMasking(20)(mel)
        mel = torch.clamp(mel, min=1e-10).repeat(3, 1, 1)
        return torch.nn.functional.adaptive_avg_pool2d(mel, (224, 224)), self.labels[i]


class Clamp(torch.nn.Module):
    def forward(self, x):
        return torch.clamp(x, min=1e-10)


@pytest.mark.parametrize("impl", ["augkit", "tutorial_dataloader"])
def test_epoch_data_path(run, device, clips, impl):
    paths, labels, int16 = clips
    if impl == "tutorial_dataloader":
        if device.type == "cuda":
            pytest.skip("the tutorial pipeline runs on CPU workers; compare with augkit on cuda")
        loader = DataLoader(TutorialDataset(paths, labels), batch_size=BATCH, shuffle=True)

        def epoch():
            for x, _ in loader:
                x = x.to(device)
            return x
    else:
        # The tutorial's recipe as one augkit chain (public API only).
        chain = ak.Compose([
            ak.MelFrontend(**MEL, log=None),
            ak.GaussianNoise(std=0.01, p=0.5),
            ak.Gain(factor=(0.8, 1.2), p=0.5),
            ak.TimeMasking(20),
            ak.FrequencyMasking(20),
            Clamp(),
            ak.InputAdapter(3, 224),
        ]).to(device)
        flat = int16.to(device).reshape(-1)  # every clip end to end, int16, on the device
        clip_len, length = int16.shape[1], CROP_S * SAMPLE_RATE
        gen = torch.Generator(device=device).manual_seed(0)

        def epoch():
            perm = torch.randperm(N_CLIPS, device=device, generator=gen)
            for s in range(0, N_CLIPS, BATCH):
                idx = perm[s : s + BATCH]
                pos = torch.rand(idx.shape, device=device, generator=gen)
                start = idx * clip_len + F.offsets_at(pos, clip_len - length)
                wave = F.crop_segments(flat, start, torch.full_like(idx, length), length)
                x = chain(wave.float().unsqueeze(1) / 32768, generator=gen)
            return x
    run(epoch, group=f"datapath {N_CLIPS} clips {CROP_S}s crops {device.type}", clips=N_CLIPS,
        impl=impl, batch=BATCH, seconds=CROP_S)
