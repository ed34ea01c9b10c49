"""Split kinds (experiments.data.splits): fault-filtered, tutorial, kfold, manifest."""

from __future__ import annotations

import hashlib
import random
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.model_selection import train_test_split

from experiments.data import GTZAN_GENRES, AudioSet, load_dataset
from experiments.data.splits import FAULT_FILTERED_DIR, SPLIT_KINDS, make_splits, resolve_kind

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan_fault_filtered"
SHA256 = {  # from SOURCE.md
    "train.txt": "2b04966cef1486f1a7767b74271533fa23e220388db804a1937835e1fc4fa3fa",
    "valid.txt": "f8fbee7c52397a0e0f3a91dc54fedecb2e27f5bdc9a9daeab8cb10d077e26956",
    "test.txt": "09cafa6a89ce0a27f30ed250d56ecb4d03c22fffb5a693f96c7ae655ee02ac72",
}
# Per-genre counts (blues, classical, ..., rock) from SOURCE.md.
PER_GENRE = {
    "train": [46, 48, 45, 42, 47, 43, 44, 41, 43, 44],
    "val": [23, 20, 23, 22, 18, 17, 20, 13, 17, 24],
    "test": [31, 31, 30, 29, 27, 27, 27, 30, 26, 32],
}


def _fake(ids: list[str], classes: list[str] | None = None,
          manifest_splits: list[str] | None = None) -> AudioSet:
    """An AudioSet without audio: label = the id's folder."""
    classes = classes or sorted({i.split("/")[0] for i in ids})
    labels = torch.tensor([classes.index(i.split("/")[0]) for i in ids])
    n = len(ids)
    return AudioSet(torch.zeros(n, dtype=torch.int16), torch.arange(n),
                    torch.ones(n, dtype=torch.int64), labels, list(ids), classes, 8000, [],
                    manifest_splits)


def _gtzan_ids(ext: str = "wav") -> list[str]:
    return [f"{g}/{g}.{i:05d}.{ext}" for g in GTZAN_GENRES for i in range(100)]


def _check_disjoint(splits: dict[str, torch.Tensor], n: int) -> None:
    for idx in splits.values():
        assert idx.dtype == torch.int64
        assert torch.equal(idx, idx.sort().values)
    joined = torch.cat(list(splits.values()))
    assert joined.unique().numel() == joined.numel()
    assert joined.min() >= 0 and joined.max() < n


def _per_genre(ds: AudioSet, idx: torch.Tensor) -> list[int]:
    counts = Counter(ds.classes[y] for y in ds.labels[idx].tolist())
    return [counts[g] for g in GTZAN_GENRES]


# ---------------------------------------------------------------------------
# fault-filtered


