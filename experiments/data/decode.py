"""Decode a dataset once into one packed int16 tensor, and cache it.

Following airbench, a dataset is decoded once (soundfile, mono, resampled to the
run's rate) into a single flat int16 tensor holding every clip end to end (an
:class:`~experiments.data.audioset.AudioSet`), cached as a tensor file keyed by the
file list and the files' contents (a BLAKE2b hash of each file's bytes: another data
set with the same names, sizes and mtimes never reads this one's cache), the sample
rate and the clip length, and from then on loaded in seconds and moved to the device
whole.

Nothing is dropped or changed silently: every file that is skipped (unreadable,
truncated, NaN/inf samples), clipped, repaired, or ignored by the scan (nested
folders, dangling symlinks, files outside the class folders or without an audio
extension) is counted in one grouped warning that names a few per reason (see
:func:`load_dataset`); :attr:`AudioSet.problems` lists them all. Only decoded clips are
cached, so a file that failed is tried again next time.

Example::

    >>> import torch
    >>> from experiments.data.decode import load_dataset
    >>> ds = load_dataset("data/gtzan/Data", sample_rate=16000,
    ...                   cache_dir=".cache").to("cuda")  # doctest: +SKIP
    >>> idx = torch.arange(8, device="cuda")  # doctest: +SKIP
    >>> pos = torch.full((8,), 0.5, device="cuda")  # centre crops  # doctest: +SKIP
    >>> x = ds.crop(idx, 48000, pos)  # (8, 1, 48000) float32  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm.auto import tqdm

from ..io import disk_error
from .audioset import INT16_SCALE, AudioSet
from .scan import Scan, scan_clips

#: Bump when the decoding changes, so that old caches are not reused.
CACHE_VERSION = 4  # 4: keyed by content; 3: digests, notes, failures not cached; 2: packed
#: A float file is named as clipped when its peak is this far above full scale (0.05 dB:
#: what rounds to "+0.1 dB"); a peak of exactly 1.00 loses at most one int16 step.
CLIP_DB = 0.05


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
    if peak > 0 and 20 * math.log10(peak) >= CLIP_DB:
        notes.append(("clipped", f"peak {peak:.2f}, {20 * math.log10(peak):.1f} dB above "
                                 "full scale"))
    return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16), notes


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


def file_digest(path: Path) -> str:
    """A BLAKE2b hash of the file's bytes (what the cache is keyed by); ``"unreadable"``
    when it cannot be read (the decoder then says why)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb", buffering=0) as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                h.update(chunk)
    except OSError:
        return "unreadable"
    return h.hexdigest()


