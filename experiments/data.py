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

Nothing is dropped or changed silently: every file that is skipped (unreadable,
truncated, NaN/inf samples), clipped, repaired, or ignored by the scan (nested
folders, dangling symlinks, files outside the class folders or without an audio
extension) is named in one grouped warning with counts (see :func:`load_dataset`).
Only decoded clips are cached, so a file that failed is tried again next time.

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
import io
import json
import math
import os
import struct
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
    "Scan",
    "load_dataset",
    "scan_clips",
    "scan_dataset",
]

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop",
                "jazz", "metal", "pop", "reggae", "rock")
#: Bump when the decoding changes, so that old caches are not reused.
CACHE_VERSION = 3  # 3: digests, notes, failures not cached; 2: packed; 1: padded (N, T_max)

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
        skipped: Ids of files not in the set: unreadable, truncated, or holding
            NaN/inf samples (each named, with why, in :func:`load_dataset`'s warning).
        manifest_splits: Per-clip ``split`` value from a CSV manifest, else ``None``.
        digests: Per-clip hash of the decoded int16 samples (what the runner's resume
            check compares), or ``None``.
        notes: Clip id -> what was changed while decoding (clipped above full scale,
            NaN/inf repaired, truncated but kept).
        ignored: Entries the scan did not take, each ``"path (why)"``.
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
    digests: list[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

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
        if self.digests is not None and len(self.digests) != n:
            raise ValueError(f"AudioSet.digests has {len(self.digests)} entries for {n} ids")

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
class Scan:
    """What :func:`scan_clips` found: the clips to decode and what it ignored.

    Attributes:
        root: The dataset folder (for a manifest: the CSV's folder).
        source: What to name in messages: the folder or the CSV.
        files: Audio files, sorted by id.
        ids: Clip ids (``"<class>/<file name>"``, or the manifest's path).
        labels: Class name per file.
        kind: ``"gtzan"``, ``"folder"`` or ``"manifest"``.
        splits: Per-file ``split`` value of a manifest, else ``None``.
        ignored: ``(path relative to root, why)`` for every entry the scan did not
            take: nested folders, dangling symlinks, files outside the class folders,
            files without an audio extension. Hidden entries (``.*``, ``__MACOSX``)
            are not listed.
    """

    root: Path
    source: Path
    files: list[Path]
    ids: list[str]
    labels: list[str]
    kind: str
    splits: list[str] | None
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


_Scan = Scan  # the old private name


def _hidden(p: Path) -> bool:
    # ".git", "._foo", ".DS_Store" and macOS zip debris ("__MACOSX") are never data.
    return p.name.startswith(".") or (p.name.startswith("__") and p.is_dir())


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda e: e.name)
    except OSError as e:
        raise ValueError(f"cannot list folder {folder}: {e.strerror or e}") from None


def _what(p: Path) -> str:
    """``"hidden"``, ``"dangling"``, ``"dir"``, ``"audio"`` or ``"other"``."""
    if _hidden(p):
        return "hidden"
    if p.is_symlink() and not p.exists():
        return "dangling"
    if p.is_dir():
        return "dir"
    if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
        return "audio"
    return "other"


def _audio_below(folder: Path, cap: int = 10_000) -> int:
    n = 0
    for _, _, names in os.walk(folder):
        n += sum(Path(f).suffix.lower() in AUDIO_EXTENSIONS for f in names)
        if n >= cap:
            break
    return n


def _scan(path: str | os.PathLike) -> Scan:
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
    ignored: list[tuple[str, str]] = []
    class_dirs = []
    for e in _entries(p):
        what = _what(e)
        if what == "dir":
            class_dirs.append(e)
        elif what == "audio":
            ignored.append((e.name, "audio file outside the class folders"))
        elif what == "dangling":
            ignored.append((e.name, "dangling symlink"))
        elif what == "other":
            ignored.append((e.name, "not in a class folder"))
    per_class: dict[Path, list[Path]] = {}
    for d in class_dirs:
        fs = []
        for e in _entries(d):
            what, rel = _what(e), f"{d.name}/{e.name}"
            if what == "audio":
                fs.append(e)
            elif what == "dir":
                n = _audio_below(e)
                ignored.append((rel, f"nested folder, {n} audio file(s) not scanned"))
            elif what == "dangling":
                ignored.append((rel, "dangling symlink"))
            elif what == "other":
                ignored.append((rel, f"not an audio file ({e.suffix or 'no extension'})"))
        per_class[d] = fs
    if not any(per_class.values()):
        loose = [name for name, why in ignored if why.startswith("audio file outside")]
        hint = (f" ({len(loose)} audio files lie directly in it; put each class in its own "
                "subfolder)" if loose else "")
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in class "
                         f"subfolders of {p}{hint}")
    for d, fs in per_class.items():
        if not fs:
            nested = [r for r, why in ignored if r.startswith(f"{d.name}/")
                      and why.startswith("nested")]
            hint = (f"; it holds subfolder(s) {', '.join(nested)}, and nested folders are "
                    "not scanned (one folder per class)" if nested else "")
            raise ValueError(f"class folder {d} contains no audio files "
                             f"({', '.join(AUDIO_EXTENSIONS)}){hint}; remove it or add its "
                             "audio")
    files, ids, labels = [], [], []
    for d, fs in per_class.items():
        for f in fs:
            files.append(f)
            ids.append(f"{d.name}/{f.name}")
            labels.append(d.name)
    names = {d.name for d in class_dirs}
    kind = "gtzan" if names == set(GTZAN_GENRES) else "folder"
    return Scan(p, p, files, ids, labels, kind, None, sorted(ignored))


