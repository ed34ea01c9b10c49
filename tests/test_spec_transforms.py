"""TimeWarp, RandomResizedCrop, FilterAugment, PeakNormalize, TimeReversal: their maths.

The generic contract (gating, replay, dtypes, same_on_batch) is in test_contract.py;
here each transform is checked against what it is meant to compute.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from conftest import generator

import augkit as ak
from augkit.functional import spectro, waveform
from augkit.transforms import (
    filter_augment,
    peak_normalize,
    random_resized_crop,
    time_reversal,
    time_warp,
)

# --------------------------------------------------------------------------- TimeWarp


def expected_source(t: int, w0: int, d: int) -> np.ndarray:
    """Source position of every output frame: the piecewise-linear map, written out."""
    pos = np.arange(t, dtype=np.float64)
    w1, last = w0 + d, t - 1
    if d == 0:
        return pos
    return np.where(pos < w1, pos * w0 / w1, w0 + (pos - w1) * (last - w0) / (last - w1))


@pytest.mark.parametrize("t", [1, 2, 3, 4, 5, 100])
def test_time_warp_moves_the_warp_point_and_keeps_the_edges(t):
    x = torch.arange(t, dtype=torch.float32).expand(64, 2, 3, t).contiguous()
    warp = ak.TimeWarp(max_warp=10, p=1.0)
    y = warp(x, generator=generator("cpu"))
    w0, d = warp.last_params["point"], warp.last_params["distance"]
    w = max(min(10, (t - 3) // 2), 0)
    assert bool((d.abs() <= w).all())
    assert torch.equal(y[:, 1], y[:, 0])  # channels share the warp
    if w == 0:  # too short to warp: the identity
        assert torch.equal(y, x)
        return
    assert bool(((w0 >= w + 1) & (w0 <= t - w - 2)).all())
    assert bool((d != 0).any())
    rows = y[:, 0, 0]
    moved = torch.gather(rows, 1, (w0 + d).unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(moved, w0.float(), rtol=0, atol=1e-5)  # the point moved
    assert bool((rows[:, 0] == 0).all()) and bool((rows[:, -1] == t - 1).all())
    assert bool((rows.diff(dim=1) >= 0).all())  # monotone
    for b in range(8):  # and linear in between: every frame reads its mapped position
        ref = expected_source(t, int(w0[b]), int(d[b]))
        np.testing.assert_allclose(rows[b].numpy(), ref, rtol=0, atol=1e-5)


def test_time_warp_interpolates_content_like_np_interp():
    x = torch.randn(6, 2, 5, 40, generator=torch.Generator().manual_seed(1))
    warp = ak.TimeWarp(max_warp=8, p=1.0)
    y = warp(x, generator=generator("cpu", 2))
    w0, d = warp.last_params["point"].tolist(), warp.last_params["distance"].tolist()
    for b in range(6):
        src = expected_source(40, w0[b], d[b])
        for c in range(2):
            for f in range(5):
                ref = np.interp(src, np.arange(40), x[b, c, f].double().numpy())
                np.testing.assert_allclose(y[b, c, f].numpy(), ref, rtol=0, atol=1e-5)


def test_time_warp_distance_zero_is_bit_identical():
    x = torch.randn(8, 2, 16, 77, generator=torch.Generator().manual_seed(3))
    params = {"apply": torch.ones(8, dtype=torch.bool), "point": torch.arange(8) * 7 + 10,
              "distance": torch.zeros(8, dtype=torch.long)}
    assert torch.equal(ak.TimeWarp(p=1.0)(x, params=params), x)
    assert torch.equal(spectro.time_warp(x.double(), params["point"], params["distance"]),
                       x.double())


# --------------------------------------------------------------------------- RandomResizedCrop


def canvas_crop_reference(x: torch.Tensor, p: dict, b: int, canvas) -> torch.Tensor:
    """BYOL-A's way, for example ``b``: a real zero canvas, a slice and F.interpolate."""
    f, t = x.shape[-2:]
    fc, tc = canvas
    area = torch.zeros(x.shape[1], fc, tc)
    area[:, (fc - f) // 2:(fc - f) // 2 + f, (tc - t) // 2:(tc - t) // 2 + t] = x[b]
    top, left, h, w = (int(p[k][b]) for k in ("top", "left", "height", "width"))
    box = area[:, top:top + h, left:left + w]
    return torch.nn.functional.interpolate(box.unsqueeze(0), size=(f, t), mode="bilinear",
                                           align_corners=True)[0]


@pytest.mark.parametrize("kwargs", [{}, dict(virtual_scale=(1.3, 1.2), freq_scale=(0.5, 1.2),
                                              time_scale=(0.8, 1.4))])
def test_resized_crop_matches_an_explicit_canvas_crop_and_interpolate(kwargs):
    x = torch.randn(12, 2, 32, 50, generator=torch.Generator().manual_seed(4))
    rrc = ak.RandomResizedCrop(**kwargs, p=1.0)
    y = rrc(x, generator=generator("cpu"))
    assert y.shape == x.shape and y.dtype == x.dtype
    p = rrc.last_params
    assert bool(((p["height"] != 32) | (p["width"] != 50)).any())
    for b in range(x.shape[0]):
        ref = canvas_crop_reference(x, p, b, rrc.canvas(x.shape))
        # grid_sample's float32 grid moves samples by ~1e-6 frame: 1e-4 on N(0, 1) data.
        torch.testing.assert_close(y[b], ref, rtol=0, atol=1e-4)


def test_resized_crop_maps_a_marked_pixel_where_the_params_say():
    f, t, n = 32, 50, 16
    rrc = ak.RandomResizedCrop(p=1.0)
    p = rrc.generate_params((n, 1, f, t), "cpu", generator("cpu", 7))
    fc, tc = rrc.canvas((n, 1, f, t))
    off_f, off_t = (fc - f) // 2, (tc - t) // 2
    x = torch.zeros(n, 1, f, t)
    marks = []
    for b in range(n):
        top, left, h, w = (int(p[k][b]) for k in ("top", "left", "height", "width"))
        # A pixel of the input inside the box: the middle of their overlap.
        rows = (max(top - off_f, 0), min(top + h - 1 - off_f, f - 1))
        cols = (max(left - off_t, 0), min(left + w - 1 - off_t, t - 1))
        fi, ti = sum(rows) // 2, sum(cols) // 2
        x[b, 0, fi, ti] = 1.0
        # Where it lands in the output: its box coordinate scaled by (F - 1) / (h - 1).
        r = (fi + off_f - top) * (f - 1) / max(h - 1, 1)
        c = (ti + off_t - left) * (t - 1) / max(w - 1, 1)
        marks.append((r, c, (h - 1) / (f - 1), (w - 1) / (t - 1)))
    y = rrc(x, params=p)
    for b, (r, c, sy, sx) in enumerate(marks):
        flat = int(y[b, 0].argmax())
        r0, c0 = divmod(flat, t)
        assert abs(r0 - r) <= 0.5 + 1e-6 and abs(c0 - c) <= 0.5 + 1e-6, (b, r0, c0, r, c)
        # Its value is the bilinear weight: the hat function at the sampling distance.
        weight = (1 - abs(r0 - r) * sy) * (1 - abs(c0 - c) * sx)
        assert abs(float(y[b, 0, r0, c0]) - weight) < 1e-4


def test_resized_crop_with_unit_scales_is_near_identity_and_keeps_shape():
    x = torch.randn(4, 3, 20, 37, generator=torch.Generator().manual_seed(5))
    rrc = ak.RandomResizedCrop(virtual_scale=(1, 1), freq_scale=(1, 1), time_scale=(1, 1),
                               p=1.0)
    y = rrc(x, generator=generator("cpu"))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-5)
    assert rrc(x[:, 0], generator=generator("cpu")).shape == (4, 20, 37)  # (B, F, T)


