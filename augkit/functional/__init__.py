"""Functional ops: pure, batched, no randomness of their own."""

from .augment import (
    add_noise,
    add_noise_snr,
    crop,
    crop_segments,
    gain,
    mask_along_axis,
    mix,
    offsets_at,
    per_example,
    shift,
    signal_power,
    soft_targets,
    valid_mask,
)
from .random import bernoulli, beta, randint_below, uniform
from .spectral import amplitude_to_db, frame_chunk_size, mel_filterbank, melspectrogram

__all__ = [
    "add_noise",
    "add_noise_snr",
    "amplitude_to_db",
    "bernoulli",
    "beta",
    "crop",
    "crop_segments",
    "frame_chunk_size",
    "gain",
    "mask_along_axis",
    "mel_filterbank",
    "melspectrogram",
    "mix",
    "offsets_at",
    "per_example",
    "randint_below",
    "shift",
    "signal_power",
    "soft_targets",
    "uniform",
    "valid_mask",
]
