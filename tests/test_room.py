"""RoomSimulator and the batched image-source model behind it.

References: an independent numpy loop over the unfolded room lattice (always),
pyroomacoustics (when installed: a test-only dependency), and Eyring's RT60
measured by Schroeder backward integration.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import generator

import augkit as ak
from augkit.functional import room as R

FS = 16000
ROOMS = [([6.0, 5.0, 3.0], [2.0, 3.1, 1.5], [4.2, 1.4, 1.2], 0.3),
         ([4.0, 3.5, 2.7], [1.0, 1.0, 1.0], [2.9, 2.2, 1.8], 0.15),
         ([9.0, 7.0, 3.5], [7.5, 1.2, 2.0], [2.0, 5.0, 1.1], 0.5)]


def batch(rooms=ROOMS):
    return [torch.tensor([r[i] for r in rooms], dtype=torch.float32) for i in range(4)]


def numpy_rir(dims, src, mic, alpha, order, length, fs=FS, c=R.SPEED_OF_SOUND):
    """Image sources cell by cell of the unfolded lattice: cell k of an axis holds the
    source mirrored k times, at k L + (s if k is even else L - s), after |k| reflections."""
    h = np.zeros(length)
    beta = math.sqrt(1 - alpha)
    ks = range(-order, order + 1)
    for kx in ks:
        for ky in ks:
            for kz in ks:
                n = abs(kx) + abs(ky) + abs(kz)
                if n > order:
                    continue
                pos = [k * d + (s if k % 2 == 0 else d - s)
                       for k, d, s in zip((kx, ky, kz), dims, src, strict=True)]
                dist = math.dist(pos, mic)
                i = round(dist / c * fs)
                if i < length:
                    h[i] += beta**n / (4 * math.pi * dist)
    return h


def rt60_schroeder(h, fs=FS, lo=-5.0, hi=-35.0):
    """T30: the Schroeder decay's least-squares slope from lo to hi dB, times 60 dB."""
    edc = np.cumsum(np.asarray(h, dtype=np.float64)[::-1] ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-300)
    t = np.arange(len(h)) / fs
    sel = (db <= lo) & (db >= hi)
    slope = np.polyfit(t[sel], db[sel], 1)[0]
    return -60.0 / slope


def test_image_table():
    images, shell = R.image_table(3)
    assert images.shape[0] == (2 * 3 + 1) * (2 * 3**2 + 2 * 3 + 3) // 3  # 63
    assert images[0].tolist() == [0, 0, 0, 0, 0, 0, 0]  # the direct path first
    assert (images[:, 6] <= 3).all() and (shell[:, 6] == 4).all()
    assert torch.equal(images[:, 6], images[:, 6].sort().values)


def test_matches_an_independent_image_source_loop():
    room, src, mic, alpha = batch()
    images, _ = R.image_table(4)
    ours = R.room_impulse_response(room, src, mic, alpha, FS, 3000, images)
    for i, (dims, s, m, a) in enumerate(ROOMS):
        ref = numpy_rir(dims, s, m, a, 4, 3000)
        np.testing.assert_allclose(ours[i].numpy(), ref, rtol=1e-4, atol=1e-7)
        d = math.dist(s, m)
        assert int(ours[i].abs().argmax()) == round(d / R.SPEED_OF_SOUND * FS)


def test_eyring_rt60():
    rt = R.eyring_rt60(torch.tensor([[6.0, 5.0, 3.0]]), torch.tensor([0.3]))
    volume, surface = 90.0, 2 * (30 + 15 + 18)
    assert rt.item() == pytest.approx(24 * math.log(10) * volume
                                      / (343 * surface * -math.log(0.7)), rel=1e-6)
    assert rt.item() == pytest.approx(0.2883 * 90 / 60 * 94 / 126, rel=0.02)  # ~0.32 s


def _responses(order, seconds=1.5):
    room, src, mic, alpha = batch()
    images, shell = R.image_table(order)
    length = int(seconds * FS)
    noise = torch.randn(3, length, generator=torch.Generator().manual_seed(0))
    h = R.room_impulse_response(room, src, mic, alpha, FS, length, images, shell, noise)
    dry = R.room_impulse_response(room, src, mic, alpha, FS, length, images)
    starts = [int(R._distances(shell, room[i:i + 1], src[i:i + 1], mic[i:i + 1]).min()
                  / R.SPEED_OF_SOUND * FS) for i in range(3)]
    return h, dry, starts, R.eyring_rt60(room, alpha)


def test_late_tail_decays_at_eyring_rt60():
    """A low order and the tail: T30 within 10% of Eyring's RT60."""
    h, dry, starts, eyring = _responses(3)
    for i in range(3):
        assert rt60_schroeder(h[i].numpy()) == pytest.approx(eyring[i].item(), rel=0.10)
        # before the first image of order 4 arrives, the response is the images alone
        assert torch.equal(h[i, :starts[i]], dry[i, :starts[i]])
        assert not torch.equal(h[i, starts[i]:], dry[i, starts[i]:])
    # without the tail, order 3 stops reverberating far too early
    assert rt60_schroeder(dry[0].numpy(), hi=-25.0) < 0.7 * eyring[0].item()


def _pyroomacoustics_rir(pra, dims, s, m, a, order):
    shoebox = pra.ShoeBox(dims, fs=FS, materials=pra.Material(a), max_order=order,
                          air_absorption=False)
    shoebox.add_source(s)
    shoebox.add_microphone(m)
    shoebox.compute_rir()
    return shoebox, np.asarray(shoebox.rir[0][0])


