"""Dataset scanning, decoding and caching (experiments.data) on tiny generated files."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from experiments.data import (
    GTZAN_GENRES,
    AudioSet,
    decode,
    float_waveforms,
    load_dataset,
    scan_dataset,
)

SR = 8000


def _tone(g: int, i: int, n: int = 400) -> np.ndarray:
    """A distinct int16 test signal per (genre, clip): sine of genre-specific pitch."""
    t = np.arange(n) / SR
    x = (0.1 + 0.1 * i) * np.sin(2 * np.pi * (200 + 50 * g) * t)
    return np.round(x * 32767).astype(np.int16)


def _gtzan(root, n_per_class=2, folder="genres_original", ext="wav", fmt="WAV"):
    out = root / folder
    for g, genre in enumerate(GTZAN_GENRES):
        (out / genre).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            sf.write(out / genre / f"{genre}.{i:05d}.{ext}", _tone(g, i), SR, format=fmt,
                     subtype="PCM_16")
    return out


def _load(path, cache, **kw):
    kw.setdefault("progress", False)
    return load_dataset(path, kw.pop("sample_rate", SR), cache, **kw)


def _int16_clip(ds: AudioSet, k: int) -> np.ndarray:
    """Clip ``k``'s stored int16 samples, read straight from the packed buffer."""
    start, n = int(ds.starts[k]), int(ds.lengths[k])
    return ds.samples[start:start + n].numpy()


def _same_tensors(a: AudioSet, b: AudioSet) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f))
               for f in ("samples", "starts", "lengths", "labels"))


# ---------------------------------------------------------------------------
# GTZAN layouts


def test_gtzan_skips_corrupt_and_empty_files(tmp_path):
    out = _gtzan(tmp_path / "Data")
    (out / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00garbage, not a wave file" * 10)
    (out / "pop" / "pop.00099.wav").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = _load(out, tmp_path / "cache")
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1
    assert "skipped 2 " in messages[0]
    assert "jazz/jazz.00054.wav" in messages[0] and "pop/pop.00099.wav" in messages[0]
    assert ds.skipped == ["jazz/jazz.00054.wav", "pop/pop.00099.wav"]

    assert len(ds) == 20
    assert ds.classes == sorted(GTZAN_GENRES)
    assert ds.ids[:3] == ["blues/blues.00000.wav", "blues/blues.00001.wav",
                          "classical/classical.00000.wav"]
    assert [ds.classes[y] for y in ds.labels.tolist()] == [i.split("/")[0] for i in ds.ids]
    assert ds.samples.dtype == torch.int16 and ds.samples.shape == (20 * 400,)
    assert ds.starts.dtype == torch.int64 and ds.starts.tolist() == list(range(0, 8000, 400))
    assert ds.lengths.dtype == torch.int64 and ds.lengths.tolist() == [400] * 20
    assert ds.labels.dtype == torch.int64
    assert ds.sample_rate == SR and ds.manifest_splits is None
    # Exact round trip of the int16 samples (no resampling at the same rate).
    k = ds.ids.index("metal/metal.00001.wav")
    np.testing.assert_array_equal(_int16_clip(ds, k), _tone(6, 1))
    assert ds.clip(k).dtype == torch.float32
    np.testing.assert_array_equal(ds.clip(k).numpy(), _tone(6, 1) / 32768.0)

    files, names, kind = scan_dataset(out)
    assert kind == "gtzan" and len(files) == 22 and names[0] == "blues"
    # A parent holding exactly one of genres_original/genres is descended into.
    assert scan_dataset(tmp_path / "Data") == (files, names, kind)
    with pytest.warns(UserWarning, match="skipped 2 "):  # warned again from the cache
        ds2 = _load(tmp_path / "Data", tmp_path / "cache")
    assert ds2.ids == ds.ids and _same_tensors(ds2, ds)


def test_gtzan_au_layout(tmp_path):
    out = _gtzan(tmp_path, n_per_class=1, folder="genres", ext="au", fmt="AU")
    files, _, kind = scan_dataset(tmp_path)
    assert kind == "gtzan" and files[0] == out / "blues" / "blues.00000.au"
    ds = _load(tmp_path, tmp_path / "cache")
    assert ds.ids[0] == "blues/blues.00000.au" and len(ds) == 10
    np.testing.assert_array_equal(_int16_clip(ds, 9), _tone(9, 0))


def test_both_gtzan_folders_is_ambiguous(tmp_path):
    _gtzan(tmp_path, n_per_class=1)
    _gtzan(tmp_path, n_per_class=1, folder="genres")
    with pytest.raises(ValueError, match="both 'genres_original' and 'genres'"):
        scan_dataset(tmp_path)


# ---------------------------------------------------------------------------
# Decoding


def test_resample_8k_to_16k(tmp_path):
    (tmp_path / "a").mkdir()
    t = np.arange(800) / SR
    sf.write(tmp_path / "a" / "x.wav", 0.5 * np.sin(2 * np.pi * 440 * t), SR)
    ds = _load(tmp_path, tmp_path / "cache", sample_rate=16000)
    assert ds.sample_rate == 16000 and ds.lengths.tolist() == [1600]
    x = ds.clip(0).numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.fft.rfftfreq(len(x), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=10)
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.02)


