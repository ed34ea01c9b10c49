"""PeakingFilter, LowShelfFilter, HighShelfFilter, ParametricEQ: parity and physics.

The generic contract (gate, replay, same_on_batch, p, eval, dtypes) is in
tests/test_contract.py via each class's ``cases``. Here: white noise through
each transform, its response estimated with Welch (output / input PSD) and
compared with ``scipy.signal.freqz`` of the cookbook biquad written out below
(independently of augkit's), including Q = 10; the magnitude against
torchaudio's ``equalizer_biquad`` / ``bass_biquad`` / ``treble_biquad`` (same
``f0``, gain and ``Q``: torchaudio's shelves take ``Q`` directly, default
0.707); the per-example draw; the padding; the argument checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch
import torchaudio.functional as TAF
from spectra import welch_db

import augkit as ak
from augkit import functional as F

SR = 16000
CLASSES = {"peaking": (ak.PeakingFilter, "center_hz"),
           "lowshelf": (ak.LowShelfFilter, "cutoff_hz"),
           "highshelf": (ak.HighShelfFilter, "cutoff_hz")}


def cookbook(kind, f0, gain_db, q, fs=SR):
    """RBJ Audio-EQ-Cookbook biquad (b, a), written out from the cookbook."""
    amp, w0 = 10 ** (gain_db / 40), 2 * np.pi * f0 / fs
    alpha, c = np.sin(w0) / (2 * q), np.cos(w0)
    if kind == "peaking":
        return (np.array([1 + alpha * amp, -2 * c, 1 - alpha * amp]),
                np.array([1 + alpha / amp, -2 * c, 1 - alpha / amp]))
    s = 2 * np.sqrt(amp) * alpha
    if kind == "lowshelf":
        b = [amp * ((amp + 1) - (amp - 1) * c + s), 2 * amp * ((amp - 1) - (amp + 1) * c),
             amp * ((amp + 1) - (amp - 1) * c - s)]
        a = [(amp + 1) + (amp - 1) * c + s, -2 * ((amp - 1) + (amp + 1) * c),
             (amp + 1) + (amp - 1) * c - s]
    else:
        b = [amp * ((amp + 1) + (amp - 1) * c + s), -2 * amp * ((amp - 1) + (amp + 1) * c),
             amp * ((amp + 1) + (amp - 1) * c - s)]
        a = [(amp + 1) - (amp - 1) * c + s, 2 * ((amp - 1) - (amp + 1) * c),
             (amp + 1) - (amp - 1) * c - s]
    return np.array(b), np.array(a)


def freqz_db(kind, f0, gain_db, q, freqs):
    b, a = cookbook(kind, f0, gain_db, q)
    return 20 * np.log10(np.abs(ss.freqz(b, a, worN=freqs, fs=SR)[1]))


@pytest.fixture(scope="module")
def noise():
    return torch.randn(4, 1, 8 * SR, generator=torch.Generator().manual_seed(0))


def given(key, f0, gain_db, q):
    return {"apply": torch.ones(len(f0), dtype=torch.bool), key: torch.tensor(f0),
            "gain_db": torch.tensor(gain_db), "q": torch.tensor(q)}


# (f0, gain_db, q) for 4 examples per filter kind, Q = 10 included
SETTINGS = {
    "peaking": ([100.0, 1000.0, 3000.0, 6500.0], [12.0, -12.0, 9.0, -9.0], [0.7, 10.0, 10.0, 2.0]),
    "lowshelf": ([60.0, 300.0, 1000.0, 4000.0], [12.0, -12.0, 9.0, -6.0], [0.707, 0.5, 2.0, 10.0]),
    "highshelf": ([200.0, 1000.0, 3000.0, 7000.0], [12.0, -12.0, -9.0, 6.0],
                  [0.707, 0.5, 2.0, 10.0]),
}
AUDIBLE = (50.0, 0.45 * SR)
TOL_DB = 0.1


@pytest.mark.parametrize("kind", list(CLASSES))
def test_white_noise_response_matches_the_cookbook_biquad(kind, noise):
    """Welch estimate of |H| (PSD ratio) within 0.1 dB of freqz over 50 Hz .. 0.45 fs."""
    cls, key = CLASSES[kind]
    f0, gains, qs = SETTINGS[kind]
    y = cls(sample_rate=SR, p=1.0)(noise, params=given(key, f0, gains, qs))
    f, measured = welch_db(noise, y, SR)
    band = (f >= AUDIBLE[0]) & (f <= AUDIBLE[1])
    for i in range(4):
        expected = freqz_db(kind, f0[i], gains[i], qs[i], f)
        err = np.abs(measured[i] - expected)[band].max()
        assert err < TOL_DB, (kind, i, err)


def test_parametric_eq_response_is_the_product_of_its_sections(noise):
    t = ak.ParametricEQ(n_bands=(1, 4), q=(0.5, 10.0), center_hz=(150.0, 7000.0),
                        sample_rate=SR, p=1.0)
    y = t(noise, generator=torch.Generator().manual_seed(2))
    p = {k: v.double().numpy() for k, v in t.last_params.items()}
    f, measured = welch_db(noise, y, SR)
    band = (f >= AUDIBLE[0]) & (f <= AUDIBLE[1])
    q = 1 / math.sqrt(2)
    for i in range(4):
        bands = zip(p["center_hz"][i], p["gain_db"][i], p["q"][i], strict=True)
        expected = sum(freqz_db("peaking", c, g, qq, f) for c, g, qq in bands)
        expected = expected + freqz_db("lowshelf", p["low_shelf_hz"][i],
                                       p["low_shelf_gain_db"][i], q, f)
        expected = expected + freqz_db("highshelf", p["high_shelf_hz"][i],
                                       p["high_shelf_gain_db"][i], q, f)
        assert np.abs(measured[i] - expected)[band].max() < TOL_DB, i


def test_each_example_gets_its_own_drawn_filter(noise):
    """Default-like ranges, 4 examples: each measured response fits its own last_params
    (within 0.25 dB: Welch smears the narrowest drawn peaks) and not its neighbour's."""
    t = ak.PeakingFilter(center_hz=(200.0, 4000.0), q=(0.5, 3.0), sample_rate=SR, p=1.0)
    y = t(noise, generator=torch.Generator().manual_seed(4))
    p = t.last_params
    f, measured = welch_db(noise, y, SR)
    band = (f >= AUDIBLE[0]) & (f <= AUDIBLE[1])
    expected = np.stack([freqz_db("peaking", float(p["center_hz"][i]), float(p["gain_db"][i]),
                                  float(p["q"][i]), f) for i in range(4)])
    assert np.abs(measured - expected)[:, band].max() < 0.25
    assert np.abs(measured - np.roll(expected, 1, axis=0))[:, band].max() > 1.0