def _manifest_text(csv_path: Path) -> str:
    try:
        raw = csv_path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read manifest {csv_path}: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"manifest {csv_path}, line {line}: not UTF-8 (byte "
                         f"0x{raw[e.start]:02x} at column {col}); save the file as UTF-8"
                         ) from None


def _scan_manifest(csv_path: Path) -> Scan:
    base = csv_path.parent
    reader = csv.reader(io.StringIO(_manifest_text(csv_path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ValueError(f"manifest {csv_path} is empty; expected a header line "
                             "path,label[,split] and one line per clip")
        columns = [c.strip() for c in header]
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            raise ValueError(f"manifest {csv_path} needs columns 'path' and 'label' (optional "
                             f"'split'); missing {missing}, found {columns}")
        rows = []
        for fields in reader:
            if not fields or not any(f.strip() for f in fields):
                continue  # blank line
            if len(fields) != len(columns):
                raise ValueError(
                    f"manifest {csv_path}, line {reader.line_num}: {len(fields)} fields, "
                    f"expected {len(columns)} ({','.join(columns)}); quote a path that "
                    "contains a comma, e.g. \"a/x, y.wav\"")
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(columns, fields,
                                                                         strict=True)}))
    except csv.Error as e:
        raise ValueError(f"manifest {csv_path}, line {reader.line_num}: {e} (an unbalanced "
                         "double quote?)") from None
    has_split = "split" in columns
    entries = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if not row["path"]:
            raise ValueError(f"manifest {csv_path}, line {line}: empty path")
        if not row["label"]:
            raise ValueError(f"manifest {csv_path}, line {line}: empty label for {row['path']}")
        rel = Path(row["path"]).expanduser()
        f = rel if rel.is_absolute() else base / rel
        if not f.is_file():
            what = "is a folder" if f.is_dir() else "does not exist"
            raise FileNotFoundError(f"manifest {csv_path}, line {line}: audio file {f} {what}")
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
    return Scan(base, csv_path, [e[1] for e in entries], [e[0] for e in entries],
                [e[2] for e in entries], "manifest",
                [e[3] for e in entries] if has_split else None)


