"""Train/validation/test splits of an :class:`~experiments.data.audioset.AudioSet`.

Six kinds (:data:`SPLIT_KINDS`):

* ``"tutorial"``: per class, scikit-learn's ``train_test_split(test_size=0.2,
  random_state=42)`` of the class's sorted ids; the held-out 20% is ``"val"``
  (as the tutorial calls it); no test split.
* ``"fault-filtered"``: the artist-filtered GTZAN split of Kereliuk, Sturm & Larsen
  (2015), 443/197/290 clips, from ``experiments/data/split_lists/gtzan_fault_filtered``.
* ``"kfold"``: stratified k-fold cross-validation; fold ``fold`` is ``"val"``.
* ``"manifest"``: the ``split`` column of a CSV manifest.
* ``"holdout"``: stratified 60/20/20 train/val/test.
* ``"auto"`` (the quick preset's): ``"manifest"`` when the data has a ``split``
  column (a manifest with one, or the synthetic set's own, whose splits are
  recorded differently), else ``"holdout"``.

Every kind returns sorted int64 index tensors into the dataset, so one label map
(``ds.classes``) serves all splits. Every class must have at least one clip in
train and in every evaluated split (val, test), otherwise :func:`make_splits`
raises a ``ValueError`` naming the class and its counts (``allow_missing_classes``
turns that into a warning); a dataset of one class is always an error. Example::

    >>> splits = make_splits(ds, "kfold", folds=5, fold=0, seed=0)  # doctest: +SKIP
    >>> idx = splits["train"].to(ds.samples.device)  # doctest: +SKIP
    >>> train_x = ds.crop(idx, 48000, torch.rand(len(idx), device=idx.device))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor

from .audioset import AudioSet

__all__ = ["FAULT_FILTERED_DIR", "SPLIT_KINDS", "check_classes", "make_splits",
           "resolve_kind"]

SPLIT_KINDS = ("tutorial", "fault-filtered", "kfold", "manifest", "holdout", "auto")
#: The three lists (train.txt, valid.txt, test.txt) of the fault-filtered split.
FAULT_FILTERED_DIR = Path(__file__).parent / "split_lists" / "gtzan_fault_filtered"

_MANIFEST_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                   "test": "test"}
_MAX_NAMED = 30  # clips named in a warning before "... and N more"


def _as_index(idx) -> Tensor:
    return torch.as_tensor(sorted(int(i) for i in idx), dtype=torch.int64)


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    more = len(items) - _MAX_NAMED
    return shown + (f", ... and {more} more" if more > 0 else "")


def _tutorial(ds: AudioSet) -> dict[str, list[int]]:
    labels = ds.labels.tolist()
    index = {clip_id: i for i, clip_id in enumerate(ds.ids)}
    train, val = [], []
    for c, name in enumerate(ds.classes):
        ids = sorted(ds.ids[i] for i, y in enumerate(labels) if y == c)
        if not ids:
            continue
        if len(ids) < 2:
            raise ValueError(f"split 'tutorial' needs at least 2 clips per class; class "
                             f"{name!r} has {len(ids)}")
        tr, va = train_test_split(ids, test_size=0.2, random_state=42)
        train += [index[i] for i in tr]
        val += [index[i] for i in va]
    return {"train": train, "val": val}


def _clip_key(name: str, class_name: str | None = None) -> str:
    """``"<genre>/<genre>.000NN"``: class (or parent folder) and file name without extension."""
    p = PurePosixPath(name)
    return f"{class_name if class_name is not None else p.parent.name}/{p.stem}"


def _fault_filtered(ds: AudioSet, folder: Path) -> dict[str, list[int]]:
    lists = {}
    for split, fname in (("train", "train.txt"), ("val", "valid.txt"), ("test", "test.txt")):
        f = folder / fname
        if not f.is_file():
            raise FileNotFoundError(f"fault-filtered split list {f} does not exist")
        lists[split] = [_clip_key(line.strip()) for line in f.read_text().splitlines()
                        if line.strip()]
    labels = ds.labels.tolist()
    where: dict[str, list[int]] = {}
    for i, clip_id in enumerate(ds.ids):
        where.setdefault(_clip_key(clip_id, ds.classes[labels[i]]), []).append(i)
    listed = [k for keys in lists.values() for k in keys]
    dup = [k for k in listed if len(where.get(k, ())) > 1]
    if dup:
        raise ValueError(f"the dataset holds several files for listed clip(s) {_named(dup)} "
                         "(e.g. both .wav and .au); keep one per clip")
    missing = [k for k in listed if k not in where]
    present = len(listed) - len(missing)
    if present < len(listed) / 2:
        raise ValueError(
            f"split 'fault-filtered' needs the real GTZAN file names "
            f"(<genre>/<genre>.000NN.wav or .au, labels = genre names): only {present} of "
            f"the {len(listed)} clips listed in {folder} are in the dataset")
    if missing:
        warnings.warn(f"split 'fault-filtered': {len(missing)} listed clip(s) are not in the "
                      f"dataset (unreadable or absent) and are dropped: {_named(missing)}",
                      stacklevel=3)
    return {split: [where[k][0] for k in keys if k in where] for split, keys in lists.items()}


def _class_counts(ds: AudioSet) -> list[int]:
    return np.bincount(ds.labels.cpu().numpy(), minlength=len(ds.classes)).tolist()


def _need_per_class(ds: AudioSet, kind: str, need: int, why: str) -> None:
    small = [(c, n) for c, n in zip(ds.classes, _class_counts(ds), strict=True) if n < need]
    if small:
        c, n = small[0]
        more = f" (and {len(small) - 1} more class(es))" if len(small) > 1 else ""
        raise ValueError(f"split {kind!r} needs at least {need} clips per class ({why}); "
                         f"class {c!r} has {n} clip{'s' if n != 1 else ''}{more}")


def _kfold(ds: AudioSet, folds: int, fold: int, seed: int) -> dict[str, list[int]]:
    if not isinstance(folds, (int, np.integer)) or isinstance(folds, bool) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if not isinstance(fold, (int, np.integer)) or not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, folds) = [0, {folds}), got {fold!r}")
    _need_per_class(ds, "kfold", int(folds), f"one in each of the {folds} folds")
    y = ds.labels.cpu().numpy()
    skf = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    for k, (tr, va) in enumerate(skf.split(np.zeros(len(y)), y)):
        if k == fold:
            return {"train": tr.tolist(), "val": va.tolist()}
    raise AssertionError("unreachable")


def _holdout(ds: AudioSet, seed: int, val: float = 0.2, test: float = 0.2
             ) -> dict[str, list[int]]:
    """Stratified train / val / test (60/20/20 by default) for data without a given split."""
    _need_per_class(ds, "holdout", 3, "one each for train, val and test")
    y = ds.labels.cpu().numpy()
    idx = np.arange(len(y))
    rest, te = train_test_split(idx, test_size=test, stratify=y, random_state=seed)
    tr, va = train_test_split(rest, test_size=val / (1 - test), stratify=y[rest],
                              random_state=seed)
    return {"train": tr.tolist(), "val": va.tolist(), "test": te.tolist()}


def _manifest(ds: AudioSet) -> dict[str, list[int]]:
    if ds.manifest_splits is None:
        raise ValueError("split 'manifest' needs a dataset loaded from a CSV manifest with a "
                         "'split' column (values train, val/valid/validation, test)")
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    bad = []
    for i, value in enumerate(ds.manifest_splits):
        name = _MANIFEST_NAMES.get(value.strip().lower())
        if name is None:
            bad.append(f"{ds.ids[i]}: {value!r}")
        else:
            out[name].append(i)
    if bad:
        raise ValueError(f"unknown split value(s) in the manifest (expected train, "
                         f"val/valid/validation or test): {_named(bad)}")
    for name in ("train", "val"):
        if not out[name]:
            raise ValueError(f"the manifest's split column has no {name!r} clips")
    if not out["test"]:
        del out["test"]
    return out


def check_classes(ds: AudioSet, splits: dict[str, list[int]] | dict[str, Tensor],
                  allow_missing_classes: bool = False) -> None:
    """Every class in train and in every evaluated split, or an error naming it.

    Raises:
        ValueError: A class has no clip in some split (unless ``allow_missing_classes``,
            then a warning); the message names the class and its per-split counts.
    """
    labels = ds.labels.cpu().numpy()
    counts = {name: np.bincount(labels[np.asarray(idx, dtype=np.int64)],
                                minlength=len(ds.classes)) for name, idx in splits.items()}
    problems = []
    for c, cls in enumerate(ds.classes):
        empty = [name for name in splits if counts[name][c] == 0]
        if empty:
            per = ", ".join(f"{name} {int(counts[name][c])}" for name in splits)
            problems.append(f"class {cls!r} has no clips in {' or '.join(empty)} ({per})")
    if not problems:
        return
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    msg = (f"{problems[0]}{more}: a class missing from train is never learned, one missing "
           "from val or test is never scored")
    if allow_missing_classes:
        warnings.warn(msg + "; running anyway (allow_missing_classes)", stacklevel=3)
        return
    raise ValueError(msg + "; every class needs at least one clip in train and in each "
                     "evaluated split. Add clips, choose another --split, or pass "
                     "--allow-missing-classes to run anyway")


def resolve_kind(ds: AudioSet, kind: str) -> str:
    """``kind``, with ``"auto"`` made ``"manifest"`` (the data has a split column) or
    ``"holdout"``."""
    if kind != "auto":
        return kind
    return "manifest" if ds.manifest_splits is not None else "holdout"


def make_splits(ds: AudioSet, kind: str, *, folds: int = 5, fold: int = 0, seed: int = 42,
                fault_filtered_dir: str | os.PathLike | None = None,
                allow_missing_classes: bool = False) -> dict[str, Tensor]:
    """Split a dataset into train / val (/ test) index sets.

    Args:
        ds: The dataset.
        kind: One of :data:`SPLIT_KINDS`.
        folds: Number of folds for ``"kfold"``. (Default: ``5``)
        fold: Which fold is the validation set for ``"kfold"``, ``0 <= fold < folds``.
            (Default: ``0``)
        seed: Shuffle seed for ``"kfold"`` and ``"holdout"`` (stratified 60/20/20
            train/val/test); the other kinds are fixed (``"tutorial"``
            always uses ``random_state=42``). (Default: ``42``)
        fault_filtered_dir: Folder with ``train.txt``, ``valid.txt``, ``test.txt`` for
            ``"fault-filtered"``. (Default: :data:`FAULT_FILTERED_DIR`)
        allow_missing_classes: Warn instead of failing when a class has no clip in
            some split. (Default: ``False``)

    Returns:
        ``{"train": idx, "val": idx}`` plus ``"test"`` for ``"fault-filtered"``,
        ``"holdout"`` (and a
        manifest with test rows); each ``idx`` is a sorted int64 tensor ``(n_split,)``
        of indices into ``ds``. The splits are disjoint.

    Raises:
        ValueError: Unknown ``kind``, bad ``folds``/``fold``, a manifest without a split
            column, a dataset without the GTZAN file names for ``"fault-filtered"``,
            fewer than 2 classes, or a class without clips in some split (see
            :func:`check_classes`).
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; expected one of {SPLIT_KINDS}")
    kind = resolve_kind(ds, kind)
    if kind == "tutorial":
        raw = _tutorial(ds)
    elif kind == "fault-filtered":
        raw = _fault_filtered(ds, Path(fault_filtered_dir) if fault_filtered_dir is not None
                              else FAULT_FILTERED_DIR)
    elif kind == "kfold":
        raw = _kfold(ds, folds, fold, seed)
    elif kind == "manifest":
        raw = _manifest(ds)
    elif kind == "holdout":
        raw = _holdout(ds, seed)
    else:
        raise ValueError(f"unknown split kind {kind!r}; expected one of {SPLIT_KINDS}")
    if len(ds.classes) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; the dataset has "
                         f"{len(ds.classes)}: {', '.join(repr(c) for c in ds.classes)}")
    check_classes(ds, raw, allow_missing_classes)
    out = {name: _as_index(idx) for name, idx in raw.items()}
    joined = torch.cat(list(out.values()))
    assert joined.numel() == joined.unique().numel(), "splits overlap"
    return out
