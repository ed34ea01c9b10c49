"""Repeat: n independently augmented views per example, view-major, in one chain call."""

from __future__ import annotations

import pytest
import torch
from conftest import generator

import augkit as ak

B = 6


def wave(b=B, t=800, seed=0):
    return torch.randn(b, 1, t, generator=torch.Generator().manual_seed(seed))


def chain(num_classes=3, mixup=True):
    steps = [ak.Gain(gain_db=(-12, 12), p=1.0), ak.GaussianNoise(snr_db=(10, 30), p=0.5),
             ak.MelFrontend(8000, n_fft=128, hop_length=64, n_mels=16, log=None),
             ak.AmplitudeToDB(top_db=80.0),
             ak.TimeMasking(3, p=1.0)]
    if mixup:
        steps.append(ak.Mixup(alpha=1.0, num_classes=num_classes))
    return ak.Compose(steps, num_classes=num_classes)


def test_view_major_order_and_independent_views(device):
    rep = ak.Repeat(ak.Gain(gain_db=(-12, 12), p=1.0), n_views=4).to(device)
    x = wave().to(device)
    y = rep(x, generator=generator(device))
    assert y.shape == (4 * B, 1, 800)
    gain = rep.last_params["gain_db"]
    assert gain.shape == (4 * B,)
    factor = 10 ** (gain / 20)
    # row v * B + i is view v of example i
    expected = x.repeat(4, 1, 1) * factor.view(-1, 1, 1)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    # every view of every example drew its own gain
    assert len(set(gain.tolist())) == 4 * B
    views = y.view(4, B, 1, 800)
    for v in range(1, 4):
        assert not torch.isclose(views[v], views[0]).flatten(1).all(1).any()


def test_compose_chain_shapes_and_targets():
    rep = ak.Repeat(chain(mixup=False), n_views=3)
    x = wave()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = rep(x, target=target, generator=generator("cpu"))
    assert y.shape[:2] == (3 * B, 1) and y.shape[2] == 16
    # targets tiled view-major and one-hot encoded by the chain
    assert torch.equal(soft, torch.nn.functional.one_hot(target.repeat(3), 3).float())
    # soft targets in are tiled as they are
    probs = torch.softmax(torch.randn(B, 3), -1)
    _, out = ak.Repeat(ak.Gain(p=1.0), 2)(x, target=probs)
    assert torch.equal(out, probs.repeat(2, 1))


def test_targets_go_through_mixup_inside_the_chain():
    rep = ak.Repeat(chain(), n_views=2)
    x = wave()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = rep(x, target=target, generator=generator("cpu", 1))
    mix = rep.last_params["mixup"]
    assert mix["perm"].shape == (2 * B,)  # one permutation over all the views
    onehot = torch.nn.functional.one_hot(target.repeat(2), 3).float()
    lam = mix["lam"].unsqueeze(-1)
    torch.testing.assert_close(soft, lam * onehot + (1 - lam) * onehot[mix["perm"]])
    assert not torch.equal(soft, onehot)


def test_include_original_comes_first_and_is_unaugmented():
    c = chain()
    rep = ak.Repeat(c, n_views=2, include_original=True)
    x = wave()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = rep(x, target=target, generator=generator("cpu", 2))
    assert y.shape[0] == 3 * B and soft.shape == (3 * B, 3)
    plain = c["amplitude_to_db"](c["mel_frontend"](x))
    torch.testing.assert_close(y[:B], plain, rtol=1e-5, atol=1e-5)
    assert torch.equal(soft[:B], torch.nn.functional.one_hot(target, 3).float())
    assert not torch.isclose(y[B:2 * B], plain).all()
    # the steps' p are restored; last_params belong to the augmented views
    assert [m.p for m in c.steps.values() if isinstance(m, ak.RandomTransform)] == \
        [1.0, 0.5, 1.0, 1.0]
    assert c.last_params["gain"]["gain_db"].shape == (2 * B,)
    # a crop: the original view is the centre crop, the same length as the views
    crop = ak.Repeat(ak.RandomCrop(500), n_views=2, include_original=True)
    z = crop(x, generator=generator("cpu"))
    assert z.shape == (3 * B, 1, 500)
    assert torch.equal(z[:B], x[..., 150:650])


def test_lengths_are_tiled():
    x = wave()
    lengths = torch.tensor([800, 700, 600, 500, 400, 300])
    irs = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    rep = ak.Repeat(ak.ImpulseResponse(irs, p=1.0), n_views=3, include_original=True)
    y = rep(x, lengths=lengths, generator=generator("cpu"))
    pad = torch.arange(800) >= lengths.view(-1, 1, 1)  # (B, 1, T)
    for v in range(4):
        view = y[v * B:(v + 1) * B]
        assert torch.equal(view[pad.expand_as(view)], x[pad.expand_as(x)])
        assert (v == 0) == torch.equal(view, x)


def test_generator_seeding_and_replay():
    rep = ak.Repeat(chain(), n_views=3)
    x = wave()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    a, ta = rep(x, target=target, generator=generator("cpu", 5))
    params = rep.last_params
    b, tb = rep(x, target=target, generator=generator("cpu", 5))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    c, _ = rep(x, target=target, generator=generator("cpu", 6))
    assert not torch.equal(a, c)
    d, td = rep(x, target=target, params=params)
    assert torch.equal(a, d) and torch.equal(ta, td)


def test_eval_runs_the_chain_once_without_copies():
    c = chain()
    rep = ak.Repeat(c, n_views=4, include_original=True).eval()
    assert not c.training
    x = wave()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = rep(x, target=target)
    assert torch.equal(y, c["amplitude_to_db"](c["mel_frontend"](x)))
    assert torch.equal(soft, torch.nn.functional.one_hot(target, 3).float())
    g = ak.Gain(p=1.0)
    assert ak.Repeat(g, 2).eval()(x) is x


def test_one_view_is_the_chain_itself():
    x = wave()
    g = ak.Gain(p=1.0)
    y = ak.Repeat(g, n_views=1)(x, generator=generator("cpu", 3))
    assert torch.equal(y, g(x, generator=generator("cpu", 3)))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="n_views"):
        ak.Repeat(ak.Gain(), n_views=0)
    with pytest.raises(ValueError, match="Compose or a RandomTransform"):
        ak.Repeat(lambda x: x)
    assert ak.Repeat(ak.Gain(), 3, include_original=True).views == 4
