"""Dataset scanning, decoding and caching (experiments.data) on tiny generated files."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from experiments import data as data_mod
from experiments.data import (
    GTZAN_GENRES,
    AudioSet,
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
    assert ds.waveforms.dtype == torch.int16 and ds.waveforms.shape == (20, 400)
    assert ds.lengths.dtype == torch.int64 and ds.lengths.tolist() == [400] * 20
    assert ds.labels.dtype == torch.int64
    assert ds.sample_rate == SR and ds.manifest_splits is None
    # Exact round trip of the int16 samples (no resampling at the same rate).
    k = ds.ids.index("metal/metal.00001.wav")
    np.testing.assert_array_equal(ds.waveforms[k].numpy(), _tone(6, 1))

    files, names, kind = scan_dataset(out)
    assert kind == "gtzan" and len(files) == 22 and names[0] == "blues"
    # A parent holding exactly one of genres_original/genres is descended into.
    assert scan_dataset(tmp_path / "Data") == (files, names, kind)
    with pytest.warns(UserWarning, match="skipped 2 "):  # warned again from the cache
        ds2 = _load(tmp_path / "Data", tmp_path / "cache")
    assert ds2.ids == ds.ids and torch.equal(ds2.waveforms, ds.waveforms)


def test_gtzan_au_layout(tmp_path):
    out = _gtzan(tmp_path, n_per_class=1, folder="genres", ext="au", fmt="AU")
    files, _, kind = scan_dataset(tmp_path)
    assert kind == "gtzan" and files[0] == out / "blues" / "blues.00000.au"
    ds = _load(tmp_path, tmp_path / "cache")
    assert ds.ids[0] == "blues/blues.00000.au" and len(ds) == 10
    np.testing.assert_array_equal(ds.waveforms[9].numpy(), _tone(9, 0))


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
    x = float_waveforms(ds.waveforms[0]).numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.fft.rfftfreq(len(x), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=10)
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.02)


def test_stereo_is_downmixed(tmp_path):
    (tmp_path / "a").mkdir()
    t = np.arange(400) / SR
    s = np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "a" / "st.flac", np.stack([0.6 * s, 0.2 * s], 1), SR)
    ds = _load(tmp_path, tmp_path / "cache")
    np.testing.assert_allclose(float_waveforms(ds.waveforms[0]).numpy(), 0.4 * s, atol=2e-4)


def test_max_seconds_and_padding(tmp_path):
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "long.wav", np.full(2000, 0.25), SR)
    sf.write(tmp_path / "a" / "short.wav", np.full(300, -0.5), SR)
    ds = _load(tmp_path, tmp_path / "cache", max_seconds=0.1)
    assert ds.ids == ["a/long.wav", "a/short.wav"]
    assert ds.lengths.tolist() == [800, 300] and ds.waveforms.shape == (2, 800)
    assert ds.waveforms[1, 300:].abs().sum() == 0  # zero-padded
    assert ds.waveforms[1, 0] == -16384 and ds.waveforms[0, 0] == 8192


def test_float_waveforms():
    x = torch.tensor([-32768, 0, 16384, 32767], dtype=torch.int16)
    y = float_waveforms(x)
    assert y.dtype == torch.float32
    assert y.tolist() == [-1.0, 0.0, 0.5, 32767 / 32768]
    with pytest.raises(ValueError, match="int16"):
        float_waveforms(torch.zeros(3, dtype=torch.int32))


def test_audioset_to_and_len():
    ds = AudioSet(torch.zeros(3, 5, dtype=torch.int16), torch.full((3,), 5),
                  torch.tensor([0, 1, 1]), ["a/1", "b/2", "b/3"], ["a", "b"], SR, [], None)
    moved = ds.to("cpu")
    assert len(moved) == 3 and moved.classes == ["a", "b"] and moved.waveforms.device.type == "cpu"


# ---------------------------------------------------------------------------
# Cache


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    out = _gtzan(tmp_path, n_per_class=1)
    cache = tmp_path / "cache"
    first = _load(out, cache)
    assert len(list(cache.glob("*.pt"))) == 1 and not list(cache.glob("*.tmp"))

    calls = []
    real = data_mod._decode

    def counting(path, *args):
        calls.append(path)
        return real(path, *args)

    def boom(*args):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(data_mod, "_decode", boom)
    again = _load(out, cache)
    assert again.skipped == [] and again.ids == first.ids
    assert torch.equal(again.waveforms, first.waveforms)
    assert torch.equal(again.labels, first.labels)

    # Changing one file (content and mtime) invalidates the cache.
    target = out / "rock" / "rock.00000.wav"
    sf.write(target, np.zeros(123), SR, subtype="PCM_16")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(data_mod, "_decode", counting)
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
    assert torch.equal(again.waveforms, first.waveforms)


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
