"""Functional ops: pure, batched, no randomness of their own."""

from .air import air_absorption, air_absorption_db
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
from .distortion import abs_quantile, alias, bit_crush, clip, mu_law, tanh_distortion
from .eq import biquad_magnitude, biquad_margin, eq_filter, rbj_coefficients
from .filters import (
    band_edges,
    butterworth_filter,
    butterworth_magnitude,
    filter_margin,
    filter_zero_phase,
    notch_edges,
    notch_filter,
)
from .noise import colored_noise, looped_segments, random_phase_noise
from .normalize import (
    frame_moments,
    integrated_loudness,
    k_weighting,
    loudness_normalize,
    max_normalize,
    standardize,
)
from .paste import band_mask, cut_mix, pasted_area
from .random import bernoulli, beta, log_uniform, randint_below, random_phases, uniform
from .room import eyring_rt60, image_table, room_impulse_response
from .spectral import amplitude_to_db, frame_chunk_size, mel_filterbank, melspectrogram
from .spectro import band_gains, filter_augment, resized_crop, time_warp
from .waveform import peak_normalize, reverse

__all__ = [
    "abs_quantile",
    "add_noise",
    "add_noise_snr",
    "air_absorption",
    "air_absorption_db",
    "alias",
    "amplitude_to_db",
    "band_edges",
    "band_gains",
    "band_mask",
    "bernoulli",
    "beta",
    "biquad_magnitude",
    "biquad_margin",
    "bit_crush",
    "butterworth_filter",
    "butterworth_magnitude",
    "clip",
    "colored_noise",
    "crop",
    "crop_segments",
    "cut_mix",
    "eq_filter",
    "eyring_rt60",
    "fft_convolve",
    "fft_size",
    "filter_augment",
    "filter_margin",
    "filter_zero_phase",
    "frame_chunk_size",
    "frame_moments",
    "gain",
    "image_table",
    "integrated_loudness",
    "k_weighting",
    "log_uniform",
    "looped_segments",
    "loudness_normalize",
    "mask_along_axis",
    "max_normalize",
    "mel_filterbank",
    "melspectrogram",
    "mix",
    "mu_law",
    "notch_edges",
    "notch_filter",
    "offsets_at",
    "pasted_area",
    "peak_delay",
    "peak_normalize",
    "per_example",
    "randint_below",
    "random_phase_noise",
    "random_phases",
    "rbj_coefficients",
    "resized_crop",
    "reverse",
    "room_impulse_response",
    "shift",
    "signal_power",
    "soft_targets",
    "standardize",
    "tanh_distortion",
    "time_warp",
    "uniform",
    "valid_mask",
]