def test_stereo_is_downmixed(tmp_path):
    (tmp_path / "a").mkdir()
    t = np.arange(400) / SR
    s = np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "a" / "st.flac", np.stack([0.6 * s, 0.2 * s], 1), SR)
    ds = _load(tmp_path, tmp_path / "cache")
    np.testing.assert_allclose(ds.clip(0).numpy(), 0.4 * s, atol=2e-4)


def test_max_seconds_and_packing(tmp_path):
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "long.wav", np.full(2000, 0.25), SR)
    sf.write(tmp_path / "a" / "short.wav", np.full(300, -0.5), SR)
    ds = _load(tmp_path, tmp_path / "cache", max_seconds=0.1)
    assert ds.ids == ["a/long.wav", "a/short.wav"]
    assert ds.lengths.tolist() == [800, 300] and ds.starts.tolist() == [0, 800]
    assert ds.samples.shape == (1100,)  # end to end, no padding
    assert (ds.samples[:800] == 8192).all() and (ds.samples[800:] == -16384).all()


def test_memory_is_total_samples(tmp_path):
    # One 5-s clip among 0.01-s clips: a padded (N, T_max) layout would be ~N x larger.
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    sf.write(root / "a" / "0long.wav", np.full(5 * SR, 0.25), SR)
    for i in range(5):
        sf.write(root / "a" / f"short{i}.wav", np.full(80 + i, -100 * (i + 1), np.int16), SR)
    for ds in (_load(root, tmp_path / "cache"),  # decoded
               _load(root, tmp_path / "cache")):  # from the cache
        assert ds.lengths.tolist() == [5 * SR, 80, 81, 82, 83, 84]
        assert ds.samples.numel() == int(ds.lengths.sum()) == 5 * SR + 410
        assert ds.starts.tolist() == (torch.cumsum(ds.lengths, 0) - ds.lengths).tolist()
        for k in range(1, 6):
            np.testing.assert_array_equal(_int16_clip(ds, k), np.full(79 + k, -100 * k))


def test_float_waveforms():
    x = torch.tensor([-32768, 0, 16384, 32767], dtype=torch.int16)
    y = float_waveforms(x)
    assert y.dtype == torch.float32
    assert y.tolist() == [-1.0, 0.0, 0.5, 32767 / 32768]
    with pytest.raises(ValueError, match="int16"):
        float_waveforms(torch.zeros(3, dtype=torch.int32))


def _packed(lengths: list[int]) -> AudioSet:
    """Clips of the given lengths; clip k holds (k + 1) * 1000 + 1, + 2, ... (never 0),
    with alternating sign, so a sample read from a neighbour or padding is recognisable."""
    clips = [(-1) ** k * ((k + 1) * 1000 + np.arange(1, n + 1)) for k, n in enumerate(lengths)]
    n = torch.tensor(lengths, dtype=torch.int64)
    return AudioSet(torch.from_numpy(np.concatenate(clips).astype(np.int16)),
                    torch.cumsum(n, 0) - n, n, torch.arange(len(lengths)) % 2,
                    [f"c/{k}" for k in range(len(lengths))], ["a", "b"], SR, [])


def _reference_crop(ds: AudioSet, idx, length: int, position) -> np.ndarray:
    """Per clip with numpy: offset floor(p * (room + 1)) capped at room, slice, pad."""
    out = np.zeros((len(idx), 1, length), np.float32)
    for b, (k, p) in enumerate(zip(idx.tolist(), position.tolist(), strict=True)):
        x = _int16_clip(ds, k)
        room = max(len(x) - length, 0)
        off = min(int(np.floor(p * (room + 1))), room)
        seg = x[off:off + length]
        out[b, 0, :len(seg)] = seg / 32768.0
    return out


