"""The synthetic GTZAN-layout generator: layout, determinism, idempotence, content."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from experiments.data import GTZAN_GENRES, synthetic
from experiments.data.synthetic import GENRES, generate_synthetic_gtzan, render_clip

SMALL = dict(n_per_class=2, seconds=0.5, sample_rate=8000, seed=3, progress=False)


def _tree_bytes(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout(tmp_path):
    out = generate_synthetic_gtzan(tmp_path / "syn", **SMALL)
    assert out == tmp_path / "syn" / "genres_original"
    assert GENRES == GTZAN_GENRES
    assert sorted(p.name for p in out.iterdir()) == sorted(GENRES)
    for genre in GENRES:
        names = sorted(p.name for p in (out / genre).iterdir())
        assert names == [f"{genre}.00000.wav", f"{genre}.00001.wav"]
        info = sf.info(out / genre / names[0])
        assert (info.samplerate, info.channels, info.frames) == (8000, 1, 4000)
        assert info.format == "WAV" and info.subtype == "PCM_16"
    assert len(list((tmp_path / "syn").glob(".complete-*"))) == 1
    assert not list((tmp_path / "syn").rglob("*.tmp"))


def test_deterministic_bytes(tmp_path):
    a = _tree_bytes(generate_synthetic_gtzan(tmp_path / "a", **SMALL))
    b = _tree_bytes(generate_synthetic_gtzan(tmp_path / "b", **SMALL))
    assert len(a) == 20 and a == b
    c = _tree_bytes(generate_synthetic_gtzan(tmp_path / "c", **{**SMALL, "seed": 4}))
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)  # another seed: other clips
    # Each clip has its own seed: clip 1 does not depend on how many clips are made
    # (its musical content; its recording conditions are those of its split).
    one = render_clip("rock", 3, 1, seconds=0.5, sample_rate=8000,
                      condition=synthetic.split_of(1, 2))
    data, rate = sf.read(tmp_path / "a" / "genres_original" / "rock" / "rock.00001.wav",
                         dtype="int16")
    np.testing.assert_array_equal(data, one)
    assert rate == 8000


def test_idempotent_and_regenerates(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    out = generate_synthetic_gtzan(root, **SMALL)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}

    def boom(*args, **kwargs):
        raise AssertionError("should not render again")

    monkeypatch.setattr(synthetic, "render_clip", boom)
    assert generate_synthetic_gtzan(root, **SMALL) == out  # marker present: nothing to do
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before
    # Without the marker (an interrupted run) the tree is generated again.
    next(root.glob(".complete-*")).unlink()
    with pytest.raises(AssertionError, match="render again"):
        generate_synthetic_gtzan(root, **SMALL)
    monkeypatch.undo()
    reference = _tree_bytes(generate_synthetic_gtzan(tmp_path / "ref", **SMALL))
    assert _tree_bytes(generate_synthetic_gtzan(root, **SMALL)) == reference


def test_other_arguments_replace_the_tree(tmp_path):
    root = tmp_path / "syn"
    generate_synthetic_gtzan(root, **{**SMALL, "n_per_class": 3})
    out = generate_synthetic_gtzan(root, **SMALL)
    assert sorted(p.name for p in (out / "jazz").iterdir()) == ["jazz.00000.wav",
                                                                "jazz.00001.wav"]
    assert len(list(root.glob(".complete-*"))) == 1


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_per_class"):
        generate_synthetic_gtzan(tmp_path, n_per_class=0, progress=False)
    with pytest.raises(ValueError, match="unknown genre"):
        render_clip("polka", 0, 0)


def test_clip_level_and_length():
    for condition, cond in synthetic.CONDITIONS.items():
        peaks = []
        for i in range(6):
            x = render_clip("pop", 0, i, seconds=1.0, sample_rate=16000, condition=condition)
            assert x.dtype == np.int16 and x.shape == (16000,)
            peaks.append(np.abs(x.astype(np.int64)).max())
        peaks_db = 20 * np.log10(np.array(peaks) / 32767)
        lo, hi = cond.peak_dbfs
        assert peaks_db.min() >= lo - 0.1 and peaks_db.max() <= hi + 0.01, condition
        assert peaks_db.max() - peaks_db.min() > 1.0  # the level is a per-clip nuisance


def test_split_of_and_manifest(tmp_path):
    assert [synthetic.split_of(i, 30) for i in (0, 17, 18, 23, 24, 29)] == [
        "train", "train", "val", "val", "test", "test"]
    assert [synthetic.split_of(i, 5) for i in range(5)] == ["train"] * 3 + ["val", "test"]
    assert [synthetic.split_of(i, 3) for i in range(3)] == ["train", "val", "test"]
    root = tmp_path / "syn"
    generate_synthetic_gtzan(root, **{**SMALL, "n_per_class": 5})
    lines = (root / synthetic.MANIFEST).read_text().splitlines()
    assert lines[0] == "path,label,split,condition"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 50
    for path, label, split, condition in rows:
        assert (root / path).is_file() and path.startswith(f"genres_original/{label}/")
        assert split == synthetic.split_of(int(path[-9:-4]), 5)
        clip = int(path[-9:-4])
        assert condition == synthetic.condition_of(3, split, clip).name
        assert condition == ("studio" if split == "train" else
                             f"live-{split}-{synthetic.venue_of(clip)}")
    # Each clip is rendered under its split's conditions.
    data, _ = sf.read(root / "genres_original" / "jazz" / "jazz.00004.wav", dtype="int16")
    np.testing.assert_array_equal(data, render_clip("jazz", 3, 4, 0.5, 8000, "test"))
    with pytest.raises(ValueError, match="unknown condition"):
        render_clip("jazz", 0, 0, condition="outdoors")


def _band_share(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(power[(f >= lo) & (f < hi)].sum() / power.sum())


def test_venues_are_disjoint_points_of_the_live_distribution():
    """Validation and test venues: fixed per venue, inside LIVE's ranges, drawn apart."""
    live = synthetic.LIVE
    seen = {}
    for split in ("val", "test"):
        for v in range(synthetic.VENUES):
            c = synthetic.venue_condition(0, split, v)
            assert c == synthetic.venue_condition(0, split, v)  # deterministic
            assert c.name == f"live-{split}-{v}"
            for f in synthetic._VENUE_FIELDS:
                lo, hi = getattr(c, f)
                assert lo == hi and getattr(live, f)[0] <= lo <= getattr(live, f)[1], f
            assert c.snr_db == live.snr_db and c.peak_dbfs == live.peak_dbfs  # per clip
            seen[(split, v)] = (c.rt60, c.lowpass_hz, c.bell_hz)
    assert len(set(seen.values())) == 2 * synthetic.VENUES  # no venue shared
    assert synthetic.venue_condition(1, "val", 0) != synthetic.venue_condition(0, "val", 0)
    hums = [synthetic.venue_condition(s, "val", v).hum_db is None for s in range(5)
            for v in range(synthetic.VENUES)]
    assert 0.2 < np.mean(hums) < 0.8  # hum in about half the venues
    with pytest.raises(ValueError, match="evaluated splits"):
        synthetic.venue_condition(0, "train", 0)
    assert [synthetic.venue_of(i) for i in (0, 5, 6, 13)] == [0, 5, 0, 1]