def _cache_key(scan: Scan, sample_rate: int, max_seconds: float | None, nonfinite: str,
               truncated: str) -> str:
    """The cache key: every clip id with its file's content hash, and the options. Names,
    sizes and mtimes alone are not enough: archives normalise timestamps, ``cp -p`` and
    ``rsync -t`` keep them over re-encoded files."""
    entries = sorted(zip(scan.ids, map(file_digest, scan.files), strict=True))
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
    """Write the cache atomically; a disk that is full (or a file-size limit) is a warning
    naming the file, not an error: the run goes on with the decoded data."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:  # a file object: torch.save's error keeps the OSError
            torch.save(blob, f)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        cause = e if isinstance(e, OSError) else e.__context__
        why = disk_error(cause) if isinstance(cause, OSError) else str(e).strip()
        warnings.warn(f"could not write the decode cache {path}: {why}; going on without "
                      "it (the data is decoded again next time)", stacklevel=3)
    finally:
        if tmp.exists():
            tmp.unlink()


_MAX_NAMED = 5  # files named per group in the warning (AudioSet.problems has them all)

_GROUPS = (  # (key, how the warning words it)
    ("unreadable", "skipped {n} unreadable"),
    ("truncated", "skipped {n} truncated (cut short)"),
    ("nonfinite", "skipped {n} with NaN/inf samples"),
    ("clipped", "clipped {n} above full scale"),
    ("repaired", "repaired {n} with NaN/inf samples"),
    ("kept-truncated", "kept {n} truncated (cut short)"),
    ("ignored", "ignored {n} by the scan"),
)


def _grouped_warning(source: Path, groups: dict[str, list[str]], total: int,
                     listed_in: str | None = None) -> str | None:
    """One line: the files skipped, changed or ignored, counted per reason, a few named
    (:data:`_MAX_NAMED`) per reason; ``listed_in`` says where all of them are."""
    count = sum(len(v) for v in groups.values())
    if not count:
        return None
    parts = []
    for key, words in _GROUPS:
        items = groups.get(key, [])
        if items:
            more = len(items) - _MAX_NAMED
            parts.append(f"{words.format(n=len(items))} ({', '.join(items[:_MAX_NAMED])}"
                         + (f", and {more} more" if more > 0 else "") + ")")
    where = f"; every one is listed in {listed_in}" if listed_in else ""
    return (f"dataset {source}: {count} of {total} file(s) skipped, changed or ignored: "
            + "; ".join(parts) + where)


def load_dataset(path: str | os.PathLike, sample_rate: int, cache_dir: str | os.PathLike,
                 max_seconds: float | None = None, progress: bool = True,
                 nonfinite: str = "skip", truncated: str = "skip",
                 listed_in: str | None = None,
                 select: Callable[[Scan], Scan] | None = None) -> AudioSet:
    """Decode a dataset once into one packed int16 tensor, cached in ``cache_dir``.

    Files are decoded with soundfile, averaged to mono, resampled to ``sample_rate``
    with :func:`torchaudio.functional.resample` when their rate differs, truncated
    to ``max_seconds`` and stored as int16, the clips end to end without padding
    (memory is the total number of samples). The decoded clips are cached as a
    tensor file keyed by (sorted ids, a BLAKE2b hash of each file's bytes,
    ``sample_rate``, ``max_seconds``, the options, :data:`CACHE_VERSION`) and later
    loaded with ``torch.load(weights_only=True)``; changing, adding or removing a file
    invalidates it, and another data set with the same names never reads it. Only
    decoded clips are cached: a file that failed (unreadable, permissions, truncated,
    NaN) is tried again on every load. A cache that cannot be written (a full disk)
    is a warning naming it; the data is returned all the same.

    Every file that is skipped, cut, clipped, repaired, or ignored by the scan
    (nested folders, dangling symlinks, files outside the class folders or
    without an audio extension) is counted in **one** grouped warning, one line,
    with the count and a few names per reason (:attr:`AudioSet.problems` lists
    every one):

    * skipped: unreadable files; truncated files (for WAV, AIFF and AU the header's
      declared data size exceeds the bytes in the file; for other formats a short
      read or a decoder error part-way); files holding NaN or infinite samples;
    * clipped: float files more than 0.05 dB above full scale (stored clipped to
      int16 range; a peak of exactly 1.0 is not named).

    Args:
        path: Dataset folder or CSV manifest; see :func:`experiments.data.scan.scan_dataset`.
        sample_rate: Target sample rate in Hz.
        cache_dir: Folder for the cache file (created if missing).
        max_seconds: Keep at most this many seconds per clip; ``None`` keeps all.
            (Default: ``None``)
        progress: Show a tqdm bar while decoding. (Default: ``True``)
        nonfinite: ``"skip"`` files with NaN/inf samples, or ``"repair"`` them (the
            samples set to 0, named in the warning). (Default: ``"skip"``)
        truncated: ``"skip"`` truncated files, or ``"keep"`` what is there (named in
            the warning). (Default: ``"skip"``)
        listed_in: Where the caller writes the full list (the runner: its
            ``config.json``), said at the end of the warning. (Default: ``None``)
        select: Narrows the scanned clips before anything is hashed, cached or
            decoded (the recipe search: train and validation only, so no test
            file is opened). (Default: ``None``: every clip)

    Returns:
        An :class:`AudioSet` on the CPU: ``samples`` ``(lengths.sum(),)`` int16 (the
        clips end to end), ``starts``/``lengths``/``labels`` ``(N,)`` int64, in the
        order of the sorted ids, with a content digest per clip.

    Raises:
        FileNotFoundError, ValueError: See :func:`experiments.data.scan.scan_dataset`;
            also ValueError when every file of a class is unusable (naming the class
            folder).
    """
    sample_rate = _check_options(sample_rate, max_seconds, nonfinite, truncated)
    scan = scan_clips(path)
    if select is not None:
        scan = select(scan)
    key = _cache_key(scan, sample_rate, max_seconds, nonfinite, truncated)
    cache = Path(cache_dir).expanduser() / f"{scan.source.stem}-sr{sample_rate}-{key[:16]}.pt"
    blob = _load_cache(cache, key)
    have = {} if blob is None else {clip_id: k for k, clip_id in enumerate(blob["ids"])}
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
        blob = _merge(scan.ids, blob, have, fresh)
        blob.update(key=key, version=CACHE_VERSION, sample_rate=sample_rate)
        _save_cache(cache, blob)
    groups = _groups(scan, failed, blob["notes"])
    message = _grouped_warning(scan.source, groups, len(scan.ids) + len(scan.ignored),
                               listed_in)
    if message:
        warnings.warn(message, stacklevel=2)
    ds = _audioset(scan, blob, sample_rate, sorted(failed))
    ds.problems = {words.format(n=len(groups[key])): groups[key] for key, words in _GROUPS
                   if groups.get(key)}
    return ds


def _check_options(sample_rate: int, max_seconds: float | None, nonfinite: str,
                   truncated: str) -> int:
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    if nonfinite not in ("skip", "repair"):
        raise ValueError(f"nonfinite must be 'skip' or 'repair', got {nonfinite!r}")
    if truncated not in ("skip", "keep"):
        raise ValueError(f"truncated must be 'skip' or 'keep', got {truncated!r}")
    return int(sample_rate)


def _merge(ids: list[str], blob: dict | None, have: dict[str, int],
           fresh: dict[str, tuple[np.ndarray, list]]) -> dict:
    """The cache blob of clips ``ids``: freshly decoded ones, else the old blob's."""
    clips = []
    for clip_id in ids:
        if clip_id in fresh:
            a, notes = fresh[clip_id]
            clips.append((clip_id, a, _digest(a), notes))
        elif clip_id in have:
            k = have[clip_id]
            s, n = int(blob["starts"][k]), int(blob["lengths"][k])
            clips.append((clip_id, blob["samples"][s:s + n].numpy(), blob["digests"][k],
                          blob["notes"].get(clip_id, [])))
    return _pack(clips)


def _groups(scan: Scan, failed: dict[str, tuple[str, str]], notes: dict[str, list]
            ) -> dict[str, list[str]]:
    """Every file skipped, changed or ignored, by :data:`_GROUPS` key."""
    groups: dict[str, list[str]] = {}
    for clip_id, (group, reason) in sorted(failed.items()):
        groups.setdefault(group, []).append(f"{clip_id} ({reason})")
    for clip_id, changes in sorted(notes.items()):
        for group, text in changes:
            groups.setdefault("kept-truncated" if group == "truncated" else group,
                              []).append(f"{clip_id} ({text})")
    groups["ignored"] = [f"{rel} ({why})" for rel, why in scan.ignored]
    return groups


def _audioset(scan: Scan, blob: dict, sample_rate: int, skipped: list[str]) -> AudioSet:
    """The decoded clips of ``blob`` as an :class:`AudioSet`, with the scan's labels."""
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
                    sample_rate=sample_rate, skipped=skipped,
                    manifest_splits=splits, digests=list(blob["digests"]),
                    notes={i: "; ".join(t for _, t in n) for i, n in blob["notes"].items()},
                    ignored=[f"{rel} ({why})" for rel, why in scan.ignored])
