"""One command at a time per results folder: an exclusive lock on ``<out>/.lock``.

Two commands writing one ``--out`` at once would both pass the settings check while
the folder is empty, then mix runs of different settings, and each would rewrite
``results.csv`` without the other's pairs. So the driver takes ``fcntl.flock`` on
``<out>/.lock`` before it reads the folder, and holds it for the whole command; the
kernel releases it when the process ends, however it ends (a SIGKILL included), so a
lock never outlives its holder. A second command fails at once with one line naming
the holder (PID, host, start time, command), which the holder writes into the file.

The file stays (it is how later commands find each other); it is emptied when its
holder lets go. A folder this command created only to lock it is removed again when
the command stops before writing anything (a bad input found after the lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
import warnings
from pathlib import Path

from .io import file_mode

LOCK_NAME = ".lock"
#: flock errors of file systems that have no locks (some network mounts): warned, not fatal.
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


class OutLock:
    """The lock of one results folder; :meth:`acquire` it, :meth:`release` it (both once).

    Example (the runner's driver does this around a whole command)::

        >>> lock = OutLock(Path("runs/x")).acquire()  # doctest: +SKIP
        >>> lock.release()  # doctest: +SKIP
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.fd: int | None = None
        self.created = False

    def _open_locked(self) -> int | None:
        """The open lock file's descriptor, locked; ``None`` when another process holds it.

        Retries when the file was replaced between ``open`` and ``flock`` (a holder that
        removed the folder it had created), so two processes never lock two files.
        """
        for _ in range(5):
            if not self.out.is_dir():
                self.out.mkdir(parents=True, exist_ok=True)
                self.created = True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as e:
                if e.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                warnings.warn(f"cannot lock --out {self.out} ({e.strerror}: a file system "
                              "without locks); make sure no other command uses it at the "
                              "same time", stacklevel=4)
                return fd
            except BaseException:
                os.close(fd)
                raise
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # locked a file that is gone: take the new one
        raise OSError(f"could not lock {self.path}: it keeps being replaced")

    def holder(self) -> str:
        """What the holder wrote into the lock file (one line), or a placeholder."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[0] if text else "a process that has not said who it is yet"

    def acquire(self, command: str | None = None) -> OutLock:
        """Lock the folder (creating it), or raise a one-line ValueError naming the holder.

        Args:
            command: What to record as the holder's command (default: ``sys.argv``).
        """
        fd = self._open_locked()
        if fd is None:
            raise ValueError(f"--out {self.out} is in use by another run ({self.holder()}); "
                             "wait for it to finish, or use another --out")
        self.fd = fd
        command = command if command is not None else " ".join(sys.argv)
        started = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime())
        line = (f"PID {os.getpid()} on host {socket.gethostname()}, started {started}: "
                f"{command[:200]}\n")
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode("utf-8", errors="replace"), 0)
        return self

    def release(self) -> None:
        """Empty the lock file and let go; remove the folder if this command created it
        and wrote nothing else into it. Never raises."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        if self.created:
            with contextlib.suppress(OSError):
                if [p.name for p in self.out.iterdir()] == [LOCK_NAME]:
                    self.path.unlink()
                    self.out.rmdir()
        with contextlib.suppress(OSError):
            os.close(fd)  # the kernel releases the flock here