def test_live_clips_are_band_limited_reverberant_and_noisy():
    """Paired over the same music: each venue's channel cuts below its high-pass corner and
    above its low-pass corner (when that is well below Nyquist)."""
    sr = 16000
    for clip in range(18, 24):  # the val clips of a 30-per-genre set: one per venue
        venue = synthetic.venue_condition(0, "val", synthetic.venue_of(clip))
        lp, hp = venue.lowpass_hz[0], venue.highpass_hz[0]
        studio = render_clip("rock", 0, clip, seconds=2.0, sample_rate=sr, condition="train")
        live = render_clip("rock", 0, clip, seconds=2.0, sample_rate=sr, condition="val")
        if 1.5 * lp < 0.45 * sr:
            above = 10 * np.log10(_band_share(live, sr, 1.5 * lp, sr)
                                  / _band_share(studio, sr, 1.5 * lp, sr))
            assert above < -10, (clip, lp, above)  # order 4: -28 dB at 1.5 lp, less the room
        below = 10 * np.log10(_band_share(live, sr, 10, 0.5 * hp)
                              / _band_share(studio, sr, 10, 0.5 * hp))
        assert below < -6, (clip, hp, below)


def test_room_has_the_reverberation_time_it_was_given():
    sr, rt60 = 16000, 0.6
    cond = dataclasses.replace(synthetic.CONDITIONS["test"], rt60=(rt60, rt60),
                               drr_db=(-20.0, -20.0))
    x = np.zeros(2 * sr)
    x[0] = 1.0
    y = synthetic._room(x, sr, cond, np.random.default_rng(0))
    edc = np.cumsum((y ** 2)[::-1])[::-1]  # Schroeder's energy decay curve
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    i5, i25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
    measured = 60.0 * (i25 - i5) / sr / 20.0  # T20 extrapolated to 60 dB
    assert measured == pytest.approx(rt60, rel=0.15)
    dry = dataclasses.replace(cond, rt60=(0.0, 0.0))
    assert synthetic._room(x, sr, dry, np.random.default_rng(0)) is x  # the studio is dry


def _features(x: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Level-free log band energies (mean and std over time) and the spectral centroid."""
    n = 512
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[::256]
    power = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2 + 1e-9
    f = np.fft.rfftfreq(n, 1 / sr)
    edges = np.geomspace(60, sr / 2, 17)
    bands = np.log(np.stack([power[:, (f >= a) & (f < b)].sum(1)
                             for a, b in zip(edges[:-1], edges[1:], strict=True)], 1))
    centroid = float(((power * f).sum(1) / power.sum(1)).mean())
    return np.r_[bands.mean(0) - bands.mean(), bands.std(0)], centroid


def test_genres_differ_but_overlap():
    sr, per = 16000, 8
    feats, labels, centroids = [], [], {}
    for g, genre in enumerate(GENRES):
        cs = []
        for i in range(per):
            f, c = _features(render_clip(genre, 0, i, seconds=3.0, sample_rate=sr), sr)
            feats.append(f)
            labels.append(g)
            cs.append(c)
        centroids[genre] = np.mean(cs)
    z = np.array(feats)
    z = (z - z.mean(0)) / z.std(0)
    y = np.array(labels)
    correct = 0
    for k in range(len(y)):  # leave-one-out nearest class mean
        rest = np.arange(len(y)) != k
        means = np.stack([z[rest & (y == g)].mean(0) for g in range(len(GENRES))])
        correct += int(np.argmin(((means - z[k]) ** 2).sum(1)) == y[k])
    accuracy = correct / len(y)
    assert 0.25 < accuracy < 0.9, accuracy  # learnable (chance 0.1) but not trivial
    # Classical (no drums, dark strings) is the darkest genre on average.
    assert min(centroids, key=centroids.get) == "classical"
    assert max(centroids.values()) > 2 * centroids["classical"]
