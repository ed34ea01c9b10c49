"""Atomic file writes: a run killed at any moment leaves either the old file or the new one.

Files get the permissions of an ordinary ``open()``: ``0o666`` less the process
umask (``tempfile.mkstemp`` alone would leave them ``0o600``, unreadable to
colleagues on a shared machine).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` would give a new file now."""
    with _UMASK_LOCK:  # reading the umask means setting it; keep that atomic
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


#: What a write that fails for want of room says (:func:`disk_error`), by errno.
_NO_ROOM = {errno.ENOSPC: "no space left on device",
            errno.EFBIG: "no space left for it: the file-size limit (ulimit -f) is reached",
            errno.EDQUOT: "no space left: the disk quota is exceeded"}


def no_room(e: OSError) -> bool:
    """Whether a write failed for want of room (a full disk, a size limit, a quota)."""
    return e.errno in _NO_ROOM


def disk_error(e: OSError) -> str:
    """``"no space left on device"`` and the like for a write that ran out of room, else
    the error's own text."""
    return _NO_ROOM.get(e.errno, e.strerror or str(e))


class WriteError(OSError):
    """A file that could not be written: one line naming it and why (``no space left ...``)."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it.

    Raises:
        WriteError: (an ``OSError``) naming ``path`` and why, e.g. ``no space left on
            device``; the old file, if any, is untouched and no temp file is left.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, WriteError):
            raise
        raise WriteError(e.errno, disk_error(e), str(path)) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically (PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
