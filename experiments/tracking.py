"""SwanLab logging: one experiment per (arm, seed) in one project; off with mode disabled."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

MODES = {"cloud": "online", "online": "online", "local": "local", "offline": "offline",
         "disabled": "disabled"}


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
        with contextlib.redirect_stdout(io.StringIO()):
            self.run = swanlab.init(project=project, name=name, group=group, tags=tags,
                                    config=config, mode=self.mode, log_dir=str(log_dir),
                                    reinit=True)

    def log(self, metrics: dict, step: int) -> None:
        if self.run is not None:
            scalars = {k.replace("_", "/", 1) if k.startswith(("train_", "val_")) else k: v
                       for k, v in metrics.items() if isinstance(v, (int, float))}
            self.swanlab.log(scalars, step=step)

    def log_examples(self, waves, features, sample_rate: int, step: int = 0) -> None:
        """A few augmented spectrograms (images) and waveforms (audio)."""
        if self.run is None:
            return
        sl = self.swanlab
        feats = features.detach().float().cpu().numpy()
        images = []
        for i in range(feats.shape[0]):
            f = feats[i, 0]
            f = (f - f.min()) / max(float(f.max() - f.min()), 1e-8)
            images.append(sl.Image(np.flipud(f).copy(), caption=f"example {i}"))
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
        import matplotlib.pyplot as plt

        from .report import confusion_figure

        fig = confusion_figure(confusion, classes, title)
        self.log_figure(key, fig, step)
        plt.close(fig)

    def finish(self) -> None:
        if self.run is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                self.swanlab.finish()
            self.run = None