def scan_clips(path: str | os.PathLike) -> Scan:
    """Find a dataset's clips without decoding anything; see :func:`scan_dataset`.

    Returns:
        A :class:`Scan`: files, ids, class names, kind, manifest splits and the
        entries the scan ignored (named in :func:`load_dataset`'s warning).
    """
    return _scan(path)


def scan_dataset(path: str | os.PathLike) -> tuple[list[Path], list[str], str]:
    """Find the audio files of a dataset and their classes (nothing is decoded).

    Args:
        path: A GTZAN ``genres_original`` or ``genres`` folder, a folder containing
            exactly one of them, any folder-per-class dataset (class = immediate
            subfolder; audio files directly inside it, extension in
            :data:`AUDIO_EXTENSIONS`, any case), or a CSV manifest ``path,label[,split]``
            (UTF-8).

    Returns:
        ``(files, class_names, kind)``: the files sorted by id, the class name of each,
        and ``"gtzan"`` (the class folders are exactly the 10 GTZAN genres),
        ``"folder"`` or ``"manifest"``.

    Raises:
        FileNotFoundError: ``path`` or a file named in the manifest does not exist.
        ValueError: No audio, a class folder without audio, or a malformed manifest;
            the message names the offending path (and line).
    """
    s = _scan(path)
    return s.files, s.labels, s.kind


# ---------------------------------------------------------------------------
# Decoding


class _Skip(Exception):
    """A file that is not used: ``group`` is ``unreadable``, ``truncated`` or ``nonfinite``."""

    def __init__(self, group: str, reason: str) -> None:
        super().__init__(reason)
        self.group, self.reason = group, reason


def _chunk_shortfall(fh, size: int, target: bytes, endian: str) -> str | None:
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return None
        csize = struct.unpack(endian + "I", head[4:8])[0]
        if head[:4] == target:
            if csize in (0, 0xFFFFFFFF):  # streamed: size unknown
                return None
            have = size - pos - 8
            if have < csize:
                return (f"the header declares {csize} bytes of audio, the file holds {have} "
                        f"({100 * have / csize:.0f}%)")
            return None
        pos += 8 + csize + (csize & 1)
    return None


def _header_shortfall(path: Path) -> str | None:
    """For WAV, AIFF and AU: compare the header's declared audio size with the file.

    libsndfile reads whatever frames are present, so a file cut short (an interrupted
    download) would otherwise load as a shorter clip. ``None`` when complete or unknown.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
                return _chunk_shortfall(fh, size, b"data", "<" if head[:4] == b"RIFF" else ">")
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _chunk_shortfall(fh, size, b"SSND", ">")
            if head[:4] == b".snd":
                offset, declared = struct.unpack(">II", head[4:12])
                if declared in (0, 0xFFFFFFFF) or offset > size:
                    return None
                have = size - offset
                if have < declared:
                    return (f"the header declares {declared} bytes of audio, the file holds "
                            f"{have} ({100 * have / declared:.0f}%)")
    except OSError:
        return None  # the decoder reports it
    return None


def _decode(path: Path, sample_rate: int, max_seconds: float | None,
            nonfinite: str = "skip", truncated: str = "skip"
            ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode one file to mono int16 at ``sample_rate``.

    Returns:
        ``(samples (T,) int16, notes)``: ``notes`` is a list of ``(group, text)`` for
        what was changed on the way (``clipped``, ``repaired``, ``truncated``).

    Raises:
        _Skip: the file is not used (truncated, NaN/inf, no samples);
        soundfile/OS errors: unreadable.
    """
    notes: list[tuple[str, str]] = []
    short = _header_shortfall(path)
    if short is not None:
        if truncated == "skip":
            raise _Skip("truncated", short)
        notes.append(("truncated", f"kept what is there: {short}"))
    with sf.SoundFile(path) as f:
        sr = int(f.samplerate)
        want = f.frames if max_seconds is None else min(f.frames, math.ceil(max_seconds * sr))
        try:
            data = f.read(want, dtype="float32", always_2d=True)  # (T, channels)
        except RuntimeError as e:  # a decoder error part-way: cut short or corrupt
            raise _Skip("truncated", f"decoding stopped part-way "
                        f"({getattr(e, 'error_string', e)}): cut short or corrupt") from None
    if data.shape[0] < want:
        msg = f"{data.shape[0]} of the {want} frames its header declares"
        if truncated == "skip":
            raise _Skip("truncated", msg)
        notes.append(("truncated", f"kept what is there: {msg}"))
    if data.size == 0:
        raise _Skip("unreadable", "no audio samples")
    bad = ~np.isfinite(data)
    if bad.any():
        n = int(bad.sum())
        msg = f"{n} of {data.size} samples are NaN or infinite"
        if nonfinite == "skip":
            raise _Skip("nonfinite", msg)
        data = np.where(bad, np.float32(0), data)
        notes.append(("repaired", f"{msg}, set to 0"))
    x = data.mean(axis=1, dtype=np.float32)
    if sr != sample_rate:
        x = torchaudio.functional.resample(torch.from_numpy(x), sr, sample_rate).numpy()
    if max_seconds is not None:
        x = x[: int(round(max_seconds * sample_rate))]
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0 + 1.0 / _INT16_SCALE:
        notes.append(("clipped", f"peak {peak:.2f}, {20 * math.log10(peak):.1f} dB above "
                                 "full scale"))
    return np.clip(np.round(x * _INT16_SCALE), -32768, 32767).astype(np.int16), notes


