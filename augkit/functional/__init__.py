"""Functional ops: pure, batched, no randomness of their own."""

from .augment import add_noise, add_noise_snr, crop, gain, mask_along_axis, mix, shift
from .random import bernoulli, beta, randint_below, uniform
from .spectral import amplitude_to_db, frame_chunk_size, mel_filterbank, melspectrogram

__all__ = [
    "add_noise",
    "add_noise_snr",
    "amplitude_to_db",
    "bernoulli",
    "beta",
    "crop",
    "frame_chunk_size",
    "gain",
    "mask_along_axis",
    "mel_filterbank",
    "melspectrogram",
    "mix",
    "randint_below",
    "shift",
    "uniform",
]
