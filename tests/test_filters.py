"""LowPassFilter, HighPassFilter, BandPassFilter, BandStopFilter: parity and physics.

The generic contract (gate, replay, same_on_batch, p, eval, dtypes) is in
tests/test_contract.py via each class's ``cases``. Here: the magnitude response
against ``scipy.signal.butter`` + ``sosfreqz``, sine tones through the
transforms (pass band, stop band, roll-off, per-example cutoffs), no circular
wrap-around, the log-uniform draw and the argument checks.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

import augkit as ak
from augkit.functional import filters as FF
from augkit.transforms import filters as filters_module

SR = 16000
ORDER = 4
CLASSES = {"lowpass": ak.LowPassFilter, "highpass": ak.HighPassFilter,
           "bandpass": ak.BandPassFilter, "bandstop": ak.BandStopFilter}


def scipy_magnitude(btype, edges, freqs, sr=SR):
    """|H| of scipy's order-4 digital Butterworth filter at ``freqs`` (Hz)."""
    sos = ss.butter(ORDER, edges, btype, fs=sr, output="sos")
    return np.abs(ss.sosfreqz(sos, worN=np.asarray(freqs, dtype=np.float64), fs=sr)[1])


def db(a):
    return 20 * np.log10(np.maximum(np.asarray(a, dtype=np.float64), 1e-12))


def tones(freqs, seconds=1.0, sr=SR):
    """(len(freqs), T) float32 unit sines, one per row."""
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return torch.sin(2 * math.pi * torch.tensor(freqs, dtype=torch.float64)[:, None] * t).float()


