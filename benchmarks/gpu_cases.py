"""What ``make gpu-check`` measures: a case for every transform, the full chain, its byte model.

Built with augkit's public API only (no runner internals), so the GPU script, its
``cuda``-marked sync tests (``tests/test_cuda.py``) and the docs' tables measure one
definition of each case.

- :data:`CASES`: every class of :func:`augkit.transforms.random_transforms` as
  ``name -> Case(factory(sample_rate, banks), input, kind, reads)``; ``input`` is
  ``"wave"`` ``(B, 1, T)`` or ``"spec"`` ``(B, 1, n_mels, frames)``; ``kind`` is
  ``"elementwise"`` for one memory-bound pass over the input (reported against the
  device's copy bandwidth) or what bounds it otherwise (``"fft"``, ``"resample"``,
  ``"stft"``, ``"sort"``, ``"other"``).
- :func:`full_chain`: the ``augkit`` preset's chain (``experiments/configs/augkit.json``:
  noise and shift on the waveform, log-mel in dB/20 relative to each clip's maximum,
  time and frequency masks, mixup) plus a low-pass filter, coloured noise and reverb.
- :func:`chain_bytes`: the bytes that chain must move, per clip (the memory floor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import augkit as ak
from augkit.banks import colored_noise_bank, synthetic_room_irs

#: The ``augkit`` preset's augmentations, in its config's order (a test checks the file).
PRESET_AUGMENTATIONS = ("time_mask", "freq_mask", "noise", "shift", "mixup")
#: The preset's frontend: ``n_fft``, ``hop_length``, ``n_mels``, its dB scale and floor.
PRESET_MEL = dict(n_fft=2048, hop_length=512, n_mels=128)
DB_SCALE, TOP_DB = 1.0 / 20.0, 80.0
#: The matrix's spectrogram frontend at 16 kHz (10 ms hop): inputs of the "spec" cases.
MATRIX_MEL = dict(n_fft=512, hop_length=160, n_mels=64)
FLOAT = 4  # bytes per float32 sample


@dataclass(frozen=True)
class Case:
    """How one transform is built and fed in the matrix.

    ``factory(sample_rate, banks)`` returns the module; ``reads``: input-sized reads
    in the minimal byte model (2 for steps that also read a partner or a bank segment).
    """

    factory: Callable[[int, dict], torch.nn.Module]
    input: str = "wave"
    kind: str = "elementwise"
    reads: int = 1


def banks(sample_rate: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Data-free banks: 8 coloured noises of 3 s and 8 synthetic room responses (<= 0.6 s)."""
    return {"noise": colored_noise_bank(8, 3.0, sample_rate).to(device),
            "ir": synthetic_room_irs(8, sample_rate, rt60=(0.1, 0.6)).to(device)}


def _trivial(sr: int, b: dict) -> ak.TrivialAugment:
    return ak.TrivialAugment([ak.Gain(gain_db=(-12, 12)), ak.GaussianNoise(snr_db=(10, 40)),
                              ak.ColoredNoise(), ak.LowPassFilter(sample_rate=sr),
                              ak.HighPassFilter(sample_rate=sr), ak.TimeShift(0.25),
                              ak.ImpulseResponse(b["ir"]), ak.PitchShift(sample_rate=sr),
                              ak.Speed()])