@pytest.mark.parametrize("kind", list(CLASSES))
def test_magnitude_matches_torchaudio_biquads(kind):
    """The transform's zero-phase response to an impulse has torchaudio's IIR magnitude:
    equalizer_biquad(f0, gain, Q), bass_biquad(gain, f0, Q), treble_biquad(gain, f0, Q)."""
    cls, key = CLASSES[kind]
    f0, gains, qs = SETTINGS[kind]
    n = 1 << 15
    impulse = torch.zeros(4, 1, n, dtype=torch.float64)
    impulse[..., n // 2] = 1.0
    ours = cls(sample_rate=SR, p=1.0)(impulse, params=given(key, f0, gains, qs))
    ours_db = 20 * np.log10(np.abs(np.fft.rfft(ours[:, 0].numpy(), axis=-1)))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = (freqs >= AUDIBLE[0]) & (freqs <= AUDIBLE[1])
    for i in range(4):
        delta = 1e-3 * impulse[i, 0]  # small: torchaudio's lfilter clamps to [-1, 1]
        if kind == "peaking":
            h = TAF.equalizer_biquad(delta, SR, f0[i], gains[i], qs[i])
        elif kind == "lowshelf":
            h = TAF.bass_biquad(delta, SR, gains[i], f0[i], qs[i])
        else:
            h = TAF.treble_biquad(delta, SR, gains[i], f0[i], qs[i])
        ta_db = 20 * np.log10(np.abs(np.fft.rfft(h.numpy() / 1e-3)))
        assert np.abs(ours_db[i] - ta_db)[band].max() < 0.01, (kind, i)


def test_functional_magnitude_matches_freqz_exactly():
    freqs = np.concatenate([[0.0], np.geomspace(5.0, SR / 2, 400), [SR / 2]])
    for kind, (f0, gains, qs) in SETTINGS.items():
        b, a = F.rbj_coefficients(kind, torch.tensor(f0), torch.tensor(gains), torch.tensor(qs),
                                  SR)
        ours = 20 * np.log10(F.biquad_magnitude(torch.tensor(freqs), b, a, SR).double().numpy())
        for i in range(4):
            ref = freqz_db(kind, f0[i], gains[i], qs[i], freqs)
            assert np.abs(ours[i] - ref).max() < 1e-3, (kind, i)


def test_shelf_gains_at_dc_midpoint_and_nyquist():
    f = torch.tensor([0.0, 1000.0, SR / 2])
    for kind, ends in (("lowshelf", (9.0, 0.0)), ("highshelf", (0.0, 9.0))):
        b, a = F.rbj_coefficients(kind, torch.tensor([1000.0]), torch.tensor([9.0]),
                                  torch.tensor([0.707]), SR)
        g = (20 * F.biquad_magnitude(f, b, a, SR).log10())[0]
        torch.testing.assert_close(g, torch.tensor([ends[0], 4.5, ends[1]]), atol=1e-3, rtol=0)


def test_short_padding_matches_padding_by_the_whole_clip():
    """The transforms pad by biquad_margin (high Q, low centre here), not by the clip's
    length: the output is the same up to float32 rounding."""
    t = ak.PeakingFilter(center_hz=(40.0, 7900.0), q=(0.5, 10.0), gain_db=(-18, 18),
                         sample_rate=SR, p=1.0)
    x = torch.randn(16, 1, 4 * SR, generator=torch.Generator().manual_seed(0))
    x[..., -50:] += 5.0  # a loud end, to wrap around if the padding were short
    params = t.generate_params(x.shape, "cpu", torch.Generator().manual_seed(1))
    # the slowest corners of the ranges: lowest centre, highest Q, largest boost or cut
    params["center_hz"][:2], params["q"][:2] = 40.0, 10.0
    params["gain_db"][:2] = torch.tensor([18.0, -18.0])
    y = t(x, params=params)
    assert t.margin < x.shape[-1]
    full = F.eq_filter(x, *t.coefficients(params), SR)  # pads by T
    torch.testing.assert_close(y, full, rtol=0, atol=2e-6 * float(x.abs().max()))


def test_parametric_eq_draws_band_counts_and_flat_unused_bands():
    t = ak.ParametricEQ(n_bands=(0, 3), shelves=False, sample_rate=SR)
    p = t.sample(torch.Size([4000, 1, 100]), 4000, torch.device("cpu"),
                 torch.Generator().manual_seed(0))
    counts = torch.bincount(p["n_bands"], minlength=4).float() / 4000
    assert ((counts - 0.25).abs() < 0.03).all(), counts
    used = torch.arange(3) < p["n_bands"][:, None]
    assert (p["gain_db"][~used] == 0).all() and (p["gain_db"][used] != 0).all()
    assert set(p) == {"n_bands", "center_hz", "gain_db", "q"}
    x = torch.randn(4, 1, 800)
    none = {k: v[:4] for k, v in p.items()}
    none.update(n_bands=torch.zeros(4, dtype=torch.long), gain_db=torch.zeros(4, 3),
                apply=torch.ones(4, dtype=torch.bool))
    torch.testing.assert_close(t(x, params=none), x, atol=1e-5, rtol=0)  # all flat


def test_centres_and_q_are_drawn_log_uniformly():
    t = ak.PeakingFilter(center_hz=(100.0, 6400.0), q=(0.5, 8.0), sample_rate=SR)
    p = t.sample(torch.Size([20000, 1, 10]), 20000, torch.device("cpu"),
                 torch.Generator().manual_seed(0))
    for key, lo, octaves in (("center_hz", 100.0, 6), ("q", 0.5, 4)):
        counts = torch.histc(torch.log2(p[key] / lo), bins=octaves, min=0.0,
                             max=float(octaves)) / 20000
        assert (counts - 1 / octaves).abs().max() < 0.015, (key, counts)


@pytest.mark.parametrize("cls", [c for c, _ in CLASSES.values()] + [ak.ParametricEQ])
def test_sample_rate_has_no_default(cls):
    with pytest.raises(TypeError, match="sample_rate"):
        cls()
    with pytest.raises(ValueError, match="sample_rate"):
        cls(sample_rate=0)


@pytest.mark.parametrize("cls, kwargs, name", [
    (ak.PeakingFilter, dict(center_hz=(100.0, 8000.0)), "center_hz"),
    (ak.PeakingFilter, dict(q=(0.0, 1.0)), "q"),
    (ak.LowShelfFilter, dict(cutoff_hz=0.0), "cutoff_hz"),
    (ak.HighShelfFilter, dict(gain_db=(6.0, -6.0)), "gain_db"),
    (ak.ParametricEQ, dict(n_bands=(3, 2)), "n_bands"),
    (ak.ParametricEQ, dict(n_bands=(0, 0)), "n_bands"),
    (ak.ParametricEQ, dict(high_shelf_hz=(2000.0, 9000.0)), "high_shelf_hz"),
])
def test_bad_arguments_are_value_errors_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(sample_rate=SR, **kwargs)


def test_waveforms_only():
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        ak.PeakingFilter(sample_rate=SR)(torch.randn(2, 1, 8, 10))
