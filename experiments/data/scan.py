"""Find a dataset's clips without decoding anything: folders, GTZAN, CSV manifests.

Accepted layouts (:func:`scan_dataset`):

* GTZAN: ``genres_original/<genre>/<genre>.000NN.wav`` (Kaggle) or the original
  ``genres/<genre>/<genre>.000NN.au``; a parent folder holding exactly one of
  ``genres_original``/``genres`` (e.g. Kaggle's ``Data/``) is descended into.
* Any folder-per-class dataset: ``<root>/<class>/<file>.<audio extension>``.
* A CSV manifest with columns ``path,label`` and an optional ``split`` column;
  paths are relative to the CSV's folder or absolute.

Nothing is dropped silently: every entry the scan does not take (nested folders,
dangling symlinks, files outside the class folders or without an audio extension)
is listed in :attr:`Scan.ignored`, and :func:`experiments.data.decode.load_dataset`
names it in its warning.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop",
                "jazz", "metal", "pop", "reggae", "rock")

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
            files without an audio extension. Hidden entries (dot-names such as
            ``.DS_Store``, ``._x.wav``, ``.git``, and ``__MACOSX``) are not listed.
    """

    root: Path
    source: Path
    files: list[Path]
    ids: list[str]
    labels: list[str]
    kind: str
    splits: list[str] | None
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


#: Names that are never data, besides every dot-name (``.DS_Store``, ``._x.wav``, ``.git``,
#: dot-folders): macOS zip debris. A folder such as ``__noise__`` is a class like any other.
HIDDEN_NAMES = ("__MACOSX",)


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name in HIDDEN_NAMES


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


#: Why the scan passes over an entry beside the class folders, by what it is (:func:`_what`).
_OUTSIDE = {"audio": "audio file outside the class folders", "dangling": "dangling symlink",
            "other": "not in a class folder"}


def _why_not_in_class(e: Path, what: str) -> str:
    """Why the scan passes over entry ``e`` of a class folder (``what``: :func:`_what`)."""
    if what == "dir":
        return f"nested folder, {_audio_below(e)} audio file(s) not scanned"
    if what == "dangling":
        return "dangling symlink"
    return f"not an audio file ({e.suffix or 'no extension'})"


def _class_files(d: Path, ignored: list[tuple[str, str]]) -> list[Path]:
    """The audio files of class folder ``d``; what else it holds goes to ``ignored``."""
    files = []
    for e in _entries(d):
        what = _what(e)
        if what == "audio":
            files.append(e)
        elif what != "hidden":
            ignored.append((f"{d.name}/{e.name}", _why_not_in_class(e, what)))
    return files


def _check_found(root: Path, per_class: dict[Path, list[Path]],
                 ignored: list[tuple[str, str]]) -> None:
    """Audio in every class folder, or an error that says where it is instead."""
    if not any(per_class.values()):
        loose = [name for name, why in ignored if why == _OUTSIDE["audio"]]
        hint = (f" ({len(loose)} audio files lie directly in it; put each class in its own "
                "subfolder)" if loose else "")
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in class "
                         f"subfolders of {root}{hint}")
    for d, files in per_class.items():
        if not files:
            nested = [r for r, why in ignored if r.startswith(f"{d.name}/")
                      and why.startswith("nested")]
            hint = (f"; it holds subfolder(s) {', '.join(nested)}, and nested folders are "
                    "not scanned (one folder per class)" if nested else "")
            raise ValueError(f"class folder {d} contains no audio files "
                             f"({', '.join(AUDIO_EXTENSIONS)}){hint}; remove it or add its "
                             "audio")


def _scan_folder(root: Path) -> Scan:
    """A folder-per-class dataset (GTZAN's layout is one)."""
    ignored: list[tuple[str, str]] = []
    class_dirs = []
    for e in _entries(root):
        what = _what(e)
        if what == "dir":
            class_dirs.append(e)
        elif what in _OUTSIDE:
            ignored.append((e.name, _OUTSIDE[what]))
    per_class = {d: _class_files(d, ignored) for d in class_dirs}
    _check_found(root, per_class, ignored)
    files = [f for fs in per_class.values() for f in fs]
    kind = "gtzan" if {d.name for d in class_dirs} == set(GTZAN_GENRES) else "folder"
    return Scan(root, root, files, [f"{f.parent.name}/{f.name}" for f in files],
                [f.parent.name for f in files], kind, None, sorted(ignored))


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
    return _scan_folder(inner[0] if inner else p)


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
