"""MelFrontend against torchaudio, on random signals and real recordings."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
import torchaudio
from conftest import DATA

from augkit import MelFrontend
from augkit.functional import amplitude_to_db, melspectrogram

CONFIGS = [
    dict(sample_rate=22050, n_fft=2048, hop_length=640, n_mels=128),
    dict(sample_rate=16000, n_fft=400, hop_length=160, n_mels=64, f_min=50.0, f_max=7600.0),
    dict(sample_rate=16000, n_fft=512, n_mels=40, norm="slaney", mel_scale="slaney"),
    dict(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=32, power=1.0),
    dict(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32, center=False),
]


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _fsdd_batch(sample_rate=8000):
    clips = [sf.read(p, dtype="float32")[0] for p in sorted((DATA / "fsdd").glob("*.wav"))]
    n = max(len(c) for c in clips)
    batch = torch.zeros(len(clips), 1, n)
    for i, c in enumerate(clips):
        batch[i, 0, : len(c)] = torch.from_numpy(c)
    return batch


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['sample_rate']}-{c['n_fft']}")
def test_linear_matches_torchaudio(cfg, device):
    x = torch.randn(3, 2, cfg["sample_rate"], generator=torch.Generator().manual_seed(1))
    x = x.to(device)
    ours = MelFrontend(**cfg, log=None).to(device)(x)
    ref = torchaudio.transforms.MelSpectrogram(**cfg).to(device)(x)
    assert ours.shape == ref.shape
    assert _rel_err(ours, ref) <= 1e-4


def test_linear_matches_torchaudio_on_recordings(device):
    x = _fsdd_batch().to(device)
    cfg = dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40)
    ours = MelFrontend(**cfg, log=None).to(device)(x)
    ref = torchaudio.transforms.MelSpectrogram(**cfg).to(device)(x)
    assert _rel_err(ours, ref) <= 1e-4


def _db_reference(x, cfg, top_db=80.0):
    mel = torchaudio.transforms.MelSpectrogram(**cfg).to(x.device)
    to_db = torchaudio.transforms.AmplitudeToDB("power", top_db=top_db)
    return torch.stack([to_db(mel(x[i])) for i in range(x.shape[0])])


@pytest.mark.parametrize("source", ["random", "fsdd"])
def test_db_matches_per_example_torchaudio(source, device):
    if source == "random":
        cfg = dict(sample_rate=22050, n_fft=2048, hop_length=640, n_mels=128)
        x = torch.randn(4, 1, 22050 * 2, generator=torch.Generator().manual_seed(2))
        x[1] *= 1e-3  # a quiet clip: its floor must be its own, not the batch's
    else:
        cfg = dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40)
        x = _fsdd_batch()
        x[0] *= 1e-2
    x = x.to(device)
    ours = MelFrontend(**cfg, log="db", top_db=80.0).to(device)(x)
    ref = _db_reference(x, cfg)
    # Compare where the reference is above its floor (the floor itself is exact).
    floor = ref.amax(dim=(1, 2, 3), keepdim=True) - 80.0
    above = ref > floor + 1e-3
    assert (ours - ref).abs()[above].max().item() <= 1e-3
    assert (ours - ref).abs().max().item() <= 1e-2
    # torchaudio on a 3-D (B, F, T) batch shares one floor; that differs, so the
    # comparison above can fail.
    shared = torchaudio.transforms.AmplitudeToDB("power", top_db=80.0)(
        torchaudio.transforms.MelSpectrogram(**cfg).to(device)(x[:, 0]))
    assert (shared - ref[:, 0]).abs().max().item() > 1.0


def test_shapes_and_frames():
    fe = MelFrontend(16000, n_fft=512, hop_length=160, n_mels=64)
    assert fe(torch.randn(2, 16000)).shape == (2, 1, 64, fe.num_frames(16000)) == (2, 1, 64, 101)
    assert fe(torch.randn(2, 3, 8000)).shape == (2, 3, 64, 51)
    assert fe(torch.randn(2, 16000)).dtype == torch.float32


def test_batch_consistency(device):
    fe = MelFrontend(16000, n_fft=512, hop_length=160, n_mels=64).to(device)
    x = torch.randn(5, 1, 8000, generator=torch.Generator().manual_seed(3)).to(device)
    x[2] *= 0.01
    batched = fe(x)
    single = torch.cat([fe(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-4)


def test_chunking_does_not_change_the_result():
    x = torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(4))
    fe = MelFrontend(16000, n_fft=512, hop_length=160, n_mels=64)
    whole = melspectrogram(x, fe.window, fe.fb, 160, chunk_frames=10_000)
    for chunk in (1, 7, 50):
        torch.testing.assert_close(melspectrogram(x, fe.window, fe.fb, 160, chunk_frames=chunk),
                                   whole, rtol=1e-5, atol=1e-6)


def test_window_and_filterbank_are_buffers():
    fe = MelFrontend(16000, n_fft=512, n_mels=40)
    names = {n for n, _ in fe.named_buffers()}
    assert names == {"window", "fb"}
    assert fe.fb.shape == (257, 40) and fe.window.shape == (512,)
    assert list(fe.parameters()) == []


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_float32(dtype, device):
    if device.type == "cpu" and dtype == torch.float16:
        pytest.skip("fp16 autocast is a CUDA feature")
    fe = MelFrontend(16000, n_fft=512, hop_length=160, n_mels=64).to(device)
    x = torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(5)).to(device)
    ref = fe(x)
    with torch.autocast(device.type, dtype=dtype):
        out = fe(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-3)
    # A half-precision input is promoted; only its rounding remains.
    out_half = fe(x.to(dtype))
    assert out_half.dtype == torch.float32
    assert (out_half - ref).abs().mean() < 0.5


def test_log_modes():
    x = torch.rand(2, 1, 4000, generator=torch.Generator().manual_seed(6)) - 0.5
    lin = MelFrontend(8000, n_fft=256, n_mels=32, log=None)(x)
    ln = MelFrontend(8000, n_fft=256, n_mels=32, log="log", log_offset=1e-6)(x)
    torch.testing.assert_close(ln, torch.log(lin + 1e-6))
    db = MelFrontend(8000, n_fft=256, n_mels=32, log="db", top_db=None)(x)
    torch.testing.assert_close(db, 10 * torch.log10(lin.clamp_min(1e-10)), rtol=1e-5, atol=1e-4)


def test_amplitude_to_db_floor_is_per_example():
    x = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 1e-6)])
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 1e-12, 1e-18
    db = amplitude_to_db(x, top_db=20.0)
    assert db[0].min().item() == pytest.approx(-20.0)
    assert db[1].min().item() == pytest.approx(-80.0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(sample_rate=0), "sample_rate"),
    (dict(sample_rate=16000, n_fft=1), "n_fft"),
    (dict(sample_rate=16000, hop_length=0), "hop_length"),
    (dict(sample_rate=16000, n_fft=256, win_length=512), "win_length"),
    (dict(sample_rate=16000, n_mels=0), "n_mels"),
    (dict(sample_rate=16000, f_max=9000.0), "f_max"),
    (dict(sample_rate=16000, log="ln"), "log"),
    (dict(sample_rate=16000, top_db=-1.0), "top_db"),
    (dict(sample_rate=16000, power=0), "power"),
    (dict(sample_rate=16000, mel_scale="bark"), "mel_scale"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MelFrontend(**kwargs)


def test_bad_input_shapes():
    fe = MelFrontend(16000, n_fft=512)
    with pytest.raises(ValueError, match=r"\(B, T\) or \(B, C, T\)"):
        fe(torch.randn(16000))
    with pytest.raises(ValueError, match="too short"):
        MelFrontend(16000, n_fft=512, center=False)(torch.randn(1, 100))


def test_the_filterbank_is_torchaudios():
    for cfg in CONFIGS:
        fe = MelFrontend(**cfg)
        want = torchaudio.functional.melscale_fbanks(
            fe.n_fft // 2 + 1, fe.f_min, fe.f_max, fe.n_mels, fe.sample_rate,
            cfg.get("norm"), cfg.get("mel_scale", "htk"))
        assert torch.equal(fe.fb, want)


def test_amplitude_to_db_sets_torchaudios_batch_axis_per_example():
    """Why F.amplitude_to_db wraps torchaudio's amplitude_to_DB instead of calling it as is.

    torchaudio takes one floor per (C, F, T) block: per example on (B, C, F, T), but
    one floor for the whole batch on (B, F, T), so a quiet example is floored by a
    loud one. The wrapper views every input as (examples, ., F, T).
    """
    x = torch.stack([torch.full((2, 2), 1.0), torch.full((2, 2), 1e-6)])  # (B, F, T)
    x[0, 0, 0], x[1, 0, 0] = 1e-12, 1e-18
    shared = torchaudio.functional.amplitude_to_DB(x, 10.0, 1e-10, 0.0, top_db=20.0)
    assert shared[1].min().item() == pytest.approx(-20.0)  # floored by example 0's max
    ours = amplitude_to_db(x, top_db=20.0, example_dims=2)
    assert ours[1].min().item() == pytest.approx(-80.0)  # its own max, -60 dB, less 20
    alone = torch.cat([torchaudio.functional.amplitude_to_DB(e[None], 10.0, 1e-10, 0.0, 20.0)
                       for e in x])
    assert torch.equal(ours, alone)
    # On (B, C, F, T) torchaudio is already per example, and the wrapper is the same call.
    spec = torch.rand(3, 2, 5, 7) ** 8
    spec[1] *= 1e-9
    assert torch.equal(amplitude_to_db(spec, top_db=30.0),
                       torchaudio.functional.amplitude_to_DB(spec, 10.0, 1e-10, 0.0, 30.0))
    views = spec.expand(4, *spec.shape)  # (V, B, C, F, T): each (C, F, T) its own floor
    assert torch.equal(amplitude_to_db(views, top_db=30.0),
                       amplitude_to_db(spec, top_db=30.0).expand(4, *spec.shape))


def test_cpu_chunks_grow_with_the_thread_count(monkeypatch):
    """One 30-s clip at the tutorial's settings: 6 chunks on 2 threads, 1 on 16, where
    small chunks would leave most threads idle; the output does not depend on it."""
    from augkit.functional import frame_chunk_size

    cpu = torch.device("cpu")
    sizes = {}
    for threads in (1, 2, 16):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        sizes[threads] = frame_chunk_size(1, 1293, 2048, cpu)
    assert sizes[1] == sizes[2] == 256 and sizes[16] == 1293
    assert frame_chunk_size(1, 1293, 2048, torch.device("meta")) == 1293
    x = torch.randn(1, 1, 22050 * 3, generator=torch.Generator().manual_seed(0))
    mel = MelFrontend(22050, n_fft=2048, hop_length=512, log=None)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    small = mel(x)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    torch.testing.assert_close(mel(x), small, rtol=1e-5, atol=1e-6)