# Each transform at its defaults where it has them, p=1 where p would gate the work away
# only for some examples (the cost is the same: gates are torch.where, not skipped work).
CASES: dict[str, Case] = {
    "AirAbsorption": Case(lambda sr, b: ak.AirAbsorption(sample_rate=sr), kind="fft"),
    "Aliasing": Case(lambda sr, b: ak.Aliasing(sample_rate=sr), kind="resample"),
    "BackgroundNoise": Case(lambda sr, b: ak.BackgroundNoise(b["noise"], p=1.0), reads=2),
    "BandLimit": Case(lambda sr, b: ak.BandLimit(sample_rate=sr), kind="fft"),
    "BandPassFilter": Case(lambda sr, b: ak.BandPassFilter(sample_rate=sr), kind="fft"),
    "BandStopFilter": Case(lambda sr, b: ak.BandStopFilter(sample_rate=sr), kind="fft"),
    "BitCrush": Case(lambda sr, b: ak.BitCrush(p=1.0)),
    "Clipping": Case(lambda sr, b: ak.Clipping(p=1.0), kind="sort"),
    "ColoredNoise": Case(lambda sr, b: ak.ColoredNoise(p=1.0), kind="fft"),
    "CutMix": Case(lambda sr, b: ak.CutMix(num_classes=10), "spec", reads=2),
    "DropChunk": Case(lambda sr, b: ak.DropChunk(p=1.0)),
    "DropFreq": Case(lambda sr, b: ak.DropFreq(sample_rate=sr), kind="fft"),
    "FilterAugment": Case(lambda sr, b: ak.FilterAugment(p=1.0), "spec"),
    "FrequencyMasking": Case(lambda sr, b: ak.FrequencyMasking(20, num_masks=2), "spec"),
    "Gain": Case(lambda sr, b: ak.Gain(gain_db=(-12, 12), p=1.0)),
    "GaussianNoise": Case(lambda sr, b: ak.GaussianNoise(snr_db=(10, 40), p=1.0)),
    "HighPassFilter": Case(lambda sr, b: ak.HighPassFilter(sample_rate=sr), kind="fft"),
    "HighShelfFilter": Case(lambda sr, b: ak.HighShelfFilter(sample_rate=sr), kind="fft"),
    "ImpulseResponse": Case(lambda sr, b: ak.ImpulseResponse(b["ir"]), kind="fft"),
    "LowPassFilter": Case(lambda sr, b: ak.LowPassFilter(sample_rate=sr), kind="fft"),
    "LowShelfFilter": Case(lambda sr, b: ak.LowShelfFilter(sample_rate=sr), kind="fft"),
    "Mixup": Case(lambda sr, b: ak.Mixup(num_classes=10), "spec", reads=2),
    "MuLaw": Case(lambda sr, b: ak.MuLaw(p=1.0)),
    "ParametricEQ": Case(lambda sr, b: ak.ParametricEQ(sample_rate=sr), kind="fft"),
    "PeakNormalize": Case(lambda sr, b: ak.PeakNormalize(p=1.0)),
    "PeakingFilter": Case(lambda sr, b: ak.PeakingFilter(sample_rate=sr), kind="fft"),
    "PitchShift": Case(lambda sr, b: ak.PitchShift(sample_rate=sr), kind="stft"),
    "PolarityInversion": Case(lambda sr, b: ak.PolarityInversion(p=1.0)),
    "RandomCrop": Case(lambda sr, b: ak.RandomCrop(sr // 4)),  # 0.25-s crops
    "RandomResizedCrop": Case(lambda sr, b: ak.RandomResizedCrop(), "spec", kind="resample"),
    "RoomSimulator": Case(lambda sr, b: ak.RoomSimulator(sample_rate=sr), kind="other"),
    "SpecMix": Case(lambda sr, b: ak.SpecMix(num_classes=10), "spec", reads=2),
    "Speed": Case(lambda sr, b: ak.Speed(), kind="resample"),
    "TanhDistortion": Case(lambda sr, b: ak.TanhDistortion(p=1.0)),
    "TimeMasking": Case(lambda sr, b: ak.TimeMasking(40, num_masks=2), "spec"),
    "TimeReversal": Case(lambda sr, b: ak.TimeReversal(p=1.0)),
    "TimeShift": Case(lambda sr, b: ak.TimeShift(0.25, p=1.0)),
    "TimeStretch": Case(lambda sr, b: ak.TimeStretch(), kind="stft"),
    "TimeWarp": Case(lambda sr, b: ak.TimeWarp(), "spec", kind="resample"),
    "TrivialAugment": Case(_trivial, kind="other"),
}

#: The two non-random modules of the matrix: the frontend (wave in) and the dB scale.
MODULES: dict[str, Case] = {
    "MelFrontend": Case(lambda sr, b: ak.MelFrontend(sr, **MATRIX_MEL, log=None), kind="stft"),
    "AmplitudeToDB": Case(lambda sr, b: ak.AmplitudeToDB(), "spec"),
}


def matrix_input(case: Case, batch: int, seconds: float, sample_rate: int,
                 device: torch.device | str, seed: int = 0) -> torch.Tensor:
    """The batch a matrix case sees: noise ``(B, 1, T)`` at -20 dBFS or a positive
    spectrogram ``(B, 1, n_mels, frames)`` of the matrix frontend's shape."""
    g = torch.Generator(device=device).manual_seed(seed)
    t = int(round(seconds * sample_rate))
    if case.input == "wave":
        return 0.1 * torch.randn(batch, 1, t, device=device, generator=g)
    frames = 1 + t // MATRIX_MEL["hop_length"]
    return torch.rand(batch, 1, MATRIX_MEL["n_mels"], frames, device=device, generator=g) + 1e-3


def full_chain(sample_rate: int, bank: dict[str, torch.Tensor], num_classes: int = 10
               ) -> ak.Compose:
    """The ``augkit`` preset's chain plus a filter, coloured noise and reverb.

    ``(B, 1, T)`` waveforms -> ``(B, 1, 128, 1 + T // 512)`` features; with
    ``target=`` also soft targets ``(B, num_classes)``. Steps (names as in the
    runner): ``noise``, ``shift``, ``lowpass``, ``colored_noise``, ``reverb``,
    ``mel``, ``scale`` (dB / 20, 80 dB floor), ``normalize`` (per-clip maximum),
    ``time_mask``, ``freq_mask``, ``mixup``.
    """
    return ak.Compose([
        ("noise", ak.GaussianNoise(snr_db=(10.0, 40.0), p=0.5)),
        ("shift", ak.TimeShift(0.25, p=0.5)),
        ("lowpass", ak.LowPassFilter(cutoff_hz=(150.0, 7500.0), sample_rate=sample_rate)),
        ("colored_noise", ak.ColoredNoise()),
        ("reverb", ak.ImpulseResponse(bank["ir"])),
        ("mel", ak.MelFrontend(sample_rate, **PRESET_MEL, log=None)),
        ("scale", ak.AmplitudeToDB(top_db=TOP_DB, scale=DB_SCALE)),
        ("normalize", ak.MaxNormalize()),
        ("time_mask", ak.TimeMasking(40, num_masks=2, value="mean")),
        ("freq_mask", ak.FrequencyMasking(20, num_masks=2, value="mean")),
        ("mixup", ak.Mixup(alpha=0.4, num_classes=num_classes)),
    ], num_classes=num_classes)


def stft_bytes(t: int, n_fft: int, hop_length: int, n_mels: int) -> int:
    """Bytes per clip of an unfused STFT -> power -> mel path on ``t`` float32 samples:
    read the clip, write and read the windowed frames, write and read the complex
    spectrum, write and read the power, write the mel bands."""
    frames, bins = 1 + t // hop_length, n_fft // 2 + 1
    return FLOAT * (t + 2 * frames * n_fft + 2 * 2 * frames * bins + 2 * frames * bins
                    + frames * n_mels)


def chain_bytes(t: int, sample_rate: int, ir_length: int) -> dict[str, int]:
    """The bytes per clip the :func:`full_chain` must move, step by step (its memory floor).

    Every pass reads its input once and writes its output once (float32; complex64 as
    two floats; a real FFT of ``n`` samples has about ``n / 2`` complex bins, i.e.
    ``n`` floats), nothing fused across passes, and FFT lengths at their lower bound
    (``t``; ``t + L`` for the convolution), so the floor is a lower bound on time:

    - ``noise``: its SNR needs the clip's power (read), then read + write: ``3 t``;
    - ``shift``: read + write: ``2 t``;
    - ``lowpass``: ``rfft`` (read ``t``, write ``t``), response product (read, write),
      ``irfft`` (read, write): ``6 t``;
    - ``colored_noise``: write its spectrum, ``irfft`` (read, write), the clip's power,
      the mix (read clip and noise, write): ``7 t``;
    - ``reverb``: with ``n = t + L``: ``rfft`` of the clip (``2 n``), of the responses
      (read ``L``, write ``n``), product (read 2, write 1: ``3 n``), ``irfft`` (``2 n``),
      aligned crop (read + write ``t``): ``8 n + L + 2 t``;
    - ``mel``: :func:`stft_bytes`;
    - ``scale``, ``normalize``, ``time_mask``, ``freq_mask`` (mean fill), ``mixup``
      (a partner): a reduction or second read, then read + write: ``3`` times the
      features each.
    """
    n = t + ir_length
    frames = 1 + t // PRESET_MEL["hop_length"]
    feats = frames * PRESET_MEL["n_mels"]
    return {k: FLOAT * v for k, v in {
        "noise": 3 * t, "shift": 2 * t, "lowpass": 6 * t, "colored_noise": 7 * t,
        "reverb": 8 * n + ir_length + 2 * t,
        "mel": stft_bytes(t, **PRESET_MEL) // FLOAT,
        "scale": 3 * feats, "normalize": 3 * feats, "time_mask": 3 * feats,
        "freq_mask": 3 * feats, "mixup": 3 * feats}.items()}
