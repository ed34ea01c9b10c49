"""Find, decode and cache an audio classification dataset as one int16 buffer.

Following airbench, a dataset is decoded once into a single flat int16 tensor
holding every clip end to end (packed: per-clip start offsets and lengths, no
padding, so its size is the total number of samples, not clips x the longest
clip), cached as a tensor file keyed by the file list, the files' sizes and
mtimes, the sample rate and the clip length, and from then on loaded in seconds
and moved to the device whole (:meth:`AudioSet.to`). Batches are then fixed-length
crops gathered on the device (:meth:`AudioSet.crop`, via
:func:`augkit.functional.crop_segments`); there is no DataLoader and no per-step
decoding.

Accepted layouts (see :func:`scan_dataset`):

* GTZAN: ``genres_original/<genre>/<genre>.000NN.wav`` (Kaggle) or the original
  ``genres/<genre>/<genre>.000NN.au``; a parent folder holding exactly one of
  ``genres_original``/``genres`` (e.g. Kaggle's ``Data/``) is descended into.
* Any folder-per-class dataset: ``<root>/<class>/<file>.<audio extension>``.
* A CSV manifest with columns ``path,label`` and an optional ``split`` column;
  paths are relative to the CSV's folder or absolute.

Example::

    >>> import torch
    >>> from experiments.data import load_dataset
    >>> ds = load_dataset("data/gtzan/Data", sample_rate=16000,
    ...                   cache_dir=".cache").to("cuda")  # doctest: +SKIP
    >>> idx = torch.arange(8, device="cuda")  # doctest: +SKIP
    >>> pos = torch.full((8,), 0.5, device="cuda")  # centre crops  # doctest: +SKIP
    >>> x = ds.crop(idx, 48000, pos)  # (8, 1, 48000) float32  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from torch import Tensor
from tqdm.auto import tqdm

from augkit.functional import crop_segments, offsets_at

__all__ = [
    "AUDIO_EXTENSIONS",
    "CACHE_VERSION",
    "GTZAN_GENRES",
    "AudioSet",
    "float_waveforms",
    "load_dataset",
    "scan_dataset",
]

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop",
                "jazz", "metal", "pop", "reggae", "rock")
#: Bump when the decoding changes, so that old caches are not reused.
CACHE_VERSION = 2  # 2: packed samples/starts/lengths (1 was padded (N, T_max))

_INT16_SCALE = 32768.0


@dataclass
class AudioSet:
    """A decoded dataset: every clip end to end in one flat int16 tensor.

    Clip ``i`` is ``samples[starts[i] : starts[i] + lengths[i]]``; nothing is padded,
    so memory is the total number of samples.

    Attributes:
        samples: All mono clips end to end, shape ``(S,)``, int16, ``S = lengths.sum()``
            for a loaded dataset.
        starts: Index into :attr:`samples` of each clip's first sample, shape ``(N,)``,
            int64.
        lengths: Samples per clip, shape ``(N,)``, int64.
        labels: Class index per clip into :attr:`classes`, shape ``(N,)``, int64.
        ids: Relative clip ids ``"<class>/<file name>"`` (for a manifest: the path as
            relative to the CSV's folder, or absolute), length ``N``.
        classes: Sorted class names; the one label map shared by all splits.
        sample_rate: Sample rate of :attr:`samples` in Hz.
        skipped: Ids of files that could not be decoded (not in the set).
        manifest_splits: Per-clip ``split`` value from a CSV manifest, else ``None``.
    """

    samples: Tensor
    starts: Tensor
    lengths: Tensor
    labels: Tensor
    ids: list[str]
    classes: list[str]
    sample_rate: int
    skipped: list[str]
    manifest_splits: list[str] | None = None

    def __post_init__(self) -> None:
        # Shapes, dtypes and devices only: no host sync on device tensors.
        if self.samples.dim() != 1 or self.samples.dtype != torch.int16:
            raise ValueError(f"AudioSet.samples must be a 1-D int16 tensor, got shape "
                             f"{tuple(self.samples.shape)} {self.samples.dtype}")
        n = len(self.ids)
        for name in ("starts", "lengths", "labels"):
            t = getattr(self, name)
            if t.shape != (n,) or t.dtype != torch.int64:
                raise ValueError(f"AudioSet.{name} must be int64 of shape ({n},) (one per "
                                 f"id), got shape {tuple(t.shape)} {t.dtype}")
            if t.device != self.samples.device:
                raise ValueError(f"AudioSet.{name} is on {t.device} but samples are on "
                                 f"{self.samples.device}")
        if self.manifest_splits is not None and len(self.manifest_splits) != n:
            raise ValueError(f"AudioSet.manifest_splits has {len(self.manifest_splits)} "
                             f"entries for {n} ids")

    def to(self, device: torch.device | str) -> AudioSet:
        """Return a copy whose tensors live on ``device`` (metadata is shared)."""
        return dataclasses.replace(self, samples=self.samples.to(device),
                                   starts=self.starts.to(device),
                                   lengths=self.lengths.to(device),
                                   labels=self.labels.to(device))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def clip(self, i: int) -> Tensor:
        """Clip ``i``'s valid samples as float32 in ``[-1, 1)``, shape ``(lengths[i],)``.

        For tests and inspection (it syncs with the host); batches use :meth:`crop`.
        """
        start, n = int(self.starts[i]), int(self.lengths[i])
        return float_waveforms(self.samples[start:start + n])

    def crop(self, idx: Tensor, length: int, position: Tensor) -> Tensor:
        """Fixed-length crops of clips ``idx``, on the dataset's device, no host sync.

        Each crop starts at ``offsets_at(position, (lengths[idx] - length).clamp_min(0))``
        within its clip; clips shorter than ``length`` are zero-padded at the end, and a
        crop never reads into the next clip.

        Args:
            idx: Clip indices, int64 ``(B,)``, on the dataset's device.
            length: Samples per crop.
            position: Where to crop, float ``(B,)`` in ``[0, 1]``: ``0`` the start,
                ``1`` the end, ``0.5`` the centre; uniform positions give uniform
                offsets (see :func:`augkit.functional.offsets_at`).

        Returns:
            float32 tensor of shape ``(B, 1, length)`` in ``[-1, 1)``.
        """
        n = self.lengths[idx]
        offset = offsets_at(position, (n - length).clamp_min(0))
        x = crop_segments(self.samples, self.starts[idx] + offset, n - offset, length)
        return float_waveforms(x).unsqueeze(1)


def float_waveforms(int16: Tensor) -> Tensor:
    """Convert int16 samples to float32 in ``[-1, 1)``.

    Args:
        int16: Tensor of any shape, e.g. ``(B, T)``, dtype int16 (a floating tensor
            is returned as float32 unchanged in value).

    Returns:
        float32 tensor of the same shape and device, ``int16 / 32768``.
    """
    if int16.is_floating_point():
        return int16.float()
    if int16.dtype != torch.int16:
        raise ValueError(f"expected an int16 tensor, got {int16.dtype}")
    return int16.float() / _INT16_SCALE


# ---------------------------------------------------------------------------
# Scanning


@dataclass
class _Scan:
    root: Path  # dataset folder (or the manifest's folder)
    source: Path  # what to name in messages: the folder or the CSV
    files: list[Path]
    ids: list[str]
    labels: list[str]  # class name per file
    kind: str
    splits: list[str] | None


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def _hidden(p: Path) -> bool:
    # ".git", "._foo" and macOS zip debris ("__MACOSX") are never classes.
    return p.name.startswith((".", "__"))


def _scan(path: str | os.PathLike) -> _Scan:
    p = Path(os.path.abspath(Path(path).expanduser()))
    if not p.exists():
        raise FileNotFoundError(f"dataset path does not exist: {p}")
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return _scan_manifest(p)
        raise ValueError(f"{p} is a file but not a .csv manifest; pass a dataset folder "
                         "(<class>/<audio files>) or a CSV with columns path,label[,split]")
    inner = [p / d for d in ("genres_original", "genres") if (p / d).is_dir()]
    if len(inner) == 2:
        raise ValueError(f"{p} contains both 'genres_original' and 'genres'; pass the one "
                         "to use")
    if inner:
        p = inner[0]
    class_dirs = sorted((d for d in p.iterdir() if d.is_dir() and not _hidden(d)),
                        key=lambda d: d.name)
    per_class = {d: sorted((f for f in d.iterdir() if _is_audio(f)), key=lambda f: f.name)
                 for d in class_dirs}
    if not any(per_class.values()):
        loose = [f.name for f in p.iterdir() if _is_audio(f)]
        hint = (f" ({len(loose)} audio files lie directly in it; put each class in its own "
                "subfolder)" if loose else "")
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in class "
                         f"subfolders of {p}{hint}")
    for d, fs in per_class.items():
        if not fs:
            raise ValueError(f"class folder {d} contains no audio files "
                             f"({', '.join(AUDIO_EXTENSIONS)}); remove it or add its audio")
    files, ids, labels = [], [], []
    for d, fs in per_class.items():
        for f in fs:
            files.append(f)
            ids.append(f"{d.name}/{f.name}")
            labels.append(d.name)
    names = {d.name for d in class_dirs}
    kind = "gtzan" if names == set(GTZAN_GENRES) else "folder"
    return _Scan(p, p, files, ids, labels, kind, None)


def _scan_manifest(csv_path: Path) -> _Scan:
    base = csv_path.parent
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            raise ValueError(f"manifest {csv_path} needs columns 'path' and 'label' (optional "
                             f"'split'); missing {missing}, found {columns}")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    has_split = "split" in columns
    entries = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            raise ValueError(f"manifest {csv_path}, line {line}: empty path")
        if not row["label"]:
            raise ValueError(f"manifest {csv_path}, line {line}: empty label for {row['path']}")
        rel = Path(row["path"]).expanduser()
        f = rel if rel.is_absolute() else base / rel
        if not f.is_file():
            raise FileNotFoundError(f"manifest {csv_path}, line {line}: audio file {f} "
                                    "does not exist")
        f = Path(os.path.abspath(f))  # normalise "..", keep symlinks as written
        try:
            clip_id = f.relative_to(os.path.abspath(base)).as_posix()
        except ValueError:
            clip_id = f.as_posix()
        if clip_id in seen:
            raise ValueError(f"manifest {csv_path}: {clip_id} is listed twice (lines "
                             f"{seen[clip_id]} and {line})")
        seen[clip_id] = line
        entries.append((clip_id, f, row["label"], row.get("split", "").lower()))
    if not entries:
        raise ValueError(f"manifest {csv_path} lists no audio files")
    entries.sort(key=lambda e: e[0])
    return _Scan(base, csv_path, [e[1] for e in entries], [e[0] for e in entries],
                 [e[2] for e in entries], "manifest",
                 [e[3] for e in entries] if has_split else None)


def scan_dataset(path: str | os.PathLike) -> tuple[list[Path], list[str], str]:
    """Find the audio files of a dataset and their classes (nothing is decoded).

    Args:
        path: A GTZAN ``genres_original`` or ``genres`` folder, a folder containing
            exactly one of them, any folder-per-class dataset (class = immediate
            subfolder; audio files directly inside it, extension in
            :data:`AUDIO_EXTENSIONS`, any case), or a CSV manifest ``path,label[,split]``.

    Returns:
        ``(files, class_names, kind)``: the files sorted by id, the class name of each,
        and ``"gtzan"`` (the class folders are exactly the 10 GTZAN genres),
        ``"folder"`` or ``"manifest"``.

    Raises:
        FileNotFoundError: ``path`` or a file named in the manifest does not exist.
        ValueError: No audio, a class folder without audio, or a malformed manifest;
            the message names the offending path.
    """
    s = _scan(path)
    return s.files, s.labels, s.kind


# ---------------------------------------------------------------------------
# Decoding


def _decode(path: Path, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    """Decode one file to mono int16 at ``sample_rate``; raises on unreadable files.

    Returns:
        Array of shape ``(T,)``, int16.
    """
    with sf.SoundFile(path) as f:
        sr = int(f.samplerate)
        frames = -1 if max_seconds is None else math.ceil(max_seconds * sr)
        data = f.read(frames, dtype="float32", always_2d=True)  # (T, channels)
    if data.size == 0:
        raise ValueError("no audio samples")
    x = np.nan_to_num(data.mean(axis=1, dtype=np.float32))
    if sr != sample_rate:
        x = torchaudio.functional.resample(torch.from_numpy(x), sr, sample_rate).numpy()
    if max_seconds is not None:
        x = x[: int(round(max_seconds * sample_rate))]
    return np.clip(np.round(x * _INT16_SCALE), -32768, 32767).astype(np.int16)


def _try_decode(path: Path, sample_rate: int,
                max_seconds: float | None) -> tuple[np.ndarray | None, str]:
    try:
        return _decode(path, sample_rate, max_seconds), ""
    except sf.LibsndfileError as e:  # corrupt, truncated, empty or unsupported format
        return None, e.error_string
    except Exception as e:  # anything else that stops one file: skip it, say why
        return None, f"{type(e).__name__}: {e}".strip()


def _cache_key(scan: _Scan, sample_rate: int, max_seconds: float | None) -> str:
    entries = []
    for clip_id, f in sorted(zip(scan.ids, scan.files, strict=True)):
        st = f.stat()
        entries.append([clip_id, st.st_size, st.st_mtime_ns])
    blob = json.dumps({"files": entries, "sample_rate": int(sample_rate),
                       "max_seconds": None if max_seconds is None else float(max_seconds),
                       "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _decode_all(scan: _Scan, sample_rate: int, max_seconds: float | None,
                progress: bool) -> dict:
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as ex:
        results = list(tqdm(ex.map(lambda f: _try_decode(f, sample_rate, max_seconds),
                                   scan.files),
                            total=len(scan.files), desc=f"decoding {scan.source.name}",
                            unit="file", disable=not progress))
    ok = [(i, a) for i, (a, _) in enumerate(results) if a is not None]
    # Packed: the clips end to end, so memory is the total number of samples.
    samples = torch.from_numpy(np.concatenate([a for _, a in ok]) if ok
                               else np.zeros(0, dtype=np.int16))
    lengths = torch.tensor([len(a) for _, a in ok], dtype=torch.int64)
    return {
        "ids": [scan.ids[i] for i, _ in ok],
        "samples": samples,
        "starts": torch.cumsum(lengths, 0) - lengths,
        "lengths": lengths,
        "skipped": [scan.ids[i] for i, (a, _) in enumerate(results) if a is None],
        "reasons": [r for a, r in results if a is None],
    }


def _load_cache(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        warnings.warn(f"ignoring unreadable dataset cache {path} ({e}); decoding again",
                      stacklevel=3)
        return None
    if not isinstance(blob, dict) or blob.get("key") != key:
        return None
    return blob


def _save_cache(path: Path, blob: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_dataset(path: str | os.PathLike, sample_rate: int, cache_dir: str | os.PathLike,
                 max_seconds: float | None = None, progress: bool = True) -> AudioSet:
    """Decode a dataset once into one packed int16 tensor, cached in ``cache_dir``.

    Files are decoded with soundfile, averaged to mono, resampled to ``sample_rate``
    with :func:`torchaudio.functional.resample` when their rate differs, truncated
    to ``max_seconds`` and stored as int16, the clips end to end without padding
    (memory is the total number of samples). The result is cached as a tensor file
    keyed by (sorted ids, each file's size and mtime_ns, ``sample_rate``,
    ``max_seconds``, :data:`CACHE_VERSION`) and later loaded with
    ``torch.load(weights_only=True)``; changing, adding or removing a file
    invalidates it. Unreadable files are skipped with one warning naming them.

    Args:
        path: Dataset folder or CSV manifest; see :func:`scan_dataset`.
        sample_rate: Target sample rate in Hz.
        cache_dir: Folder for the cache file (created if missing).
        max_seconds: Keep at most this many seconds per clip; ``None`` keeps all.
            (Default: ``None``)
        progress: Show a tqdm bar while decoding. (Default: ``True``)

    Returns:
        An :class:`AudioSet` on the CPU: ``samples`` ``(lengths.sum(),)`` int16 (the
        clips end to end), ``starts``/``lengths``/``labels`` ``(N,)`` int64, in the
        order of the sorted ids.

    Raises:
        FileNotFoundError, ValueError: See :func:`scan_dataset`; also ValueError when
            every file of a class is unreadable (naming the class folder).
    """
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    sample_rate = int(sample_rate)
    scan = _scan(path)
    key = _cache_key(scan, sample_rate, max_seconds)
    cache = Path(cache_dir).expanduser() / f"{scan.source.stem}-sr{sample_rate}-{key[:16]}.pt"
    blob = _load_cache(cache, key)
    if blob is None:
        blob = _decode_all(scan, sample_rate, max_seconds, progress)
        blob.update(key=key, version=CACHE_VERSION, sample_rate=sample_rate)
        _save_cache(cache, blob)

    if blob["skipped"]:
        listing = "; ".join(f"{i} ({r})" for i, r in zip(blob["skipped"], blob["reasons"],
                                                         strict=True))
        warnings.warn(f"skipped {len(blob['skipped'])} unreadable audio file(s) in "
                      f"{scan.source}: {listing}", stacklevel=2)

    label_of = dict(zip(scan.ids, scan.labels, strict=True))
    classes = sorted(set(scan.labels))
    decoded = {label_of[i] for i in blob["ids"]}
    for c in classes:
        if c not in decoded:
            where = (f"class folder {scan.root / c}" if scan.kind != "manifest"
                     else f"class {c!r} of manifest {scan.source}")
            raise ValueError(f"every audio file of {where} is unreadable")
    index = {c: k for k, c in enumerate(classes)}
    labels = torch.tensor([index[label_of[i]] for i in blob["ids"]], dtype=torch.int64)
    splits = None
    if scan.splits is not None:
        split_of = dict(zip(scan.ids, scan.splits, strict=True))
        splits = [split_of[i] for i in blob["ids"]]
    return AudioSet(samples=blob["samples"], starts=blob["starts"], lengths=blob["lengths"],
                    labels=labels, ids=list(blob["ids"]), classes=classes,
                    sample_rate=sample_rate, skipped=list(blob["skipped"]),
                    manifest_splits=splits)