def gain_db(y, x):
    """RMS ratio in dB over the middle 80 % (away from the clip's edges), last axis."""
    n = x.shape[-1]
    sl = slice(n // 10, n - n // 10)
    ry = y[..., sl].double().pow(2).mean(-1).sqrt()
    rx = x[..., sl].double().pow(2).mean(-1).sqrt()
    return (20 * torch.log10(ry.clamp_min(1e-30) / rx)).numpy()


def build(btype, **kw):
    return CLASSES[btype](sample_rate=SR, p=1.0, **kw)


def fixed(btype, hz, bw=None):
    """A transform with a degenerate range: always the same cutoff (or band)."""
    return build(btype, cutoff_hz=(hz, hz)) if bw is None else build(
        btype, center_hz=(hz, hz), bandwidth_fraction=(bw, bw))


def run(t, x):
    """x (K, T) tones as K channels of one example -> (K,) gains in dB."""
    return gain_db(t(x[None], generator=torch.Generator().manual_seed(0))[0], x)


# ---------------------------------------------------------------- reference parity


@pytest.mark.parametrize("btype, edges", [
    ("lowpass", [150.0, 1000.0, 7000.0]),
    ("highpass", [20.0, 300.0, 2400.0]),
    ("bandpass", [[150.0, 450.0], [500.0, 3000.0], [40.0, 7900.0]]),
    ("bandstop", [[150.0, 450.0], [500.0, 3000.0], [40.0, 7900.0]]),
])
def test_magnitude_matches_scipy_butter_per_example(btype, edges):
    """Each example's |H| equals scipy.signal.butter(4, its edges)'s magnitude: within
    0.05 dB wherever scipy's gain is above -60 dB, and within 1e-4 absolute everywhere."""
    freqs = np.concatenate([[0.0], np.geomspace(5.0, SR / 2, 600), [SR / 2]])
    ours = FF.butterworth_magnitude(torch.tensor(freqs), torch.tensor(edges), btype, SR,
                                    ORDER).double().numpy()
    assert ours.shape == (len(edges), len(freqs)) and np.isfinite(ours).all()
    for i, e in enumerate(edges):  # one example at a time
        ref = scipy_magnitude(btype, e, freqs)
        keep = ref > 1e-3
        assert np.abs(db(ours[i][keep]) - db(ref[keep])).max() < 0.05, (btype, e)
        assert np.abs(ours[i] - ref).max() < 1e-4, (btype, e)


def test_band_edges_are_center_times_one_minus_plus_half_fraction_clamped():
    e = FF.band_edges(torch.tensor([1000.0, 4000.0, 7000.0]), torch.tensor([0.5, 1.0, 1.9]), SR)
    torch.testing.assert_close(e[:2], torch.tensor([[750.0, 1250.0], [2000.0, 6000.0]]))
    assert e[2, 0] == pytest.approx(350.0) and e[2, 1] == pytest.approx(0.999 * SR / 2)


# ---------------------------------------------------------------- physics with sine tones

# (filter, its fixed setting, pass-band tones, stop-band tones two octaves away)
PHYSICS = [
    ("lowpass", dict(hz=1000.0), [125.0, 250.0], [4000.0, 6000.0]),
    ("highpass", dict(hz=2000.0), [6000.0, 7500.0], [250.0, 500.0]),
    ("bandpass", dict(hz=1000.0, bw=0.5), [968.0, 1000.0], [187.0, 5000.0]),
    ("bandstop", dict(hz=1000.0, bw=0.5), [187.0, 5000.0], [968.0]),
]
STOP_DB = 40.0  # at least this much attenuation two octaves past a cutoff (24 dB/oct nominal)


@pytest.mark.parametrize("btype, setting, passband, stopband", PHYSICS)
def test_sine_tones_pass_band_and_stop_band(btype, setting, passband, stopband):
    """Pass-band tones within 0.1 dB of 0 dB; stop-band tones at least 40 dB down."""
    t = fixed(btype, **setting)
    g = run(t, tones(passband + stopband))
    assert np.abs(g[: len(passband)]).max() < 0.1, g
    assert (g[len(passband):] < -STOP_DB).all(), g


@pytest.mark.parametrize("btype, setting, octaves", [
    ("lowpass", dict(hz=1000.0), [2000.0, 4000.0]),    # one and two octaves above
    ("highpass", dict(hz=2000.0), [1000.0, 500.0]),    # one and two octaves below
    ("bandpass", dict(hz=1000.0, bw=0.5), [2500.0, 5000.0]),  # above the 1250 Hz edge
    ("bandpass", dict(hz=2000.0, bw=0.5), [750.0, 375.0]),    # below the 1500 Hz edge
])
def test_roll_off_is_at_least_12_db_per_octave(btype, setting, octaves):
    g = run(fixed(btype, **setting), tones(octaves))
    assert g[0] - g[1] >= 12.0, g


@pytest.mark.parametrize("btype", list(CLASSES))
def test_each_example_is_filtered_at_its_own_drawn_cutoff(btype):
    """8 examples with different drawn cutoffs (default ranges), 4 tones as channels:
    each example's measured gains match scipy's |H| at *its own* cutoff (last_params)."""
    freqs = [100.0, 700.0, 2000.0, 6000.0]
    x = tones(freqs)[None].expand(8, -1, -1).contiguous()
    t = build(btype)
    y = t(x, generator=torch.Generator().manual_seed(3))
    params = t.last_params
    measured = gain_db(y, x)  # (8, 4)
    if btype in ("lowpass", "highpass"):
        edges = params["cutoff_hz"].double().numpy()
    else:
        edges = FF.band_edges(params["center_hz"], params["bandwidth_fraction"],
                              SR).double().numpy()
    assert len(np.unique(edges.round(3), axis=0)) == 8
    expected = np.stack([db(scipy_magnitude(btype, e, freqs)) for e in edges])
    audible = expected > -40
    assert np.abs(measured - expected)[audible].max() < 0.5
    assert (measured[~audible] < -35).all()
    # and the other examples' cutoffs would not fit: the check can tell examples apart
    shifted = np.roll(expected, 1, axis=0)
    assert np.abs(measured - shifted).max() > 3.0


def test_no_circular_wrap_around():
    """An impulse at the end of a clip leaves the start of the clip silent."""
    x = torch.zeros(1, 1, 400)
    x[..., -1] = 1.0
    y = fixed("lowpass", hz=1000.0)(x)
    assert y[..., :200].abs().max() < 1e-6
    assert y[..., -1].item() > 0.05  # the impulse itself came through


def test_shape_length_and_dtype_kept_for_odd_lengths():
    for length in (1, 7, 401):
        for dtype in (torch.float32, torch.bfloat16, torch.float64):
            x = torch.randn(3, 2, length).to(dtype)
            y = build("bandpass")(x)
            assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y.float()).all()


# ---------------------------------------------------------------- drawing and arguments