def test_crop_matches_per_clip_reference():
    lengths = [5, 17, 1, 40, 16, 64, 12, 3]  # last clip shorter than the crop
    ds = _packed(lengths)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(lengths), (200,), generator=g)
    position = torch.rand(200, generator=g)
    idx = torch.cat([idx, torch.arange(8).repeat_interleave(3)])
    position = torch.cat([position, torch.tensor([0.0, 0.5, 1.0]).repeat(8)])
    out = ds.crop(idx, 16, position)
    assert out.shape == (224, 1, 16) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), _reference_crop(ds, idx, 16, position))
    # Spelled out for clip 3 (40 samples): start, centre and end.
    clip3 = ds.clip(3)
    pos = torch.tensor([0.0, 0.5, 1.0])
    got = ds.crop(torch.tensor([3, 3, 3]), 16, pos)[:, 0]
    assert torch.equal(got, torch.stack([clip3[:16], clip3[12:28], clip3[24:]]))
    # Short clips: the clip then zeros, whatever the position; nothing from a neighbour.
    for k in (0, 2, 6, 7):
        got = ds.crop(torch.full((3,), k), 16, pos)[:, 0]
        expected = torch.cat([ds.clip(k), torch.zeros(16 - lengths[k])])
        assert torch.equal(got, expected.expand(3, 16))
    # A crop as long as the clip (clip 4) or longer than every clip.
    assert torch.equal(ds.crop(torch.tensor([4]), 16, torch.tensor([0.7]))[0, 0], ds.clip(4))
    wide = ds.crop(torch.arange(8), 100, torch.full((8,), 0.5))
    for k, n in enumerate(lengths):
        assert torch.equal(wide[k, 0, :n], ds.clip(k)) and not wide[k, 0, n:].any()


def test_audioset_to_returns_moved_copy():
    ds = _packed([3, 5])
    before = {f: getattr(ds, f).clone() for f in ("samples", "starts", "lengths", "labels")}
    moved = ds.to(torch.device("meta"))
    assert moved is not ds and len(moved) == 2
    for f in before:
        assert getattr(moved, f).device.type == "meta"
        assert getattr(moved, f).shape == before[f].shape
        assert getattr(ds, f).device.type == "cpu" and torch.equal(getattr(ds, f), before[f])
    assert moved.ids == ds.ids and moved.classes == ds.classes
    assert moved.sample_rate == SR and moved.skipped == [] and moved.manifest_splits is None


def test_audioset_validates_fields():
    ds = _packed([3, 5])
    with pytest.raises(ValueError, match="samples"):
        AudioSet(ds.samples.int(), ds.starts, ds.lengths, ds.labels, ds.ids, ds.classes, SR, [])
    with pytest.raises(ValueError, match="samples"):
        AudioSet(ds.samples[None], ds.starts, ds.lengths, ds.labels, ds.ids, ds.classes, SR,
                 [])
    with pytest.raises(ValueError, match="starts"):
        AudioSet(ds.samples, ds.starts[:1], ds.lengths, ds.labels, ds.ids, ds.classes, SR, [])
    with pytest.raises(ValueError, match="lengths"):
        AudioSet(ds.samples, ds.starts, ds.lengths.int(), ds.labels, ds.ids, ds.classes, SR,
                 [])
    with pytest.raises(ValueError, match="labels"):
        AudioSet(ds.samples, ds.starts, ds.lengths, ds.labels.to("meta"), ds.ids, ds.classes,
                 SR, [])
    with pytest.raises(ValueError, match="manifest_splits"):
        AudioSet(ds.samples, ds.starts, ds.lengths, ds.labels, ds.ids, ds.classes, SR, [],
                 ["train"])


# ---------------------------------------------------------------------------
# Cache


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    out = _gtzan(tmp_path, n_per_class=1)
    cache = tmp_path / "cache"
    first = _load(out, cache)
    assert len(list(cache.glob("*.pt"))) == 1 and not list(cache.glob("*.tmp"))

    calls = []
    real = decode._decode

    def counting(path, *args):
        calls.append(path)
        return real(path, *args)

    def boom(*args):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(decode, "_decode", boom)
    again = _load(out, cache)
    assert again.skipped == [] and again.ids == first.ids
    assert _same_tensors(again, first)

    # Changing one file (content and mtime) invalidates the cache.
    target = out / "rock" / "rock.00000.wav"
    sf.write(target, np.zeros(123), SR, subtype="PCM_16")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(decode, "_decode", counting)
    changed = _load(out, cache)
    assert len(calls) == 10
    assert changed.lengths[changed.ids.index("rock/rock.00000.wav")] == 123
    # Other settings get their own cache.
    _load(out, cache, sample_rate=16000)
    assert len(calls) == 20 and len(list(cache.glob("*.pt"))) == 3


def test_corrupt_cache_is_rebuilt(tmp_path):
    out = _gtzan(tmp_path, n_per_class=1)
    first = _load(out, tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.pt")
    cache_file.write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="unreadable dataset cache"):
        again = _load(out, tmp_path / "cache")
    assert _same_tensors(again, first)


# ---------------------------------------------------------------------------
# Folder-per-class datasets and errors


