"""DropFreq: notches measured from white noise, against the drawn parameters.

The generic contract (gate, replay, same_on_batch, p, eval, dtypes) is in
tests/test_contract.py via the class's ``cases``. Here: white noise through the
transform, its response estimated with Welch (output / input PSD): each notch's
deepest point sits on its drawn centre and is at least 60 dB down there (the
documented figure), and the whole response is the product of scipy's order-4
Butterworth band-stops with edges worked out below (independently of augkit's);
the draw, the padding, the argument checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch
from spectra import welch_db

import augkit as ak
from augkit import functional as F

SR = 16000
DEPTH_DB = 60.0  # documented: at least 60 dB down within width / 20 of the centre


def null_centred_edges(c, w, fs=SR):
    """-3 dB edges (Hz) of a band-stop whose null is at c: prewarped width that of c -/+ w/2,
    prewarped geometric centre tan(pi c / fs)."""
    nyq = fs / 2
    lo, hi = 1e-3 * nyq, (1 - 1e-3) * nyq
    warp = lambda f: np.tan(np.pi * np.clip(f, lo, hi) / fs)  # noqa: E731
    w0, bw = warp(c), warp(c + w / 2) - warp(c - w / 2)
    low = (-bw + np.sqrt(bw ** 2 + 4 * w0 ** 2)) / 2
    return np.arctan([low, low + bw]) * fs / np.pi


def scipy_notches_db(centres, widths, freqs):
    total = np.zeros_like(freqs)
    for c, w in zip(centres, widths, strict=True):
        if w > 0:
            sos = ss.butter(4, null_centred_edges(c, w), "bandstop", fs=SR, output="sos")
            total += 20 * np.log10(np.abs(ss.sosfreqz(sos, worN=freqs, fs=SR)[1]) + 1e-300)
    return total


@pytest.fixture(scope="module")
def measured():
    x = torch.randn(4, 1, 8 * SR, generator=torch.Generator().manual_seed(0))
    t = ak.DropFreq(n_notches=(1, 3), sample_rate=SR, p=1.0)
    y = t(x, generator=torch.Generator().manual_seed(3))
    return t.last_params, x, y


def test_notch_centres_measured_from_white_noise_are_the_drawn_ones(measured):
    params, x, y = measured
    f, db = welch_db(x, y, SR)
    checked = 0
    for i in range(4):
        for c, w in zip(params["center_hz"][i].tolist(), params["width_hz"][i].tolist(),
                        strict=True):
            if w == 0:
                continue
            band = np.abs(f - c) < w / 2
            deepest = f[band][np.argmin(db[i][band])]
            assert abs(deepest - c) <= max(w / 20, 2 * f[1]), (i, c, w, deepest)
            assert db[i][np.argmin(np.abs(f - c))] < -DEPTH_DB, (i, c, db[i].min())
            if w / 2 < c < SR / 2 - w / 2:  # the whole band fits: the documented depth
                assert db[i][np.abs(f - c) <= w / 20].max() < -DEPTH_DB, (i, c, w)
            checked += 1
    assert checked >= 6  # 1 to 3 notches per example, drawn


def test_response_is_the_product_of_scipy_butterworth_band_stops(measured):
    """Within 0.25 dB wherever the response is above -20 dB (Welch smears the steep sides
    of the nulls; 2 s segments)."""
    params, x, y = measured
    f, db = welch_db(x, y, SR, nperseg=32768)
    for i in range(4):
        expected = scipy_notches_db(params["center_hz"][i].double().numpy(),
                                    params["width_hz"][i].double().numpy(), f)
        keep = (expected > -20) & (f > 50) & (f < 0.49 * SR)
        assert np.abs(db[i] - expected)[keep].max() < 0.25, i


def test_the_edges_put_scipys_null_on_the_centre():
    """The independent edges above: scipy's band-stop is zero at c and -3 dB at the edges;
    augkit's notch_edges gives the same edges."""
    c, w = np.array([140.0, 1000.0, 4000.0, 7000.0]), np.array([800.0, 200.0, 500.0, 400.0])
    ours = F.notch_edges(torch.tensor(c), torch.tensor(w), SR).numpy()
    for k in range(4):
        edges = null_centred_edges(c[k], w[k])
        np.testing.assert_allclose(ours[k], edges, rtol=1e-9)
        sos = ss.butter(4, edges, "bandstop", fs=SR, output="sos")
        h = np.abs(ss.sosfreqz(sos, worN=[c[k], *edges], fs=SR)[1])
        assert h[0] < 1e-6 and np.allclose(h[1:], 2 ** -0.5, atol=1e-6)
        assert abs((edges[1] - edges[0]) - w[k]) < 0.1 * w[k] or c[k] < w[k] / 2


def test_counts_centres_and_unused_notches_are_drawn_as_documented():
    t = ak.DropFreq(freq_hz=(100.0, 7100.0), n_notches=(0, 3), sample_rate=SR)
    p = t.sample(torch.Size([8000, 1, 10]), 8000, torch.device("cpu"),
                 torch.Generator().manual_seed(0))
    counts = torch.bincount(p["n_notches"], minlength=4).float() / 8000
    assert ((counts - 0.25).abs() < 0.03).all(), counts
    used = torch.arange(3) < p["n_notches"][:, None]
    assert (p["width_hz"][~used] == 0).all() and (p["width_hz"][used] >= 100).all()
    hist = torch.histc(p["center_hz"], bins=7, min=100.0, max=7100.0) / p["center_hz"].numel()
    assert (hist - 1 / 7).abs().max() < 0.02, hist  # uniform in Hz, as SpeechBrain


def test_no_notch_is_flat():
    x = torch.randn(3, 2, 4000, generator=torch.Generator().manual_seed(1))
    y = F.notch_filter(x, torch.full((3, 2), 1000.0), torch.zeros(3, 2), SR)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_short_padding_matches_padding_by_the_whole_clip():
    t = ak.DropFreq(freq_hz=(40.0, 7900.0), width_hz=(20.0, 1000.0), sample_rate=SR, p=1.0)
    x = torch.randn(8, 1, 4 * SR, generator=torch.Generator().manual_seed(0))
    x[..., -50:] += 5.0  # a loud end, to wrap around if the padding were short
    params = t.generate_params(x.shape, "cpu", torch.Generator().manual_seed(1))
    params["center_hz"][:2, 0], params["width_hz"][:2, 0] = torch.tensor([40.0, 7900.0]), 20.0
    y = t(x, params=params)
    assert t.margin < x.shape[-1]
    full = F.notch_filter(x, params["center_hz"], params["width_hz"], SR)  # pads by T
    torch.testing.assert_close(y, full, rtol=0, atol=2e-6 * float(x.abs().max()))


def test_sample_rate_has_no_default():
    with pytest.raises(TypeError, match="sample_rate"):
        ak.DropFreq()


@pytest.mark.parametrize("kwargs, name", [
    (dict(freq_hz=(100.0, 8000.0)), "freq_hz"),
    (dict(freq_hz=0.0), "freq_hz"),
    (dict(n_notches=(3, 2)), "n_notches"),
    (dict(n_notches=(0, 0)), "n_notches"),
    (dict(width_hz=(0.0, 10.0)), "width_hz"),
])
def test_bad_arguments_are_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ak.DropFreq(sample_rate=SR, **kwargs)