@pytest.mark.parametrize("btype, key", [("lowpass", "cutoff_hz"), ("bandstop", "center_hz")])
def test_cutoffs_are_drawn_log_uniformly(btype, key):
    # six octaves: a sixth of the draws in each (the band's upper edge stays below Nyquist)
    rng = (100.0, 6400.0) if key == "cutoff_hz" else (50.0, 3200.0)
    kw = {key: rng} if key == "cutoff_hz" else {key: rng, "bandwidth_fraction": (0.5, 1.0)}
    t = CLASSES[btype](sample_rate=SR, **kw)
    v = t.sample(torch.Size([20000, 1, 400]), 20000, torch.device("cpu"),
                 torch.Generator().manual_seed(0))[key]
    assert v.min() >= rng[0] and v.max() <= rng[1]
    counts = torch.histc(torch.log2(v / rng[0]), bins=6, min=0.0, max=6.0) / v.numel()
    assert (counts - 1 / 6).abs().max() < 0.015, counts


def test_degenerate_ranges_give_exactly_that_value():
    t = fixed("bandpass", 1234.5, 0.75)
    t(torch.randn(4, 1, 100))
    assert (t.last_params["center_hz"] == 1234.5).all()
    assert (t.last_params["bandwidth_fraction"] == 0.75).all()
    t = fixed("highpass", 321.0)
    t(torch.randn(4, 1, 100))
    assert (t.last_params["cutoff_hz"] == 321.0).all()


@pytest.mark.parametrize("cls", list(CLASSES.values()))
def test_sample_rate_has_no_default(cls):
    with pytest.raises(TypeError, match="sample_rate"):
        cls()
    with pytest.raises(ValueError, match="sample_rate"):
        cls(sample_rate=0)


@pytest.mark.parametrize("btype, kwargs, name", [
    ("lowpass", dict(cutoff_hz=(0.0, 1000.0)), "cutoff_hz"),
    ("lowpass", dict(cutoff_hz=(100.0, 8000.0)), "cutoff_hz"),
    ("highpass", dict(cutoff_hz=(-5.0, 100.0)), "cutoff_hz"),
    ("highpass", dict(cutoff_hz=(200.0, 100.0)), "cutoff_hz"),
    ("bandpass", dict(center_hz=(100.0, 9000.0)), "center_hz"),
    ("bandstop", dict(center_hz=0.0), "center_hz"),
    ("bandpass", dict(bandwidth_fraction=(0.5, 2.0)), "bandwidth_fraction"),
    ("bandstop", dict(bandwidth_fraction=(0.0, 1.0)), "bandwidth_fraction"),
    ("bandstop", dict(bandwidth_fraction=(0.5, float("nan"))), "bandwidth_fraction"),
])
def test_bad_arguments_are_value_errors_naming_them(btype, kwargs, name):
    with pytest.raises(ValueError, match=name):
        CLASSES[btype](sample_rate=SR, **kwargs)


def test_waveforms_only():
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        build("lowpass")(torch.randn(2, 1, 8, 10))


@pytest.mark.parametrize("module", [FF, filters_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS,
                             extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("btype, kwargs", [
    ("lowpass", {}), ("highpass", {}), ("bandpass", {}), ("bandstop", {}),
    ("highpass", dict(cutoff_hz=(5.0, 7990.0))),
    ("bandpass", dict(center_hz=(100.0, 4000.0), bandwidth_fraction=(0.05, 1.99))),
])
def test_short_padding_matches_padding_by_the_whole_clip(btype, kwargs):
    """The transforms pad by filter_margin (the slowest drawable impulse response's
    length), not by the clip's length: the output is the same up to rounding."""
    t = CLASSES[btype](sample_rate=SR, p=1.0, **kwargs)
    x = torch.randn(16, 2, 3 * SR, generator=torch.Generator().manual_seed(0))
    x[..., -50:] += 5.0  # a loud end, to wrap around if the padding were short
    y = t(x, generator=torch.Generator().manual_seed(1))
    assert t.margin < x.shape[-1] or kwargs  # the defaults do pad less than T
    full = FF.butterworth_filter(x, t.edges(t.last_params), btype, SR)  # pads by T
    # float32 rounding of signals up to ~10: ~2e-6 (a padding 4x too short: ~2e-4)
    torch.testing.assert_close(y, full, rtol=0, atol=1e-6 * float(x.abs().max()))