def test_lists_are_the_published_files():
    for name, digest in SHA256.items():
        data = (FAULT_FILTERED_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        if SHARED.is_dir():
            assert data == (SHARED / name).read_bytes()
    license_text = (FAULT_FILTERED_DIR / "LICENSE.md").read_text()
    assert "MIT License" in license_text and "Copyright (c) 2017 Jongpil Lee" in license_text


@pytest.fixture(scope="module")
def gtzan_tree(tmp_path_factory) -> Path:
    """All 1000 GTZAN file names as 0.05 s WAVs, with a corrupt jazz.00054.wav."""
    root = tmp_path_factory.mktemp("gtzan") / "genres_original"
    clip = np.zeros(400, np.int16)
    for g, genre in enumerate(GTZAN_GENRES):
        (root / genre).mkdir(parents=True)
        for i in range(100):
            clip[0] = g * 100 + i  # tag each clip so that a mix-up would show
            sf.write(root / genre / f"{genre}.{i:05d}.wav", clip, 8000, subtype="PCM_16")
    (root / "jazz" / "jazz.00054.wav").write_bytes(b"\x00\x01garbage" * 50)
    return root


def test_fault_filtered_on_gtzan_tree(gtzan_tree, tmp_path):
    with pytest.warns(UserWarning, match=r"skipped 1 .*jazz/jazz\.00054\.wav"):
        ds = load_dataset(gtzan_tree, 8000, tmp_path / "cache", progress=False)
    assert len(ds) == 999 and ds.classes == list(GTZAN_GENRES)
    with pytest.warns(UserWarning, match=r"1 listed clip\(s\).*dropped: jazz/jazz\.00054$"):
        splits = make_splits(ds, "fault-filtered")
    assert {k: len(v) for k, v in splits.items()} == {"train": 442, "val": 197, "test": 290}
    _check_disjoint(splits, len(ds))
    expected = {k: list(v) for k, v in PER_GENRE.items()}
    expected["train"][GTZAN_GENRES.index("jazz")] -= 1
    for name, idx in splits.items():
        assert _per_genre(ds, idx) == expected[name]
        for i in idx.tolist():  # labels agree with folder names and the decoded audio
            genre = ds.ids[i].split("/")[0]
            assert ds.classes[ds.labels[i]] == genre
            number = int(ds.ids[i].split(".")[1])
            assert ds.samples[ds.starts[i]] == GTZAN_GENRES.index(genre) * 100 + number
    listed = {line.strip() for name in ("train.txt", "valid.txt", "test.txt")
              for line in (FAULT_FILTERED_DIR / name).read_text().splitlines()}
    assert {ds.ids[i] for i in splits["test"].tolist()} <= listed
    train_ids = {ds.ids[i] for i in splits["train"].tolist()}
    assert "blues/blues.00029.wav" in train_ids and "jazz/jazz.00054.wav" not in train_ids


def test_fault_filtered_all_present_and_au():
    for ext in ("wav", "au"):
        ds = _fake(_gtzan_ids(ext))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing missing: no warning
            splits = make_splits(ds, "fault-filtered")
        assert {k: len(v) for k, v in splits.items()} == {"train": 443, "val": 197, "test": 290}
        _check_disjoint(splits, len(ds))
        for name, idx in splits.items():
            assert _per_genre(ds, idx) == PER_GENRE[name]
        assert ds.ids[splits["train"][0]] == f"blues/blues.00029.{ext}"


def test_fault_filtered_needs_gtzan_names():
    # The synthetic set's names (20 per genre) cover far fewer than half the listed clips.
    ds = _fake([f"{g}/{g}.{i:05d}.wav" for g in GTZAN_GENRES for i in range(20)])
    with pytest.raises(ValueError, match="real GTZAN file names"):
        make_splits(ds, "fault-filtered")
    with pytest.raises(ValueError, match="real GTZAN file names"):
        make_splits(_fake([f"{c}/{c}{i}.wav" for c in ("cat", "dog") for i in range(50)]),
                    "fault-filtered")


def test_fault_filtered_duplicate_clip():
    ds = _fake(_gtzan_ids("wav") + ["blues/blues.00029.au"])
    with pytest.raises(ValueError, match="blues/blues.00029"):
        make_splits(ds, "fault-filtered")


# ---------------------------------------------------------------------------
# tutorial


def test_tutorial_matches_sklearn():
    rng = random.Random(0)
    ids = [f"{c}/{c}{i:03d}.wav" for c, n in (("b", 23), ("a", 40), ("c", 11)) for i in range(n)]
    rng.shuffle(ids)  # dataset order must not matter
    ds = _fake(ids)
    splits = make_splits(ds, "tutorial")
    assert set(splits) == {"train", "val"}
    _check_disjoint(splits, len(ds))
    want_train, want_val = set(), set()
    for c in ("a", "b", "c"):
        tr, va = train_test_split(sorted(i for i in ids if i.startswith(c + "/")),
                                  test_size=0.2, random_state=42)
        want_train |= set(tr)
        want_val |= set(va)
    assert {ds.ids[i] for i in splits["train"].tolist()} == want_train
    assert {ds.ids[i] for i in splits["val"].tolist()} == want_val
    assert len(want_val) == 8 + 5 + 3
    # The tutorial split ignores `seed` (always random_state=42).
    assert torch.equal(make_splits(ds, "tutorial", seed=7)["val"], splits["val"])


def test_tutorial_needs_two_per_class():
    with pytest.raises(ValueError, match="'z' has 1"):
        make_splits(_fake(["a/1", "a/2", "a/3", "z/1"]), "tutorial")


# ---------------------------------------------------------------------------
# kfold


def test_kfold_partitions_and_stratifies():
    ids = [f"{c}/{i}" for c, n in (("a", 30), ("b", 20), ("c", 13)) for i in range(n)]
    ds = _fake(ids)
    vals = []
    for fold in range(5):
        s = make_splits(ds, "kfold", folds=5, fold=fold, seed=1)
        _check_disjoint(s, len(ds))
        assert s["train"].numel() + s["val"].numel() == len(ds)
        counts = torch.bincount(ds.labels[s["val"]], minlength=3).tolist()
        assert counts[0] == 6 and counts[1] == 4 and counts[2] in (2, 3)
        vals.append(s["val"])
    every = torch.cat(vals)
    assert torch.equal(every.sort().values, torch.arange(len(ds)))  # folds partition the data
    same = make_splits(ds, "kfold", folds=5, fold=2, seed=1)["val"]
    other = make_splits(ds, "kfold", folds=5, fold=2, seed=2)["val"]
    assert torch.equal(same, vals[2]) and not torch.equal(other, vals[2])


@pytest.mark.parametrize(("folds", "fold", "word"), [(1, 0, "folds"), (0, 0, "folds"),
                                                     (5, 5, "fold"), (5, -1, "fold"),
                                                     (3, 1.5, "fold")])
def test_kfold_bad_arguments(folds, fold, word):
    with pytest.raises(ValueError, match=rf"^{word} must"):
        make_splits(_fake([f"a/{i}" for i in range(10)]), "kfold", folds=folds, fold=fold)


# ---------------------------------------------------------------------------
# manifest and unknown kinds


def test_manifest_split():
    ids = [f"{c}/{i}" for c in "xy" for i in range(6)]
    ds = _fake(ids, manifest_splits=["train", "valid", "Validation", "val", "test", "TRAIN"] * 2)
    s = make_splits(ds, "manifest")
    assert {k: v.tolist() for k, v in s.items()} == {"train": [0, 5, 6, 11],
                                                     "val": [1, 2, 3, 7, 8, 9],
                                                     "test": [4, 10]}
    no_test = make_splits(_fake(["x/0", "x/1", "y/0", "y/1"],
                                manifest_splits=["train", "val"] * 2), "manifest")
    assert set(no_test) == {"train", "val"}
    with pytest.raises(ValueError, match="'dev'"):
        make_splits(_fake(ids[:2], manifest_splits=["train", "dev"]), "manifest")
    with pytest.raises(ValueError, match="no 'val' clips"):
        make_splits(_fake(ids[:2], manifest_splits=["train", "test"]), "manifest")
    with pytest.raises(ValueError, match="'split' column"):
        make_splits(_fake(ids), "manifest")


def test_manifest_split_from_csv(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(6):
        sf.write(tmp_path / "a" / f"{i}.wav", np.zeros(20), 8000)
    (tmp_path / "m.csv").write_text("path,label,split\na/0.wav,p,train\na/1.wav,q,train\n"
                                    "a/2.wav,p,val\na/3.wav,q,test\na/4.wav,q,val\n"
                                    "a/5.wav,p,test\n")
    ds = load_dataset(tmp_path / "m.csv", 8000, tmp_path / "cache", progress=False)
    s = make_splits(ds, "manifest")
    assert {k: [ds.ids[i] for i in v.tolist()] for k, v in s.items()} == {
        "train": ["a/0.wav", "a/1.wav"], "val": ["a/2.wav", "a/4.wav"],
        "test": ["a/3.wav", "a/5.wav"]}


def test_unknown_kind():
    with pytest.raises(ValueError, match="tutorial.*fault-filtered.*kfold.*manifest"):
        make_splits(_fake(["a/1", "b/1"]), "random")
    assert SPLIT_KINDS == ("tutorial", "fault-filtered", "kfold", "manifest", "holdout", "auto")


def test_auto_is_the_datas_own_split_column_else_holdout():
    ids = [f"{c}/{i}" for c in "xyz" for i in range(5)]
    column = ["train", "train", "train", "val", "test"] * 3
    with_column = _fake(ids, manifest_splits=column)
    assert resolve_kind(with_column, "auto") == "manifest"
    assert {k: v.tolist() for k, v in make_splits(with_column, "auto").items()} == {
        k: v.tolist() for k, v in make_splits(with_column, "manifest").items()}
    without = _fake(ids)
    assert resolve_kind(without, "auto") == "holdout"
    assert {k: v.tolist() for k, v in make_splits(without, "auto").items()} == {
        k: v.tolist() for k, v in make_splits(without, "holdout").items()}
    assert resolve_kind(with_column, "kfold") == "kfold"


def test_holdout_is_stratified_60_20_20_and_disjoint():
    n_per, classes = 10, ["a", "b", "c"]
    labels = torch.arange(3).repeat_interleave(n_per)
    ds = AudioSet(torch.zeros(30 * 4, dtype=torch.int16), torch.arange(0, 120, 4),
                  torch.full((30,), 4), labels,
                  [f"{classes[int(c)]}/{i}.wav" for i, c in enumerate(labels)], classes, 8000, [])
    s = make_splits(ds, "holdout")
    assert {k: len(v) for k, v in s.items()} == {"train": 18, "val": 6, "test": 6}
    for name in ("val", "test"):
        assert torch.bincount(labels[s[name]], minlength=3).tolist() == [2, 2, 2]
    assert len(torch.cat(list(s.values())).unique()) == 30
    assert torch.equal(make_splits(ds, "holdout")["test"], s["test"])
    assert not torch.equal(make_splits(ds, "holdout", seed=1)["test"], s["test"])