def test_matches_pyroomacoustics():
    pra = pytest.importorskip("pyroomacoustics")
    assert pra.constants.get("c") == R.SPEED_OF_SOUND
    offset = (pra.constants.get("frac_delay_length") - 1) // 2  # its fractional-delay filter
    room, src, mic, alpha = batch()
    ours = {order: R.room_impulse_response(room, src, mic, alpha, FS, 4000,
                                           R.image_table(order)[0]) for order in (0, 1, 3)}
    tested = 0
    for i, (dims, s, m, a) in enumerate(ROOMS):
        _, h0 = _pyroomacoustics_rir(pra, dims, s, m, a, 0)
        _, h1 = _pyroomacoustics_rir(pra, dims, s, m, a, 1)
        shoebox, _ = _pyroomacoustics_rir(pra, dims, s, m, a, 3)
        # the direct path, to the sample
        direct = int(ours[0][i].abs().argmax())
        assert int(np.abs(h0).argmax()) - offset == direct
        assert direct == round(math.dist(s, m) / R.SPEED_OF_SOUND * FS)
        # first-order reflections: pyroomacoustics' peaks (its order 1 less order 0)
        # where ours are, for each arrival at least 4 samples from any other
        ref1 = np.abs(h1 - np.pad(h0, (0, max(0, len(h1) - len(h0))))[: len(h1)])
        arrivals = torch.nonzero(ours[1][i]).flatten().tolist()
        for k in arrivals:
            if k == direct or min(abs(k - j) for j in arrivals if j != k) < 4:
                continue
            window = ref1[k + offset - 3 : k + offset + 4]
            assert int(window.argmax()) == 3, (i, k)
            tested += 1
        # up to order 3: the same images (positions, so delays; reflection orders;
        # wall damping) as pyroomacoustics computes
        source = shoebox.sources[0]
        dist = np.linalg.norm(source.images - np.asarray(m)[:, None], axis=0)
        ref = np.zeros(4000)
        np.add.at(ref, np.round(dist / R.SPEED_OF_SOUND * FS).astype(int),
                  source.damping[0] / (4 * np.pi * dist))
        np.testing.assert_allclose(ours[3][i].numpy(), ref, rtol=1e-4, atol=1e-7)
    assert tested >= 12


def test_simulator_draws_rooms_per_example_and_keeps_the_direct_path_in_place():
    t = ak.RoomSimulator(sample_rate=FS, max_order=4, rir_seconds=0.3, p=1.0)
    x = torch.zeros(8, 1, 4000)
    x[:, :, 1000] = 1.0  # an impulse: the output is the room response from its direct path
    y = t(x, generator=generator("cpu", 1))
    p = t.last_params
    lo, hi = torch.tensor([3.0, 3.0, 2.5]), torch.tensor([10.0, 8.0, 4.0])
    assert ((p["room"] >= lo) & (p["room"] <= hi)).all()
    for key in ("source", "mic"):
        assert ((p[key] >= 0.5) & (p[key] <= p["room"] - 0.5)).all()
    assert len(set(p["absorption"].tolist())) == 8
    assert (y[:, 0].abs().argmax(-1) == 1000).all()
    assert (y[:, 0, :1000].abs() < 1e-6).all() and (y[:, 0, 1001:].abs().sum(-1) > 0.1).all()
    rir = t.impulse_responses(p)
    torch.testing.assert_close(rir.square().sum(-1), torch.ones(8))
    # the drawn rooms decay as Eyring says (the tail) and differ between examples
    rt = R.eyring_rt60(p["room"], p["absorption"])
    assert rt.min() > 0.05 and rt.max() < 2.0 and len(set(rt.tolist())) == 8


def test_lengths_replay_and_seeding():
    t = ak.RoomSimulator(sample_rate=8000, max_order=3, rir_seconds=0.1, p=1.0,
                         room_size=((2.0, 4.0), (2.0, 4.0), (2.0, 3.0)))
    x = torch.randn(4, 2, 2000, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([2000, 1500, 800, 100])
    y = t(x, generator=generator("cpu", 2), lengths=lengths)
    pad = torch.arange(2000) >= lengths.view(-1, 1, 1)
    assert torch.equal(y[pad.expand_as(y)], x[pad.expand_as(x)])
    assert torch.equal(t(x, params=t.last_params, lengths=lengths), y)
    assert torch.equal(t(x, generator=generator("cpu", 2), lengths=lengths), y)
    assert not torch.equal(t(x, generator=generator("cpu", 3), lengths=lengths), y)
    # both channels of an example share its room
    mono = t(x[:, :1].expand(-1, 2, -1).contiguous(), params=t.last_params)
    assert torch.equal(mono[:, 0], mono[:, 1])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="room_size"):
        ak.RoomSimulator(sample_rate=FS, room_size=((3, 4), (3, 4)))
    with pytest.raises(ValueError, match="absorption"):
        ak.RoomSimulator(sample_rate=FS, absorption=(0.2, 1.0))
    with pytest.raises(ValueError, match="rir_seconds"):
        ak.RoomSimulator(sample_rate=FS, rir_seconds=0.01)
    with pytest.raises(ValueError, match="room_size"):
        ak.RoomSimulator(sample_rate=FS, room_size=((0.5, 4), (3, 4), (3, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_host_sync_on_cuda():
    t = ak.RoomSimulator(sample_rate=FS, p=0.5).cuda()
    x = torch.randn(8, 1, FS, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    t(x, generator=g)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        t(x, generator=g)
        t(x, params=t.last_params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
