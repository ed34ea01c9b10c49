"""results.csv, summary.md and plots from the finished (arm, seed) runs.

Differences from baseline are paired: for each seed (and fold) the arm's
score minus the baseline's, with a 95% t-interval over those differences.
The "best arm" is chosen on validation accuracy, never on test. Failed runs
(``status == "failed"``: training diverged) are in results.csv with their
status and reason, excluded from every mean, interval and plot, and listed in
summary.md.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy import stats  # noqa: E402

from .io import atomic_savefig, atomic_write_text  # noqa: E402
from .results import RunResult  # noqa: E402

COLUMNS = ["arm", "seed", "fold", "augmentations", "epochs", "selected_epoch", "val_acc",
           "val_acc_centre", "val_f1", "val_loss", "test_acc", "test_acc_centre", "test_f1",
           "test_loss", "final_val_acc", "final_test_acc", "final_train_acc", "time_s",
           "wall_s", "device", "threads", "train_clips_per_s", "params", "status", "error"]


def result_row(r: RunResult) -> dict:
    row = {"arm": r.arm, "seed": r.seed, "fold": r.fold,
           "augmentations": "+".join(r.augmentations) or "-", "epochs": len(r.history),
           "selected_epoch": r.selected_epoch, "time_s": round(r.time_s, 2),
           "wall_s": round(r.wall_s, 2), "device": r.device, "threads": r.threads,
           "train_clips_per_s": round(r.train_clips_per_s, 1), "params": r.params,
           "final_val_acc": r.final_val_acc, "final_train_acc": r.final_train_acc,
           "final_test_acc": math.nan if r.final_test_acc is None else r.final_test_acc,
           "status": r.status, "error": r.error or ""}
    if not r.ok:  # nothing of a diverged run may enter a mean
        for k in ("final_val_acc", "final_train_acc", "final_test_acc"):
            row[k] = math.nan
    for split, m in (("val", r.val), ("test", r.test)):
        for k in ("acc", "acc_centre", "f1", "loss"):
            row[f"{split}_{k}"] = math.nan if m is None else getattr(m, k)
    return row


def results_frame(results: list[RunResult], arm_order: list[str]) -> pd.DataFrame:
    df = pd.DataFrame([result_row(r) for r in results], columns=COLUMNS)
    order = {a: i for i, a in enumerate(arm_order)}
    df["_o"] = df["arm"].map(lambda a: order.get(a, len(order)))
    return df.sort_values(["_o", "seed", "fold"]).drop(columns="_o").reset_index(drop=True)


def paired_diff(df: pd.DataFrame, arm: str, metric: str, ref: str = "baseline"):
    """Mean paired difference ``arm - ref`` over shared (seed, fold), its 95% CI, and n."""
    a = df[df.arm == arm].set_index(["seed", "fold"])[metric]
    b = df[df.arm == ref].set_index(["seed", "fold"])[metric]
    d = (a - b).dropna()
    n = len(d)
    if n == 0:
        return math.nan, (math.nan, math.nan), 0
    mean = float(d.mean())
    if n < 2:
        return mean, (math.nan, math.nan), n
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return mean, (mean - half, mean + half), n


def primary_metric(df: pd.DataFrame) -> str:
    """``test_acc`` when any run has a test split, else ``val_acc``."""
    return "test_acc" if df["test_acc"].notna().any() else "val_acc"


def summary_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per arm over its ``ok`` runs: means, stds, n, failed count, Δ vs baseline."""
    metric = primary_metric(df)
    rows = []
    for arm, all_runs in df.groupby("arm", sort=False):
        g = all_runs[all_runs.status == "ok"]
        row = {"arm": arm, "n": len(g), "failed": int((all_runs.status != "ok").sum())}
        for m in ("val_acc", "test_acc", "test_f1", "val_f1", "final_train_acc"):
            row[m] = g[m].mean() if len(g) else math.nan
            row[m + "_std"] = g[m].std(ddof=1) if len(g) > 1 else math.nan
        if "baseline" in set(df.arm[df.status == "ok"]) and arm != "baseline":
            row["diff"], (row["ci_lo"], row["ci_hi"]), row["n_pairs"] = paired_diff(df, arm,
                                                                                      metric)
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean, std, pct=True):
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    s = 100 if pct else 1
    return f"{mean * s:.1f}" + ("" if math.isnan(std) else f" ± {std * s:.1f}")


