"""SwanLab logging: one experiment per (arm, seed) in one project; off with mode disabled.

``swanlab`` is imported only where a mode logs: it is an optional dependency (the
runner works without it, with ``--swanlab-mode disabled``).
"""

from __future__ import annotations

import contextlib
import io
import netrc
import os
import signal
import threading
from pathlib import Path

import numpy as np

from .plots import close, confusion_figure, examples_figure

MODES = {"cloud": "online", "online": "online", "local": "local", "offline": "offline",
         "disabled": "disabled"}


def swanlab_logged_in() -> bool:
    """Whether ``swanlab`` finds an API key (``swanlab login``, ``SWANLAB_API_KEY``)."""
    if os.environ.get("SWANLAB_API_KEY", "").strip():
        return True
    try:
        from swanlab.sdk.internal.settings import Settings

        return bool(Settings().api_key)
    except Exception:  # another swanlab version: look for the files login writes
        homes = [Path.cwd() / ".swanlab",
                 Path(os.environ.get("SWANLAB_ROOT") or os.environ.get("SWANLAB_SAVE_DIR")
                      or Path.home() / ".swanlab")]
        for home in homes:
            try:
                if netrc.netrc(home / ".netrc").hosts:
                    return True
            except (OSError, netrc.NetrcParseError):
                pass
        return False


def check_mode(mode: str) -> None:
    """Raise ValueError now (before any work) if ``mode`` cannot log."""
    if MODES.get(mode) == "disabled":
        return
    try:
        import swanlab  # noqa: F401
    except ImportError:
        raise ValueError(f"--swanlab-mode {mode} needs the swanlab package (pip install "
                         "swanlab), or use --swanlab-mode disabled") from None
    if MODES.get(mode) == "online" and not swanlab_logged_in():
        raise ValueError(f"--swanlab-mode {mode} logs online and needs an account: run "
                         "`swanlab login` (or set SWANLAB_API_KEY) first, or use "
                         "--swanlab-mode local (no account needed)")


class Tracker:
    """A thin wrapper so the runner never depends on SwanLab being reachable."""

    def __init__(self, mode: str, project: str, log_dir: Path, name: str, group: str,
                 tags: list[str], config: dict) -> None:
        self.mode = MODES[mode]
        self.run = None
        if self.mode == "disabled":
            return
        import swanlab

        self.swanlab = swanlab
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main else None
        with contextlib.redirect_stdout(io.StringIO()):
            self.run = swanlab.init(project=project, name=name, group=group, tags=tags,
                                    config=config, mode=self.mode, log_dir=str(log_dir),
                                    reinit=True)
        if main and previous is not None:
            # swanlab installs its own SIGINT handler, which swallows the KeyboardInterrupt
            # in some states; keep Ctrl-C a KeyboardInterrupt (the runner handles it and
            # calls abort()).
            signal.signal(signal.SIGINT, previous)

    def log(self, metrics: dict, step: int) -> None:
        if self.run is not None:
            scalars = {k.replace("_", "/", 1) if k.startswith(("train_", "val_")) else k: v
                       for k, v in metrics.items() if isinstance(v, (int, float))}
            self.swanlab.log(scalars, step=step)

    def log_examples(self, waves, clean, augmented, units: str, sample_rate: int,
                     step: int = 0) -> None:
        """A few examples: each one's model input without and with augmentation, side by
        side on one colour scale named ``units`` (:func:`experiments.arms.features_for_display`),
        and its crop as audio.

        ``waves`` ``(B, 1, T)``; ``clean`` and ``augmented`` ``(B, 1, F, frames)``.
        """
        if self.run is None:
            return
        sl = self.swanlab
        pairs = (np.nan_to_num(f.detach().float().cpu().numpy()) for f in (clean, augmented))
        clean, augmented = pairs
        images = []
        for i in range(clean.shape[0]):
            fig = examples_figure(clean[i, 0], augmented[i, 0], units, f"example {i}")
            images.append(sl.Image(fig, caption=f"example {i}: clean | augmented"))
            close(fig)
        audio = [sl.Audio(w[0].detach().float().cpu().numpy().clip(-1, 1), sample_rate=sample_rate,
                          caption=f"example {i}") for i, w in enumerate(waves)]
        sl.log({"examples/spectrogram": images, "examples/audio": audio}, step=step)

    def log_figure(self, key: str, fig, step: int) -> None:
        if self.run is not None:
            self.swanlab.log({key: self.swanlab.Image(fig)}, step=step)

    def log_confusion(self, key: str, confusion: list[list[int]], classes: list[str], title: str,
                      step: int) -> None:
        if self.run is None:
            return
        fig = confusion_figure(confusion, classes, title)
        self.log_figure(key, fig, step)
        close(fig)

    def abort(self, reason: str) -> None:
        """End the run as ``aborted`` (Ctrl-C, an error), quietly; never raises."""
        if self.run is not None:
            with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
                self.swanlab.finish(state="aborted", error=reason)
            self.run = None

    def finish(self) -> None:
        if self.run is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                self.swanlab.finish()
            self.run = None