def _try_decode(path: Path, sample_rate: int, max_seconds: float | None, nonfinite: str,
                truncated: str) -> tuple[np.ndarray | None, object]:
    """``(samples, notes)``, or ``(None, (group, reason))`` for a file not used."""
    try:
        return _decode(path, sample_rate, max_seconds, nonfinite, truncated)
    except _Skip as e:
        return None, (e.group, e.reason)
    except sf.LibsndfileError as e:  # corrupt, empty or unsupported format
        return None, ("unreadable", e.error_string)
    except OSError as e:  # permissions, I/O errors: tried again on the next load
        return None, ("unreadable", e.strerror or str(e))
    except Exception as e:  # anything else that stops one file: skip it, say why
        return None, ("unreadable", f"{type(e).__name__}: {e}".strip())


def _cache_key(scan: Scan, sample_rate: int, max_seconds: float | None, nonfinite: str,
               truncated: str) -> str:
    entries = []
    for clip_id, f in sorted(zip(scan.ids, scan.files, strict=True)):
        try:
            st = f.stat()
            entries.append([clip_id, st.st_size, st.st_mtime_ns])
        except OSError:
            entries.append([clip_id, -1, -1])
    blob = json.dumps({"files": entries, "sample_rate": int(sample_rate),
                       "max_seconds": None if max_seconds is None else float(max_seconds),
                       "nonfinite": nonfinite, "truncated": truncated,
                       "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(a.tobytes()).hexdigest()[:16]


def _decode_files(scan: Scan, which: list[int], sample_rate: int, max_seconds: float | None,
                  nonfinite: str, truncated: str, progress: bool) -> list:
    files = [scan.files[i] for i in which]
    if not files:
        return []
    workers = max(1, min(8, os.cpu_count() or 1))
    ex = ThreadPoolExecutor(workers)
    try:
        results = list(tqdm(ex.map(lambda f: _try_decode(f, sample_rate, max_seconds,
                                                         nonfinite, truncated), files),
                            total=len(files), desc=f"decoding {scan.source.name}",
                            unit="file", disable=not progress))
    except BaseException:  # Ctrl-C: do not decode the rest before stopping
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown()
    return results


def _pack(clips: list[tuple[str, np.ndarray, str, list]]) -> dict:
    """``[(id, int16 samples, digest, notes)]`` sorted by id -> the cache blob's tensors."""
    lengths = torch.tensor([len(a) for _, a, _, _ in clips], dtype=torch.int64)
    samples = torch.from_numpy(np.concatenate([a for _, a, _, _ in clips]) if clips
                               else np.zeros(0, dtype=np.int16))
    return {"ids": [c[0] for c in clips], "samples": samples,
            "starts": torch.cumsum(lengths, 0) - lengths, "lengths": lengths,
            "digests": [c[2] for c in clips],
            "notes": {c[0]: [list(n) for n in c[3]] for c in clips if c[3]}}


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


_MAX_NAMED = 50  # files named per group in the warning before "... and N more"

_GROUPS = (  # (key, how the warning words it)
    ("unreadable", "skipped {n} unreadable"),
    ("truncated", "skipped {n} truncated (cut short)"),
    ("nonfinite", "skipped {n} with NaN/inf samples"),
    ("clipped", "clipped {n} above full scale"),
    ("repaired", "repaired {n} with NaN/inf samples"),
    ("kept-truncated", "kept {n} truncated (cut short)"),
    ("ignored", "ignored {n} by the scan"),
)


def _grouped_warning(source: Path, groups: dict[str, list[str]]) -> str | None:
    """One message naming every file skipped, changed or ignored, grouped, with counts."""
    total = sum(len(v) for v in groups.values())
    if not total:
        return None
    lines = [f"dataset {source}: {total} file(s) skipped, changed or ignored:"]
    for key, words in _GROUPS:
        items = groups.get(key, [])
        if items:
            shown = "; ".join(items[:_MAX_NAMED])
            more = len(items) - _MAX_NAMED
            lines.append(f"  {words.format(n=len(items))}: {shown}"
                         + (f"; ... and {more} more" if more > 0 else ""))
    return "\n".join(lines)


def load_dataset(path: str | os.PathLike, sample_rate: int, cache_dir: str | os.PathLike,
                 max_seconds: float | None = None, progress: bool = True,
                 nonfinite: str = "skip", truncated: str = "skip") -> AudioSet:
    """Decode a dataset once into one packed int16 tensor, cached in ``cache_dir``.

    Files are decoded with soundfile, averaged to mono, resampled to ``sample_rate``
    with :func:`torchaudio.functional.resample` when their rate differs, truncated
    to ``max_seconds`` and stored as int16, the clips end to end without padding
    (memory is the total number of samples). The decoded clips are cached as a
    tensor file keyed by (sorted ids, each file's size and mtime_ns, ``sample_rate``,
    ``max_seconds``, the options, :data:`CACHE_VERSION`) and later loaded with
    ``torch.load(weights_only=True)``; changing, adding or removing a file
    invalidates it. Only decoded clips are cached: a file that failed (unreadable,
    permissions, truncated, NaN) is tried again on every load.

    Every file that is skipped, cut, clipped, repaired, or ignored by the scan
    (nested folders, dangling symlinks, files outside the class folders or
    without an audio extension) is named in **one** grouped warning with counts:

    * skipped: unreadable files; truncated files (for WAV, AIFF and AU the header's
      declared data size exceeds the bytes in the file; for other formats a short
      read or a decoder error part-way); files holding NaN or infinite samples;
    * clipped: float files above full scale (stored clipped to int16 range).

    Args:
        path: Dataset folder or CSV manifest; see :func:`scan_dataset`.
        sample_rate: Target sample rate in Hz.
        cache_dir: Folder for the cache file (created if missing).
        max_seconds: Keep at most this many seconds per clip; ``None`` keeps all.
            (Default: ``None``)
        progress: Show a tqdm bar while decoding. (Default: ``True``)
        nonfinite: ``"skip"`` files with NaN/inf samples, or ``"repair"`` them (the
            samples set to 0, named in the warning). (Default: ``"skip"``)
        truncated: ``"skip"`` truncated files, or ``"keep"`` what is there (named in
            the warning). (Default: ``"skip"``)

    Returns:
        An :class:`AudioSet` on the CPU: ``samples`` ``(lengths.sum(),)`` int16 (the
        clips end to end), ``starts``/``lengths``/``labels`` ``(N,)`` int64, in the
        order of the sorted ids, with a content digest per clip.

    Raises:
        FileNotFoundError, ValueError: See :func:`scan_dataset`; also ValueError when
            every file of a class is unusable (naming the class folder).
    """
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    if nonfinite not in ("skip", "repair"):
        raise ValueError(f"nonfinite must be 'skip' or 'repair', got {nonfinite!r}")
    if truncated not in ("skip", "keep"):
        raise ValueError(f"truncated must be 'skip' or 'keep', got {truncated!r}")
    sample_rate = int(sample_rate)
    scan = _scan(path)
    key = _cache_key(scan, sample_rate, max_seconds, nonfinite, truncated)
    cache = Path(cache_dir).expanduser() / f"{scan.source.stem}-sr{sample_rate}-{key[:16]}.pt"
    blob = _load_cache(cache, key)
    have = {} if blob is None else {
        clip_id: k for k, clip_id in enumerate(blob["ids"])}
    todo = [i for i, clip_id in enumerate(scan.ids) if clip_id not in have]
    decoded = _decode_files(scan, todo, sample_rate, max_seconds, nonfinite, truncated,
                            progress)
    failed: dict[str, tuple[str, str]] = {}
    fresh: dict[str, tuple[np.ndarray, list]] = {}
    for i, (a, info) in zip(todo, decoded, strict=True):
        if a is None:
            failed[scan.ids[i]] = info
        else:
            fresh[scan.ids[i]] = (a, info)
    if blob is None or fresh:
        clips = []
        for clip_id in scan.ids:
            if clip_id in fresh:
                a, notes = fresh[clip_id]
                clips.append((clip_id, a, _digest(a), notes))
            elif clip_id in have:
                k = have[clip_id]
                s, n = int(blob["starts"][k]), int(blob["lengths"][k])
                clips.append((clip_id, blob["samples"][s:s + n].numpy(), blob["digests"][k],
                              blob["notes"].get(clip_id, [])))
        blob = _pack(clips)
        blob.update(key=key, version=CACHE_VERSION, sample_rate=sample_rate)
        _save_cache(cache, blob)

    groups: dict[str, list[str]] = {}
    for clip_id, (group, reason) in sorted(failed.items()):
        groups.setdefault(group, []).append(f"{clip_id} ({reason})")
    for clip_id, notes in sorted(blob["notes"].items()):
        for group, text in notes:
            groups.setdefault("kept-truncated" if group == "truncated" else group,
                              []).append(f"{clip_id} ({text})")
    groups["ignored"] = [f"{rel} ({why})" for rel, why in scan.ignored]
    message = _grouped_warning(scan.source, groups)
    if message:
        warnings.warn(message, stacklevel=2)

    label_of = dict(zip(scan.ids, scan.labels, strict=True))
    classes = scan.classes
    present = {label_of[i] for i in blob["ids"]}
    for c in classes:
        if c not in present:
            where = (f"class folder {scan.root / c}" if scan.kind != "manifest"
                     else f"class {c!r} of manifest {scan.source}")
            raise ValueError(f"every audio file of {where} is unreadable or skipped")
    index = {c: k for k, c in enumerate(classes)}
    labels = torch.tensor([index[label_of[i]] for i in blob["ids"]], dtype=torch.int64)
    splits = None
    if scan.splits is not None:
        split_of = dict(zip(scan.ids, scan.splits, strict=True))
        splits = [split_of[i] for i in blob["ids"]]
    return AudioSet(samples=blob["samples"], starts=blob["starts"], lengths=blob["lengths"],
                    labels=labels, ids=list(blob["ids"]), classes=classes,
                    sample_rate=sample_rate, skipped=sorted(failed),
                    manifest_splits=splits, digests=list(blob["digests"]),
                    notes={i: "; ".join(t for _, t in n) for i, n in blob["notes"].items()},
                    ignored=[f"{rel} ({why})" for rel, why in scan.ignored])
