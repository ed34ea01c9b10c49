"""CutMix and SpecMix: pasted regions, area-weighted targets, one partner permutation.

The contract (gating, replay, eval, dtypes) is checked for both in test_contract.py;
here: what is pasted where, and that the targets are weighted by exactly that area.
"""

from __future__ import annotations

import pytest
import torch
from conftest import generator

import augkit as ak
from augkit import functional as F

SHAPE = (24, 2, 20, 30)  # (B, C, F, T)


def batch(shape=SHAPE, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.5


def reference_region(params, f, t, union):
    """The pasted region, example by example, from the drawn bands: (B, F, T) bool."""
    b = params["perm"].shape[0]
    out = torch.zeros(b, f, t, dtype=torch.bool)
    for i in range(b):
        rows = torch.zeros(f, dtype=torch.bool)
        cols = torch.zeros(t, dtype=torch.bool)
        starts, widths = params["t_start"][i].reshape(-1), params["t_width"][i].reshape(-1)
        for s, w in zip(starts.tolist(), widths.tolist(), strict=True):
            cols[s : s + w] = True
        if "f_start" in params:
            starts, widths = params["f_start"][i].reshape(-1), params["f_width"][i].reshape(-1)
            for s, w in zip(starts.tolist(), widths.tolist(), strict=True):
                rows[s : s + w] = True
        else:
            rows[:] = True
        out[i] = (rows[:, None] | cols[None, :]) if union else (rows[:, None] & cols[None, :])
    return out


TRANSFORMS = [
    pytest.param(lambda **k: ak.CutMix(mode="time", **k), False, id="cutmix-time"),
    pytest.param(lambda **k: ak.CutMix(mode="box", **k), False, id="cutmix-box"),
    pytest.param(lambda **k: ak.SpecMix(gamma=0.2, max_bands=3, **k), True, id="specmix"),
]


@pytest.mark.parametrize("make, union", TRANSFORMS)
def test_pastes_the_partner_region_and_weights_targets_by_its_exact_area(make, union, device):
    t = make(num_classes=SHAPE[0]).to(device)
    x = batch().to(device)
    labels = torch.arange(SHAPE[0], device=device)  # class i for example i: weights readable
    y, soft = t(x, target=labels, generator=generator(device, 1))
    params = {k: v.cpu() for k, v in t.last_params.items()}
    perm = params["perm"]
    region = reference_region(params, SHAPE[2], SHAPE[3], union)
    expected = torch.where(region[:, None], x.cpu()[perm], x.cpu())
    assert torch.equal(y.cpu(), expected)
    # The area, measured from the output: the elements that changed (partner != self).
    moved = perm != torch.arange(SHAPE[0])
    changed = (y.cpu() != x.cpu()).all(1).float().mean((1, 2))
    area = region.float().mean((1, 2))
    assert torch.equal(changed[moved], area[moved])
    assert ((area > 0) & (area < 1) & moved).sum() >= 5
    soft = soft.cpu()
    rows = torch.arange(SHAPE[0])
    want = torch.zeros(SHAPE[0], SHAPE[0])
    want[rows, rows] += 1 - area
    want[rows, perm] += area
    torch.testing.assert_close(soft, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(soft.sum(1), torch.ones(SHAPE[0]))


def test_cutmix_weights_by_the_clipped_box_not_the_nominal_one():
    """Boxes near an edge are clipped; the weight is what was pasted after clipping."""
    t = ak.CutMix(mode="box", num_classes=4, alpha=1.0)
    x = batch((512, 1, 16, 40))
    target = torch.arange(512) % 4
    t(x, target=target, generator=generator("cpu", 2))
    p = t.last_params
    assert (p["t_start"] >= 0).all() and (p["t_start"] + p["t_width"] <= 40).all()
    assert (p["f_start"] >= 0).all() and (p["f_start"] + p["f_width"] <= 16).all()
    # A box touching an edge was clipped when its width is below its partner axis's
    # share: both sides come from one ratio, so unequal ratios t_width/T != f_width/F
    # (beyond rounding) show the clipping happened, and the area follows the clip.
    clipped = ((p["t_width"] / 40 - p["f_width"] / 16).abs() > 1 / 16 + 1 / 40)
    assert clipped.sum() > 20
    area = F.pasted_area(F.band_mask(p["t_start"], p["t_width"], 40),
                         F.band_mask(p["f_start"], p["f_width"], 16))
    torch.testing.assert_close(area, (p["t_width"] * p["f_width"]).float() / 640)


def test_time_mode_takes_every_bin_and_draws_segment_sizes_from_beta():
    t = ak.CutMix(mode="time", alpha=1.0)
    x = batch((4000, 1, 4, 100))
    p = t.generate_params(x.shape, "cpu", generator("cpu", 3))
    assert set(p) == {"apply", "t_start", "t_width", "perm"}
    # alpha = 1: lam uniform, nominal width uniform on [0, T); clipping only shortens it.
    w = p["t_width"].float()
    assert (w >= 0).all() and (w <= 100).all()
    # A segment of width w * T (w uniform) about a uniform centre keeps w - w**2 / 4 of it
    # on average after clipping: E = 1/2 - 1/12 of T (less half a frame of flooring).
    assert abs(w.mean() - (100 / 2 - 100 / 12 - 0.5)) < 1.5
    # mode="time": the region spans every frequency bin.
    y = t(x[:8], params={k: v[:8] if k != "perm" else torch.arange(8).roll(1)
                         for k, v in p.items()})
    changed = (y != x[:8])[:, 0]  # (8, F, T)
    assert torch.equal(changed.any(1), changed.all(1))


def test_specmix_bands():
    t = ak.SpecMix(gamma=0.25, max_bands=3)
    p = t.generate_params((2000, 1, 40, 80), "cpu", generator("cpu", 4))
    for axis, length in (("t", 80), ("f", 40)):
        w = p[f"{axis}_width"]
        assert w.shape == (2000, 3)
        assert set(w.unique().tolist()) == {0, length // 4}
        # counts uniform on {0..3}; used bands come first
        count = (w > 0).sum(1)
        assert torch.equal(w > 0, torch.arange(3) < count[:, None])
        freq = torch.bincount(count, minlength=4).float() / 2000
        assert (freq - 0.25).abs().max() < 0.05
        assert (p[f"{axis}_start"] >= 0).all()
        assert (p[f"{axis}_start"] + length // 4 <= length).all()
    # overlapping bands are counted once: the area is that of the union
    start, width = torch.tensor([[2, 4, 9]]), torch.tensor([[5, 5, 0]])
    hit = F.band_mask(start, width, 12)
    assert hit.tolist() == [[False, False] + [True] * 7 + [False] * 3]
    fhit = F.band_mask(torch.tensor([[1, 0, 0]]), torch.tensor([[2, 0, 0]]), 10)
    area = F.pasted_area(hit, fhit, union=True)
    assert torch.equal(area, torch.tensor([(7 * 10 + 2 * 12 - 7 * 2) / 120]))  # float32


@pytest.mark.parametrize("cls", [ak.CutMix, ak.SpecMix])
def test_one_partner_permutation_per_batch(cls):
    t = cls(num_classes=3, same_on_batch=True, p=1.0)
    x = batch()
    t(x, generator=generator("cpu", 5))
    p = t.last_params
    perm = p["perm"]
    assert torch.equal(perm.sort().values, torch.arange(SHAPE[0]))  # a permutation
    assert not torch.equal(perm, torch.arange(SHAPE[0]))
    # same_on_batch shares the region, not the partners
    assert (p["t_width"] == p["t_width"][:1]).all() and (p["t_start"] == p["t_start"][:1]).all()
    # every channel of an example gets the same region from the same partner
    y = t(x, params=p)
    for c in range(SHAPE[1]):
        took = (y[:, c] == x[perm, c]) & (y[:, c] != x[:, c])
        assert torch.equal(took, (y != x).all(1))


@pytest.mark.parametrize("cls", [ak.CutMix, ak.SpecMix])
def test_regions_are_drawn_per_example(cls):
    t = cls(p=1.0)
    x = batch((64, 1, 20, 30))
    t(x, generator=generator("cpu", 6))
    p = t.last_params
    assert len({tuple(p["t_start"][i].reshape(-1).tolist()) for i in range(64)}) > 10
    assert len({tuple(p["t_width"][i].reshape(-1).tolist()) for i in range(64)}) >= 3


@pytest.mark.parametrize("cls", [ak.CutMix, ak.SpecMix])
def test_seeding_replay_and_eval(cls):
    t = cls(num_classes=5)
    x = batch()
    target = torch.arange(SHAPE[0]) % 5
    a, ta = t(x, target=target, generator=generator("cpu", 7))
    params = t.last_params
    b, tb = t(x, target=target, generator=generator("cpu", 7))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    c, tc = t(x, target=target, generator=generator("cpu", 8))
    assert not torch.equal(a, c) and not torch.equal(ta, tc)
    d, td = t(x, target=target, params=params)
    assert torch.equal(a, d) and torch.equal(ta, td)
    t.eval()
    e, te = t(x, target=target)
    assert e is x and torch.equal(te, torch.nn.functional.one_hot(target, 5).float())


def test_examples_not_drawn_keep_their_targets():
    t = ak.CutMix(mode="box", num_classes=6, p=0.5)
    x = batch()
    target = torch.arange(SHAPE[0]) % 6
    y, soft = t(x, target=target, generator=generator("cpu", 9))
    skipped = ~t.last_params["apply"]
    assert skipped.any()
    assert torch.equal(y[skipped], x[skipped])
    assert torch.equal(soft[skipped], torch.nn.functional.one_hot(target, 6).float()[skipped])


@pytest.mark.parametrize("step", [ak.CutMix(mode="box"), ak.SpecMix()], ids=["cutmix", "specmix"])
def test_composes_with_targets(step):
    chain = ak.Compose([ak.TimeMasking(5, p=1.0), step], num_classes=4)
    x = batch()
    target = torch.arange(SHAPE[0]) % 4
    y, soft = chain(x, target=target, generator=generator("cpu", 10))
    assert y.shape == x.shape and soft.shape == (SHAPE[0], 4)
    torch.testing.assert_close(soft.sum(1), torch.ones(SHAPE[0]))
    assert not torch.equal(soft, torch.nn.functional.one_hot(target, 4).float())
    y2, soft2 = chain(x, params=chain.last_params, target=target)
    assert torch.equal(y, y2) and torch.equal(soft, soft2)
    assert ak.Compose([ak.CutMix(num_classes=7)]).num_classes == 7


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="mode"):
        ak.CutMix(mode="freq")
    with pytest.raises(ValueError, match="alpha"):
        ak.CutMix(alpha=0)
    with pytest.raises(ValueError, match="gamma"):
        ak.SpecMix(gamma=0)
    with pytest.raises(ValueError, match="max_bands"):
        ak.SpecMix(max_bands=0)
    with pytest.raises(ValueError, match="spectrograms"):
        ak.CutMix()(torch.ones(2, 1, 100))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", [ak.CutMix, ak.SpecMix])
def test_no_host_sync_on_cuda(cls):
    t = cls(num_classes=10)
    x = torch.rand(8, 1, 64, 100, device="cuda")
    y = torch.randint(0, 10, (8,), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    t(x, target=y, generator=g)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        t(x, target=y, generator=g)
        t(x, target=y, params=t.last_params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