def test_resized_crop_virtual_scale_is_per_axis_not_a_range():
    rrc = ak.RandomResizedCrop(virtual_scale=(1.5, 1.0))
    assert rrc.canvas((1, 1, 40, 100)) == (60, 100)
    with pytest.raises(ValueError, match="virtual_scale"):
        ak.RandomResizedCrop(virtual_scale=(0.9, 1.2))


# --------------------------------------------------------------------------- FilterAugment


def reference_gain(edges: list[int], gains: list[float], linear: bool) -> torch.Tensor:
    """The reference code's construction: a slice per band, linspace in linear mode."""
    out = torch.zeros(edges[-1], dtype=torch.float64)
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        if hi > lo:
            out[lo:hi] = (torch.linspace(gains[k], gains[k + 1], hi - lo, dtype=torch.float64)
                          if linear else gains[k])
    return out


@pytest.mark.parametrize("mode", ["linear", "step"])
def test_filter_augment_adds_the_drawn_band_gains(mode):
    f, n, lo, hi = 64, 200, 3, 6
    x = torch.randn(n, 2, f, 5, generator=torch.Generator().manual_seed(6)) * 10 - 40
    fa = ak.FilterAugment(db_range=(-6, 6), n_bands=(lo, hi), mode=mode, p=1.0)
    y = fa(x, generator=generator("cpu"))
    added = (y - x).double()
    torch.testing.assert_close(added, added[:, :1, :, :1].expand_as(added), rtol=0, atol=1e-5)
    edges, gains = fa.last_params["edges"], fa.last_params["gain_db"]
    sizes = edges.diff(dim=1)
    count = (sizes > 0).sum(1)
    assert bool(((count >= lo) & (count <= hi)).all())
    assert set(count.tolist()) == set(range(lo, hi + 1))  # both ends drawn: inclusive
    min_bw = 6 if mode == "linear" else 4
    assert bool(((sizes >= min_bw) | (sizes == 0)).all())
    per_bin = added[:, 0, :, 0]
    assert bool((per_bin.abs() <= 6 + 1e-5).all())
    for b in range(n):
        ref = reference_gain(edges[b].tolist(), gains[b].tolist(), mode == "linear")
        torch.testing.assert_close(per_bin[b], ref, rtol=0, atol=1e-5)
    if mode == "step":  # piecewise constant: as many runs of equal gain as bands
        runs = 1 + (per_bin.diff(dim=1).abs() > 1e-3).sum(1)  # y - x rounds at ~4e-6
        assert torch.equal(runs, count)
    else:  # piecewise linear: constant slope inside each band
        slopes = per_bin.diff(dim=1)
        for b in range(5):
            e = edges[b].tolist()
            for k in range(int(count[b])):
                band = slopes[b, e[k]:e[k + 1] - 1]
                torch.testing.assert_close(band, band[:1].expand_as(band), rtol=0, atol=1e-5)