def test_folder_per_class(tmp_path):
    for name, ext in (("dog", "WAV"), ("cat", "flac"), ("cow", "ogg")):
        (tmp_path / name).mkdir()
        sf.write(tmp_path / name / f"{name}1.{ext}", np.full(100, 0.1), SR)
    (tmp_path / "dog" / "notes.txt").write_text("not audio")
    (tmp_path / "dog" / "._dog1.WAV").write_bytes(b"macOS resource fork")
    (tmp_path / "__MACOSX").mkdir()
    files, names, kind = scan_dataset(tmp_path)
    assert kind == "folder"
    assert names == ["cat", "cow", "dog"]
    assert [f.name for f in files] == ["cat1.flac", "cow1.ogg", "dog1.WAV"]
    ds = _load(tmp_path, tmp_path.parent / "cache_folder")
    assert ds.classes == ["cat", "cow", "dog"] and ds.labels.tolist() == [0, 1, 2]
    assert ds.ids == ["cat/cat1.flac", "cow/cow1.ogg", "dog/dog1.WAV"]


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_dataset(tmp_path / "nowhere")


def test_empty_class_folder_is_named(tmp_path):
    out = _gtzan(tmp_path, n_per_class=1)
    (out / "zydeco").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*zydeco contains no audio"):
        scan_dataset(out)


def test_no_audio_at_all(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no audio files"):
        scan_dataset(tmp_path)
    sf.write(tmp_path / "loose.wav", np.zeros(10), SR)
    with pytest.raises(ValueError, match="directly in it"):
        scan_dataset(tmp_path)


def test_class_with_only_unreadable_files(tmp_path):
    _gtzan(tmp_path, n_per_class=1)
    bad = tmp_path / "genres_original" / "reggae" / "reggae.00000.wav"
    bad.write_bytes(b"\x00" * 100)
    with pytest.warns(UserWarning, match="reggae.00000.wav"), \
            pytest.raises(ValueError, match=r"every audio file of class folder .*reggae"):
        _load(tmp_path, tmp_path / "cache")


# ---------------------------------------------------------------------------
# CSV manifests


def _clips(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"c{i}.wav", np.full(50 + i, 0.01 * (i + 1)), SR)


def test_manifest_with_split(tmp_path):
    _clips(tmp_path / "audio")
    _clips(tmp_path.parent / f"{tmp_path.name}_elsewhere", n=1)
    outside = (tmp_path.parent / f"{tmp_path.name}_elsewhere" / "c0.wav").resolve()
    (tmp_path / "m.csv").write_text(
        "path,label,split\n"
        "audio/c2.wav,yes,valid\n"
        "audio/c0.wav,no,train\n"
        "audio/c1.wav,yes,train\n"
        f"{outside},no,test\n"
        "audio/c3.wav,no,Validation\n")
    files, names, kind = scan_dataset(tmp_path / "m.csv")
    assert kind == "manifest" and len(files) == 5
    ds = _load(tmp_path / "m.csv", tmp_path / "cache")
    assert ds.classes == ["no", "yes"]
    # Sorted by id: the absolute path outside the CSV's folder sorts first.
    assert ds.ids == [outside.as_posix(), "audio/c0.wav", "audio/c1.wav", "audio/c2.wav",
                      "audio/c3.wav"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 0]
    assert ds.manifest_splits == ["test", "train", "train", "valid", "validation"]
    assert ds.lengths.tolist() == [50, 50, 51, 52, 53]


def test_manifest_without_split(tmp_path):
    _clips(tmp_path / "audio", n=2)
    (tmp_path / "m.csv").write_text("label,path\nb,audio/c1.wav\na,audio/c0.wav\n")
    ds = _load(tmp_path / "m.csv", tmp_path / "cache")
    assert ds.manifest_splits is None
    assert ds.ids == ["audio/c0.wav", "audio/c1.wav"] and ds.labels.tolist() == [0, 1]


def test_manifest_errors(tmp_path):
    _clips(tmp_path / "audio", n=1)
    bad_cols = tmp_path / "cols.csv"
    bad_cols.write_text("file,class\naudio/c0.wav,a\n")
    with pytest.raises(ValueError, match=r"cols\.csv.*'path' and 'label'.*\['file', 'class'\]"):
        scan_dataset(bad_cols)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\naudio/c0.wav,a\naudio/nope.wav,b\n")
    with pytest.raises(FileNotFoundError, match=r"nope\.wav"):
        scan_dataset(missing)
    twice = tmp_path / "twice.csv"
    twice.write_text("path,label\naudio/c0.wav,a\n./audio/c0.wav,b\n")
    with pytest.raises(ValueError, match="listed twice"):
        scan_dataset(twice)
