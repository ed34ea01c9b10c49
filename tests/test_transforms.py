"""The random-transform contract, checked for every transform, plus each one's maths."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import generator

import augkit as ak
from augkit import functional as F

WAVE = (4, 2, 400)  # (B, C, T)
SPEC = (4, 2, 32, 50)  # (B, C, F, T)

# name -> (factory taking p, input shape)
TRANSFORMS = {
    "time_mask": (lambda p: ak.TimeMasking(10, num_masks=2, p=p), SPEC),
    "freq_mask": (lambda p: ak.FrequencyMasking(8, p=p), SPEC),
    "noise_snr": (lambda p: ak.GaussianNoise(snr_db=(0, 20), p=p), WAVE),
    "noise_std": (lambda p: ak.GaussianNoise(std=(0.01, 0.1), p=p), SPEC),
    "gain_db": (lambda p: ak.Gain(gain_db=(-12, 12), p=p), WAVE),
    "gain_factor": (lambda p: ak.Gain(factor=(0.5, 1.5), p=p), SPEC),
    "gain_power": (lambda p: ak.Gain(gain_db=(-6, 6), domain="power", p=p), SPEC),
    "gain_db_domain": (lambda p: ak.Gain(gain_db=(-6, 6), domain="db", p=p), SPEC),
    "crop": (lambda p: ak.RandomCrop(300, p=p), WAVE),
    "shift": (lambda p: ak.TimeShift(0.4, p=p), WAVE),
    "shift_zero": (lambda p: ak.TimeShift(100, rollover=False, p=p), WAVE),
    "polarity": (lambda p: ak.PolarityInversion(p=p), WAVE),
}
ALL = list(TRANSFORMS)


def make(name, p=1.0, device="cpu"):
    factory, shape = TRANSFORMS[name]
    x = torch.rand(shape, generator=torch.Generator().manual_seed(11)) + 0.5
    return factory(p).to(device), x.to(device)


def slice_params(params, i):
    return {k: v[i : i + 1] for k, v in params.items() if k != "noise"} | (
        {"noise": params["noise"][i : i + 1]} if "noise" in params else {})


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_device(name, device):
    t, x = make(name, device=device)
    y = t(x, generator=generator(device))
    assert y.device == x.device and y.dtype == x.dtype
    expected = (*x.shape[:-1], 300) if name == "crop" else x.shape
    assert y.shape == expected
    assert all(v.device.type == device.type for v in t.last_params.values())


@pytest.mark.parametrize("name", ALL)
def test_batch_consistency(name, device):
    """A batched call equals per-item calls given the same params."""
    t, x = make(name, device=device)
    batched = t(x, generator=generator(device))
    params = t.last_params
    if "noise" not in params:
        items = [t(x[i : i + 1], params=slice_params(params, i)) for i in range(x.shape[0])]
        torch.testing.assert_close(batched, torch.cat(items))
    else:
        items = [t(x[i : i + 1], params=slice_params(params, i)) for i in range(x.shape[0])]
        torch.testing.assert_close(batched, torch.cat(items), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_per_example_independence(name, device):
    """Identical inputs in one batch come out different (p=1)."""
    if name == "polarity":
        pytest.skip("polarity has no parameter besides p")
    t, x = make(name, device=device)
    x = x[:1].expand(16, *x.shape[1:]).contiguous()
    y = t(x, generator=generator(device))
    distinct = {tuple(y[i].flatten()[:4096].tolist()) for i in range(16)}
    assert len(distinct) > 8


@pytest.mark.parametrize("name", ALL)
def test_same_on_batch(name):
    t, x = make(name)
    t.same_on_batch = True
    x = x[:1].expand(8, *x.shape[1:]).contiguous()
    params = t.generate_params(x.shape, x.device, generator("cpu"))
    for k, v in params.items():
        if k != "noise":
            assert (v == v[:1]).all(), k
    if name not in ("noise_snr", "noise_std"):  # noise samples stay independent
        y = t(x, params=params)
        assert torch.equal(y, y[:1].expand_as(y))


@pytest.mark.parametrize("name", ALL)
def test_p0_is_identity(name):
    t, x = make(name, p=0.0)
    y = t(x, generator=generator("cpu"))
    if name == "crop":  # unapplied examples get the centre crop
        torch.testing.assert_close(y, x[..., 50:350])
    else:
        assert torch.equal(y, x)


@pytest.mark.parametrize("name", ALL)
def test_p1_always_applies(name):
    t, x = make(name, p=1.0)
    x = x[:1].expand(64, *x.shape[1:]).contiguous()
    y = t(x, generator=generator("cpu"))
    assert bool(t.last_params["apply"].all())
    if name in ("crop", "shift", "shift_zero", "time_mask", "freq_mask"):
        return  # a zero shift or width can legitimately leave an example as it was
    changed = (y != x).flatten(1).any(1)
    assert bool(changed.all())


@pytest.mark.parametrize("name", ["time_mask", "noise_std", "gain_db", "polarity", "crop"])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_empirical_rate_matches_p(name, p):
    t, _ = make(name, p=p)
    n = 4000
    shape = (n, *TRANSFORMS[name][1][1:])
    rate = t.generate_params(shape, "cpu", generator("cpu", 3))["apply"].float().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("name", ALL)
def test_generator_reproducibility_and_replay(name, device):
    t, x = make(name, p=0.5, device=device)
    x = x.repeat(4, *([1] * (x.ndim - 1)))  # B=16: two seeds differ somewhere
    a = t(x, generator=generator(device, 5))
    params = t.last_params
    b = t(x, generator=generator(device, 5))
    assert torch.equal(a, b)
    c = t(x, generator=generator(device, 6))
    assert not torch.equal(a, c)
    assert torch.equal(t(x, params=params), a)


@pytest.mark.parametrize("name", ALL)
def test_eval_is_identity(name):
    t, x = make(name)
    t.eval()
    assert t(x) is x


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_is_kept(name, dtype):
    t, x = make(name)
    x = x.to(dtype)
    y = t(x, generator=generator("cpu"))
    assert y.dtype == dtype
    y32 = t(x.float(), params=t.last_params)
    tol = 1e-6 if dtype == torch.float64 else 5e-2
    torch.testing.assert_close(y.float(), y32, rtol=tol, atol=tol)


def test_generator_on_wrong_device_is_an_error():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    t, x = make("gain_db")
    with pytest.raises(ValueError, match="generator"):
        t(x.cuda(), generator=torch.Generator())


# --- each transform's maths -------------------------------------------------------------


def test_masks_are_bands_within_max_width():
    t = ak.TimeMasking(7, num_masks=1)
    x = torch.ones(200, 1, 5, 40)
    y = t(x, generator=generator("cpu"))
    masked = (y == 0).all(dim=2).squeeze(1)  # (B, T): whole columns zeroed
    assert torch.equal(masked, (y == 0).any(dim=2).squeeze(1))
    widths = masked.sum(1)
    assert widths.max() == 7 and widths.min() == 0
    starts, w = t.last_params["start"][:, 0], t.last_params["width"][:, 0]
    assert torch.equal(widths, w)
    pos = torch.arange(40)
    assert torch.equal(masked, (pos >= starts[:, None]) & (pos < (starts + w)[:, None]))
    assert (starts + w <= 40).all()
    f = ak.FrequencyMasking(3, value="mean")
    x = torch.rand(8, 1, 20, 30)
    y = f(x, generator=generator("cpu"))
    rows = (y != x).any(dim=-1).squeeze(1)  # (B, F)
    assert torch.equal(rows.sum(1), f.last_params["width"][:, 0])


def test_noise_reaches_the_requested_snr():
    t = ak.GaussianNoise(snr_db=(10, 10), p=1.0)
    x = torch.sin(torch.linspace(0, 2000, 16000)).repeat(32, 1, 1) * torch.rand(32, 1, 1)
    y = t(x, generator=generator("cpu"))
    noise = y - x
    snr = 10 * torch.log10(x.square().mean((1, 2)) / noise.square().mean((1, 2)))
    assert (snr - 10).abs().max() < 0.3
    silent = t(torch.zeros(2, 1, 100), generator=generator("cpu"))
    assert torch.equal(silent, torch.zeros(2, 1, 100))


def test_gain_domains():
    x = torch.full((3, 1, 4), 2.0)
    g = torch.tensor([6.0, -6.0, 0.0])
    params = {"apply": torch.tensor([True, True, False]), "gain_db": g}
    amp = ak.Gain(gain_db=(-6, 6))(x, params=params)
    torch.testing.assert_close(amp[:, 0, 0], 2 * torch.tensor([10 ** 0.3, 10 ** -0.3, 1.0]))
    pw = ak.Gain(gain_db=(-6, 6), domain="power")(x, params=params)
    torch.testing.assert_close(pw[:, 0, 0], 2 * torch.tensor([10 ** 0.6, 10 ** -0.6, 1.0]))
    db = ak.Gain(gain_db=(-6, 6), domain="db")(x, params=params)
    torch.testing.assert_close(db[:, 0, 0], torch.tensor([8.0, -4.0, 2.0]))


def test_crop_takes_the_drawn_window_and_pads_short_clips():
    x = torch.arange(100.0).repeat(6, 2, 1)
    t = ak.RandomCrop(30)
    y = t(x, generator=generator("cpu"))
    off = t.last_params["offset"]
    for i in range(6):
        torch.testing.assert_close(y[i], x[i, :, off[i] : off[i] + 30])
    short = t(torch.ones(2, 1, 10), generator=generator("cpu"))
    assert short.shape == (2, 1, 30) and short[..., :10].eq(1).all() and short[..., 10:].eq(0).all()
    spec = t(torch.rand(2, 1, 8, 64), generator=generator("cpu"))
    assert spec.shape == (2, 1, 8, 30)


def test_shift_is_a_per_example_roll():
    x = torch.randn(5, 2, 50)
    t = ak.TimeShift(20, p=1.0)
    y = t(x, generator=generator("cpu"))
    for i, s in enumerate(t.last_params["shift"].tolist()):
        torch.testing.assert_close(y[i], torch.roll(x[i], s, dims=-1))
    z = ak.TimeShift(20, rollover=False, p=1.0)(x, params=t.last_params)
    for i, s in enumerate(t.last_params["shift"].tolist()):
        ref = torch.roll(x[i], s, dims=-1)
        if s > 0:
            ref[:, :s] = 0
        elif s < 0:
            ref[:, s:] = 0
        torch.testing.assert_close(z[i], ref)


def test_polarity():
    x = torch.randn(4, 1, 10)
    params = {"apply": torch.tensor([True, False, True, False])}
    y = ak.PolarityInversion()(x, params=params)
    torch.testing.assert_close(y, x * torch.tensor([-1.0, 1, -1, 1]).view(4, 1, 1))


def test_mixup():
    t = ak.Mixup(alpha=0.4, num_classes=3)
    x = torch.randn(6, 1, 8, 8)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = t(x, target, generator=generator("cpu"))
    lam, perm = t.last_params["lam"], t.last_params["perm"]
    onehot = torch.nn.functional.one_hot(target, 3).float()
    lv = lam.view(6, 1, 1, 1)
    torch.testing.assert_close(y, lv * x + (1 - lv) * x[perm])
    torch.testing.assert_close(soft, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm])
    torch.testing.assert_close(soft.sum(1), torch.ones(6))
    assert sorted(perm.tolist()) == list(range(6))
    t.eval()
    x2, soft2 = t(x, target)
    assert x2 is x and torch.equal(soft2, onehot)
    with pytest.raises(ValueError, match="num_classes"):
        ak.Mixup()(x, target)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.5])
def test_beta_sampler_moments(alpha):
    s = F.beta(alpha, (200_000,), "cpu", generator("cpu"))
    assert 0 <= s.min() and s.max() <= 1
    assert abs(s.mean().item() - 0.5) < 0.01
    assert abs(s.var().item() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_tutorial_recipe_is_expressible():
    """Noise std 0.01 and gain U(0.8, 1.2) on the power mel with p=0.5, masks up to 20."""
    recipe = ak.Compose([
        ak.MelFrontend(22050, n_fft=2048, hop_length=640, n_mels=128, log=None),
        ("noise", ak.GaussianNoise(std=0.01, p=0.5)),
        ("gain", ak.Gain(factor=(0.8, 1.2), p=0.5)),
        ("time_mask", ak.TimeMasking(20)),
        ("freq_mask", ak.FrequencyMasking(20)),
    ])
    y = recipe(torch.randn(8, 1, 22050), generator=generator("cpu"))
    assert y.shape == (8, 1, 128, 35)
    assert recipe.last_params["noise"]["std"].eq(0.01).all()
    f = recipe.last_params["gain"]["factor"]
    assert ((f >= 0.8) & (f <= 1.2)).all()


@pytest.mark.parametrize("factory, name", [
    (lambda: ak.TimeMasking(-1), "max_width"),
    (lambda: ak.TimeMasking(5, num_masks=0), "num_masks"),
    (lambda: ak.TimeMasking(5, value="median"), "value"),
    (lambda: ak.FrequencyMasking(5, p=1.5), "p"),
    (lambda: ak.GaussianNoise(), "snr_db"),
    (lambda: ak.GaussianNoise(snr_db=(30, 10)), "snr_db"),
    (lambda: ak.GaussianNoise(std=-0.1), "std"),
    (lambda: ak.Gain(), "gain_db"),
    (lambda: ak.Gain(factor=(-1, 1)), "factor"),
    (lambda: ak.Gain(gain_db=3, domain="loud"), "domain"),
    (lambda: ak.RandomCrop(0), "length"),
    (lambda: ak.TimeShift(1.5), "max_shift"),
    (lambda: ak.TimeShift(-3), "max_shift"),
    (lambda: ak.PolarityInversion(p=-0.1), "p"),
    (lambda: ak.Mixup(alpha=0), "alpha"),
    (lambda: ak.Mixup(num_classes=0), "num_classes"),
])
def test_invalid_arguments(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_wrong_input_rank_is_an_error():
    with pytest.raises(ValueError, match=r"TimeMasking expects .*\(B, C, F, T\)"):
        ak.TimeMasking(5)(torch.randn(10))
