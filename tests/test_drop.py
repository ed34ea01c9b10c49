"""DropChunk: chunk counts, widths and positions, lengths respected, noise fill level.

The generic contract is in tests/test_contract.py via the class's ``cases``.
"""

from __future__ import annotations

import torch

import augkit as ak


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_dropped_samples_are_the_drawn_chunks_inside_the_valid_samples():
    x = torch.rand(32, 2, 4000, generator=gen(0)) + 0.5  # never 0
    lengths = torch.randint(500, 4001, (32,), generator=gen(1))
    t = ak.DropChunk(n_chunks=(0, 4), chunk_length=(50, 800), p=1.0)
    y = t(x, lengths=lengths, generator=gen(2))
    p = t.last_params
    dropped = y == 0
    assert torch.equal(dropped[:, 0], dropped[:, 1])  # channels share the chunks
    for i in range(32):
        n = int(lengths[i])
        assert not dropped[i, :, n:].any()  # the padding is never touched
        w = p["width"][i].clamp(max=n)
        room = n - w + 1
        start = torch.minimum((p["position"][i] * room).long(), room - 1)
        expected = torch.zeros(4000, dtype=torch.bool)
        for s, ww in zip(start.tolist(), w.tolist(), strict=True):
            expected[s : s + ww] = True
        assert torch.equal(dropped[i, 0], expected), i
        assert (p["width"][i, int(p["count"][i]):] == 0).all()
    counts = torch.bincount(p["count"], minlength=5)
    assert (counts > 0).all()


def test_noise_fill_has_the_examples_rms_times_noise_factor():
    x = torch.randn(4, 1, 20000, generator=gen(0)) * torch.tensor([0.1, 1.0, 3.0, 0.01]).view(
        4, 1, 1)
    t = ak.DropChunk(n_chunks=(3, 3), chunk_length=(2000, 3000), fill="noise",
                     noise_factor=0.5, p=1.0)
    y = t(x, generator=gen(1))
    changed = y != x
    for i in range(4):
        filled = y[i][changed[i]]
        ratio = filled.square().mean().sqrt() / x[i].square().mean().sqrt()
        assert abs(float(ratio) - 0.5) < 0.05, (i, float(ratio))


def test_bad_arguments_are_value_errors_naming_them():
    import pytest

    for kwargs, name in [(dict(n_chunks=(2, 1)), "n_chunks"), (dict(chunk_length=(0, 5)),
                         "chunk_length"), (dict(fill="hum"), "fill")]:
        with pytest.raises(ValueError, match=name):
            ak.DropChunk(**kwargs)
