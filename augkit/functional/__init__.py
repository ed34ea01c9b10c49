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
from .convolve import fft_convolve, fft_size, peak_delay
from .filters import (
    band_edges,
    butterworth_filter,
    butterworth_magnitude,
    filter_margin,
    filter_zero_phase,
)
from .noise import colored_noise, looped_segments, random_phase_noise
from .random import bernoulli, beta, randint_below, random_phases, uniform
from .spectral import amplitude_to_db, frame_chunk_size, mel_filterbank, melspectrogram
from .spectro import band_gains, filter_augment, resized_crop, time_warp
from .waveform import peak_normalize, reverse

__all__ = [
    "add_noise",
    "add_noise_snr",
    "amplitude_to_db",
    "band_edges",
    "band_gains",
    "bernoulli",
    "beta",
    "butterworth_filter",
    "butterworth_magnitude",
    "colored_noise",
    "crop",
    "crop_segments",
    "fft_convolve",
    "fft_size",
    "filter_augment",
    "filter_margin",
    "filter_zero_phase",
    "frame_chunk_size",
    "gain",
    "looped_segments",
    "mask_along_axis",
    "mel_filterbank",
    "melspectrogram",
    "mix",
    "offsets_at",
    "peak_delay",
    "peak_normalize",
    "per_example",
    "randint_below",
    "random_phase_noise",
    "random_phases",
    "resized_crop",
    "reverse",
    "shift",
    "signal_power",
    "soft_targets",
    "time_warp",
    "uniform",
    "valid_mask",
]