def test_filter_augment_short_axis_and_zero_gain():
    x = torch.randn(32, 1, 7, 3, generator=torch.Generator().manual_seed(8))
    fa = ak.FilterAugment(n_bands=(3, 6), p=1.0)  # 7 bins: bands narrower than 6
    y = fa(x, generator=generator("cpu"))
    sizes = fa.last_params["edges"].diff(dim=1)
    count = (sizes > 0).sum(1)
    assert bool((count <= 6).all() & (count >= 1).all()) and not torch.equal(y, x)
    params = {**fa.last_params, "gain_db": torch.zeros_like(fa.last_params["gain_db"])}
    assert torch.equal(fa(x, params=params), x)


# --------------------------------------------------------------------------- PeakNormalize


def test_peak_normalize_scales_every_drawn_example_to_peak_one():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(16, 2, 400, generator=g) * torch.rand(16, 1, 1, generator=g) * 3
    x[3] = 0.0  # silent
    y = ak.PeakNormalize(p=1.0)(x)
    peaks = y.abs().amax(dim=(1, 2))
    assert torch.equal(peaks[torch.arange(16) != 3], torch.ones(15))
    assert torch.equal(y[3], torch.zeros(2, 400)) and not y.isnan().any()
    ratio = x.abs().amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(y[:3], x[:3] / ratio[:3])  # one factor for both channels


def test_peak_normalize_ignores_padding_and_leaves_it():
    x = torch.rand(4, 2, 100, generator=torch.Generator().manual_seed(10)) * 0.3
    lengths = torch.tensor([100, 60, 1, 0])
    pad = torch.arange(100) >= lengths.view(-1, 1, 1)
    zero_pad = torch.where(pad, 0.0, x)
    loud_pad = torch.where(pad, 50.0, x)
    for x_in, fill in ((zero_pad, 0.0), (loud_pad, 50.0)):
        y = ak.PeakNormalize(p=1.0)(x_in, lengths=lengths)
        valid_peak = torch.where(pad, 0.0, y.abs()).amax(dim=(1, 2))
        assert torch.equal(valid_peak, torch.tensor([1.0, 1.0, 1.0, 0.0]))
        assert bool((y[pad.expand_as(y)] == fill).all())  # padding left as it was
    assert torch.equal(ak.PeakNormalize(p=1.0)(torch.zeros(2, 1, 8), lengths=torch.tensor([8, 3])),
                       torch.zeros(2, 1, 8))


# --------------------------------------------------------------------------- TimeReversal


def test_time_reversal_is_flip_at_full_length():
    x = torch.randn(4, 2, 32, 50, generator=torch.Generator().manual_seed(12))
    assert torch.equal(ak.TimeReversal(p=1.0)(x), torch.flip(x, (-1,)))
    assert torch.equal(ak.TimeReversal(p=1.0)(x, lengths=torch.full((4,), 50)),
                       torch.flip(x, (-1,)))


def test_time_reversal_reverses_the_valid_part_and_keeps_padding_at_the_end():
    lengths = torch.tensor([10, 7, 1, 0, 25])
    x = torch.arange(1.0, 11.0).expand(5, 2, 10).clone()
    x = torch.where(torch.arange(10) < lengths.clamp_max(10).view(-1, 1, 1), x, 0.0)
    y = ak.TimeReversal(p=1.0)(x, lengths=lengths)
    for b, n in enumerate(lengths.clamp_max(10).tolist()):
        assert torch.equal(y[b, :, :n], torch.flip(x[b, :, :n], (-1,)))
        assert torch.equal(y[b, :, n:], torch.zeros(2, 10 - n))
    assert torch.equal(y[1, 0], torch.tensor([7.0, 6, 5, 4, 3, 2, 1, 0, 0, 0]))
    t = ak.TimeReversal(p=0.5)  # the gate: examples not drawn are kept
    z = t(x, lengths=lengths, generator=generator("cpu", 1))
    drawn = t.last_params["apply"].view(-1, 1, 1)
    assert torch.equal(z, torch.where(drawn, y, x))


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize("module", [time_warp, random_resized_crop, filter_augment,
                                    peak_normalize, time_reversal, spectro, waveform])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs={"torch": torch})
    assert result.failed == 0
    if module not in (spectro, waveform):
        assert result.attempted > 0
