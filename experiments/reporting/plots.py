"""The report's pictures: learning curves, each arm's effect, a confusion matrix.

Written beside ``summary.md`` by :func:`experiments.reporting.summary.write_report`;
:func:`confusion_figure` is also what SwanLab gets for each run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..io import atomic_savefig  # noqa: E402
from ..training.results import RunResult  # noqa: E402


def save(fig, path: Path) -> None:
    """Write ``fig`` as a PNG (atomically) and close it."""
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def close(fig) -> None:
    plt.close(fig)


def curves_figure(results: list[RunResult], arm_order: list[str]):
    """Validation accuracy, training accuracy and validation loss per epoch: one line per
    arm (mean over its ``ok`` runs still training at that epoch: converged runs end at
    different epochs), a min..max band over seeds."""
    results = [r for r in results if r.ok]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    axes[1].sharey(axes[0])  # the train-val gap reads straight across
    cmap = plt.get_cmap("tab20")
    for i, arm in enumerate(a for a in arm_order if any(r.arm == a for r in results)):
        runs = [r for r in results if r.arm == arm]
        n = max(len(r.history) for r in runs)  # runs of the converge protocol differ in length
        for ax, key in zip(axes, ("val_acc", "train_acc", "val_loss"), strict=True):
            v = np.full((len(runs), n), np.nan)
            for k, r in enumerate(runs):
                v[k, :len(r.history)] = [getattr(h, key) for h in r.history]
            x = np.arange(1, n + 1)
            color = cmap((2 * i) % 20 + (i // 10) % 2)  # dark shades first, then light
            # the mean over the runs still training at each epoch
            ax.plot(x, np.nanmean(v, 0), color=color, label=arm, lw=2.2 if arm in
                    ("baseline", "all") else 1.2, ls="--" if arm == "baseline" else "-")
            if len(runs) > 1:
                ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=color, alpha=0.10)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (multi-crop)",
                title="Validation accuracy: mean over seeds, band = min..max")
    axes[1].set(xlabel="epoch", ylabel="training accuracy (augmented batches)",
                title="Training accuracy")
    axes[2].set(xlabel="epoch", ylabel="validation loss", title="Validation loss")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def deltas_figure(s: pd.DataFrame, metric: str):
    """Each arm's mean paired difference from the baseline, with its 95% interval.

    ``s``: the summary frame's rows that have a difference
    (:func:`experiments.reporting.summary.summary_frame`); ``metric``: the primary
    metric's column. An arm with one seed has no interval: it gets no error bar, and the
    label says so.
    """
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(s) + 1.5))
    y = np.arange(len(s))
    lo = (s["diff"] - s["ci_lo"]).fillna(0).clip(lower=0)
    hi = (s["ci_hi"] - s["diff"]).fillna(0).clip(lower=0)
    colors = ["tab:green" if d > 0 else "tab:red" for d in s["diff"]]
    ax.barh(y, s["diff"] * 100, xerr=[lo * 100, hi * 100], color=colors, alpha=0.7, capsize=3)
    ax.set_yticks(y, s["arm"])
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    with_ci = int(s["ci_lo"].notna().sum())
    bars = ("95% CI paired over seeds" if with_ci == len(s) else
            "no interval: one seed" if with_ci == 0 else
            "95% CI paired over seeds; arms without a bar have one seed")
    ax.set(xlabel=f"Δ {metric.replace('_', ' ')} vs baseline (points), {bars}",
           title="Effect of each arm")
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, classes: list[str], title: str):
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def examples_figure(clean: np.ndarray, augmented: np.ndarray, units: str, title: str):
    """One example's model input without and with augmentation, side by side.

    ``clean`` and ``augmented`` are feature maps ``(F, T)`` in ``units`` (e.g. dB, from
    :func:`experiments.arms.features_for_display`): low frequencies at the bottom, one
    perceptual colour scale over both panels, and a colour bar that names the units.
    """
    both = np.concatenate([clean.ravel(), augmented.ravel()])
    both = both[np.isfinite(both)]
    vmin, vmax = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), dpi=100, sharey=True)
    for ax, feature, name in zip(axes, (clean, augmented), ("clean", "augmented"), strict=True):
        im = ax.imshow(np.nan_to_num(feature), origin="lower", aspect="auto", cmap="magma",
                       interpolation="nearest", vmin=vmin, vmax=vmax)
        ax.set(xlabel="frame", title=f"{title}: {name}")
    axes[0].set_ylabel("mel bin")
    fig.colorbar(im, ax=axes, fraction=0.046, pad=0.02).set_label(units)
    return fig