def summary_markdown(df: pd.DataFrame, title: str, context: str = "") -> str:
    s = summary_frame(df)
    metric = primary_metric(df)
    has_test = metric == "test_acc"
    head = ["arm", "n", "val acc %"] + (["test acc %", "test macro-F1 %"] if has_test else
                                        ["val macro-F1 %"])
    head += ["train acc % (last epoch)", f"Δ {metric.replace('_', ' ')} vs baseline [95% CI]"]
    any_failed = bool((s.failed > 0).any())
    if any_failed:
        head.append("failed runs")
    lines = [f"# {title}", "", context, "",
             f"Mean ± std over seeds (n). Δ is paired over seeds: arm minus baseline on the "
             f"same seed{' and fold' if df['fold'].nunique() > 1 else ''}, with a 95% "
             f"t-interval. Epochs are selected on validation"
             + ("; test is reported at the selected epoch." if has_test else
                "; there is no test split, so these are validation scores."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in s.iterrows():
        cells = [r.arm, str(r.n), _pm(r.val_acc, r.val_acc_std)]
        cells += ([_pm(r.test_acc, r.test_acc_std), _pm(r.test_f1, r.test_f1_std)] if has_test
                  else [_pm(r.val_f1, r.val_f1_std)])
        cells.append(_pm(r.final_train_acc, r.final_train_acc_std))
        if "diff" in r and not (isinstance(r["diff"], float) and math.isnan(r["diff"])):
            ci = ("" if math.isnan(r.ci_lo) else
                  f" [{r.ci_lo * 100:+.1f}, {r.ci_hi * 100:+.1f}]")
            cells.append(f"{r['diff'] * 100:+.1f}{ci} (n={int(r.n_pairs)})")
        else:
            cells.append("-")
        if any_failed:
            cells.append(f"{int(r.failed)} failed" if r.failed else "-")
        lines.append("| " + " | ".join(cells) + " |")
    ranked = s.dropna(subset=["val_acc"]).sort_values("val_acc", ascending=False)
    if len(ranked):
        best = ranked.iloc[0]
        lines += ["", f"Best arm on validation: **{best.arm}** "
                  f"({best.val_acc * 100:.1f}% val acc)."]
    else:
        lines += ["", "No run finished ok."]
    failed = df[df.status != "ok"]
    if len(failed):
        lines += ["", f"Failed runs ({len(failed)}, excluded from every mean and interval; "
                  "`--retry-failed` runs them again):", ""]
        for _, r in failed.iterrows():
            fold = "" if pd.isna(r.fold) else f" fold {int(r.fold)}"
            lines.append(f"- {r.arm} seed {r.seed}{fold}: {r.error}")
    return "\n".join(lines) + "\n"


def plot_curves(results: list[RunResult], arm_order: list[str], path: Path) -> None:
    results = [r for r in results if r.ok]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    cmap = plt.get_cmap("tab20")
    for i, arm in enumerate(a for a in arm_order if any(r.arm == a for r in results)):
        runs = [r for r in results if r.arm == arm]
        n = min(len(r.history) for r in runs)
        for ax, key in zip(axes, ("val_acc", "val_loss"), strict=True):
            v = np.array([[getattr(h, key) for h in r.history[:n]] for r in runs])
            x = np.arange(1, n + 1)
            color = cmap((2 * i) % 20 + (i // 10) % 2)  # dark shades first, then light
            ax.plot(x, v.mean(0), color=color, label=arm, lw=2.2 if arm in
                    ("baseline", "all") else 1.2, ls="--" if arm == "baseline" else "-")
            if len(runs) > 1:
                ax.fill_between(x, v.min(0), v.max(0), color=color, alpha=0.10)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (multi-crop)",
                title="Validation accuracy: mean over seeds, band = min..max")
    axes[1].set(xlabel="epoch", ylabel="validation loss", title="Validation loss")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_deltas(df: pd.DataFrame, path: Path) -> None:
    s = summary_frame(df)
    if "diff" not in s:
        return
    s = s.dropna(subset=["diff"])
    if s.empty:
        return
    metric = primary_metric(df).replace("_", " ")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(s) + 1.5))
    y = np.arange(len(s))
    lo = (s["diff"] - s["ci_lo"]).fillna(0).clip(lower=0)
    hi = (s["ci_hi"] - s["diff"]).fillna(0).clip(lower=0)
    colors = ["tab:green" if d > 0 else "tab:red" for d in s["diff"]]
    ax.barh(y, s["diff"] * 100, xerr=[lo * 100, hi * 100], color=colors, alpha=0.7, capsize=3)
    ax.set_yticks(y, s["arm"])
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel=f"Δ {metric} vs baseline (points), 95% CI paired over seeds",
           title="Effect of each arm")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


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


def write_report(out: Path, results: list[RunResult], arm_order: list[str], classes: list[str],
                 title: str, context: str = "", plots: bool = True) -> pd.DataFrame:
    """Write results.csv and summary.md, and with ``plots`` the PNGs; return the frame."""
    df = results_frame(results, arm_order)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4f")
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "summary.md", summary_markdown(df, title, context))
    ok = [r for r in results if r.ok]
    if not plots or not ok:
        return df
    plot_curves(ok, arm_order, out / "curves.png")
    plot_deltas(df, out / "deltas.png")
    s = summary_frame(df).dropna(subset=["val_acc"])
    best = s.sort_values("val_acc", ascending=False).iloc[0].arm
    split = "test" if primary_metric(df) == "test_acc" else "val"
    runs = [r for r in ok if r.arm == best]
    cm = np.sum([np.array(r.primary.confusion) for r in runs], axis=0)
    fig = confusion_figure(cm, classes, f"{best}: {split} confusion, summed over "
                                        f"{len(runs)} run(s) (arm chosen on val)")
    atomic_savefig(fig, out / "confusion.png", dpi=110)
    plt.close(fig)
    return df
