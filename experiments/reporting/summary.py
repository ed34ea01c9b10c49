"""results.csv, summary.md and the plots from the finished (arm, seed) runs.

Differences from baseline are paired: for each seed (and fold) the arm's
score minus the baseline's, with a 95% t-interval over those differences.
The "best arm" is chosen on validation accuracy, never on test. Failed runs
(``status == "failed"``: training diverged) are in results.csv with their
status and reason, excluded from every mean, interval and plot, and listed in
summary.md.

summary.md says in words which arms help, hurt or cannot be told from the
baseline (:func:`verdict`), and flags arms that look undertrained:

* **still improving** (:func:`train_loss_drop`): a run's training loss is still
  falling when the mean over its last ``k`` epochs is more than
  :data:`STILL_IMPROVING_DROP` (5%) below the mean over the ``k`` epochs before,
  ``k = max(3, epochs // 8)``. Runs with fewer than :data:`MIN_TREND_EPOCHS` (6)
  epochs are never judged (two windows of 3 are the least that averages out
  epoch-to-epoch noise), nor are runs that ended at :data:`FITTED_ACC` (95%)
  training accuracy or more: their loss falls because their confidence grows,
  not because they still learn. An arm is flagged when the mean of its runs'
  drops is, and its mean final training accuracy is below :data:`FITTED_ACC`.
* **underfit**: the arm's mean final training accuracy is more than
  :data:`UNDERFIT_GAP` (10 points) below the baseline's.
* **not converged**: under the converge protocol, a run of the arm was ended by
  the cap (``max_epochs``), not by patience. Its verdict is *not converged*, never
  helps or hurts; so is every arm's when a baseline run was ended by the cap.
* **cancelled**: the run's normalisation undoes the arm exactly (measured by
  :func:`experiments.arms.cancelled_arms`): e.g. ``gain`` under ``max``.

Besides the primary metric's interval, every arm has its paired interval on
validation (``diff_val``), the data the selection uses; a ``norm:<mode>`` arm
whose validation interval lies above zero means the baseline's normalisation is
not the strongest, and the summary says that augmentation gains may be
normalisation.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..config import NORMALIZE_MODES
from ..io import atomic_write_text
from ..training.results import EpochLog, RunResult
from .plots import confusion_figure, curves_figure, deltas_figure, save

#: A run's training loss is "still falling" when the mean over its last ``k`` epochs is
#: more than this fraction below the mean over the ``k`` epochs before.
STILL_IMPROVING_DROP = 0.05
#: Runs with fewer epochs are never judged "still improving" (two windows of 3).
MIN_TREND_EPOCHS = 6
#: An arm "underfits" when its mean final training accuracy is more than this (a
#: fraction: 0.10 is 10 points) below the baseline's.
UNDERFIT_GAP = 0.10
#: A run that ends with at least this training accuracy has fitted its training set:
#: it is not flagged "still improving", however its loss still falls.
FITTED_ACC = 0.95

COLUMNS = ["arm", "seed", "fold", "augmentations", "normalize", "protocol", "epochs", "stop",
           "converged", "selected_epoch", "val_acc", "val_acc_centre", "val_f1", "val_loss",
           "test_acc", "test_acc_centre", "test_f1", "test_loss", "final_val_acc",
           "final_train_acc",
           "train_loss_drop", "still_improving", "train_acc_vs_baseline", "underfit", "time_s",
           "wall_s", "device", "threads", "train_clips_per_s", "params", "status", "error"]


def trend_window(epochs: int) -> int:
    """``k``, the epochs per window of :func:`train_loss_drop`: ``max(3, epochs // 8)``."""
    return max(3, epochs // 8)


def train_loss_drop(history: list[EpochLog]) -> float:
    """How much the training loss still fell at the end of a run, as a fraction.

    ``1 - mean(last k losses) / mean(the k before)`` with ``k = max(3, epochs // 8)``
    (3 up to 31 epochs, then about the last quarter of them split in two windows):
    0.12 means the last ``k`` epochs averaged 12% below the ``k`` before. NaN with
    fewer than :data:`MIN_TREND_EPOCHS` epochs or a non-finite loss: not judged.
    """
    loss = np.array([h.train_loss for h in history], dtype=float)
    if len(loss) < MIN_TREND_EPOCHS or not np.isfinite(loss).all():
        return math.nan
    k = trend_window(len(loss))
    last, before = loss[-k:].mean(), loss[-2 * k:-k].mean()
    if before <= 0:
        return math.nan
    return float((before - last) / before)


def _still_improving(loss_drop: float, final_train_acc: float) -> bool:
    """The rule of :func:`still_improving`, on a run's (or an arm's mean) numbers."""
    return bool(loss_drop > STILL_IMPROVING_DROP and final_train_acc < FITTED_ACC)


def still_improving(history: list[EpochLog]) -> bool:
    """The training loss was still falling: :func:`train_loss_drop` above
    :data:`STILL_IMPROVING_DROP`, and the last epoch's training accuracy below
    :data:`FITTED_ACC`. False when not judged (under 6 epochs)."""
    return _still_improving(train_loss_drop(history), history[-1].train_acc)


def result_row(r: RunResult) -> dict:
    row = {"arm": r.arm, "seed": r.seed, "fold": r.fold,
           "augmentations": "+".join(r.augmentations) or "-", "normalize": r.normalize,
           "protocol": r.protocol, "epochs": len(r.history), "stop": r.stop,
           "converged": r.converged, "selected_epoch": r.selected_epoch,
           "time_s": round(r.time_s, 2),
           "wall_s": round(r.wall_s, 2), "device": r.device, "threads": r.threads,
           "train_clips_per_s": round(r.train_clips_per_s, 1), "params": r.params,
           "final_val_acc": r.final_val_acc, "final_train_acc": r.final_train_acc,
           # judged under the fixed protocol only: a converged run's decay lowers its loss
           "train_loss_drop": (train_loss_drop(r.history) if r.protocol == "fixed"
                               else math.nan), "status": r.status,
           "error": r.error or ""}
    if not r.ok:  # nothing of a diverged run may enter a mean
        for k in ("final_val_acc", "final_train_acc", "train_loss_drop"):
            row[k] = math.nan
    row["still_improving"] = _still_improving(row["train_loss_drop"], row["final_train_acc"])
    for split, m in (("val", r.val), ("test", r.test)):
        for k in ("acc", "acc_centre", "f1", "loss"):
            row[f"{split}_{k}"] = math.nan if m is None else getattr(m, k)
    return row


def results_frame(results: list[RunResult], arm_order: list[str]) -> pd.DataFrame:
    """One row per run (:data:`COLUMNS`). ``train_acc_vs_baseline`` is the run's final
    training accuracy minus the baseline arm's mean (NaN without an ``ok`` baseline);
    ``underfit`` is that more than :data:`UNDERFIT_GAP` below zero."""
    df = pd.DataFrame([result_row(r) for r in results], columns=COLUMNS)
    base = df.final_train_acc[(df.arm == "baseline") & (df.status == "ok")].mean()
    df["train_acc_vs_baseline"] = df.final_train_acc - base
    df["underfit"] = df.train_acc_vs_baseline < -UNDERFIT_GAP
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


def verdict(diff: float, lo: float, hi: float, n: int) -> str:
    """A paired 95% interval in words: ``"helps"`` (above zero), ``"hurts"`` (below
    zero), ``"indistinguishable"`` (contains zero), ``"no interval"`` (one pair: no
    interval can be formed) or ``"no pairs"`` (no seed shared with an ``ok`` baseline)."""
    if not n or math.isnan(diff):
        return "no pairs"
    if n < 2 or math.isnan(lo) or math.isnan(hi):
        return "no interval"
    if lo > 0:
        return "helps"
    if hi < 0:
        return "hurts"
    return "indistinguishable"


def _capped(runs: pd.DataFrame) -> bool:
    """Some ``ok`` run of these was ended by the converge protocol's cap."""
    return bool(((runs.status == "ok") & (runs.stop == "cap")).any())


def summary_frame(df: pd.DataFrame, cancelled: tuple[str, ...] | list[str] = ()
                  ) -> pd.DataFrame:
    """One row per arm over its ``ok`` runs: means, stds, n, failed count, Δ vs baseline.

    Also ``verdict`` (:func:`verdict` of the primary metric's paired interval;
    ``"reference"`` for the baseline, ``"no baseline"`` without an ``ok`` baseline run,
    ``"failed"`` when every run of the arm failed), ``train_loss_drop`` (mean over the
    runs judged, ``judged`` of them), ``still_improving`` (that mean above
    :data:`STILL_IMPROVING_DROP` and the mean final training accuracy below
    :data:`FITTED_ACC`) and ``underfit`` (mean final training accuracy more
    than :data:`UNDERFIT_GAP` below the baseline's); ``epochs_mean``, ``not_converged``
    (a run ended by the cap: the verdict is then ``"not converged"``, and so is every
    arm's when the baseline has such a run), ``cancelled`` (in ``cancelled``), and the
    validation interval ``diff_val``, ``ci_lo_val``, ``ci_hi_val``, ``verdict_val``.
    """
    metric = primary_metric(df)
    has_base = "baseline" in set(df.arm[df.status == "ok"])
    base_capped = _capped(df[df.arm == "baseline"])
    rows = []
    for arm, all_runs in df.groupby("arm", sort=False):
        g = all_runs[all_runs.status == "ok"]
        row = {"arm": arm, "n": len(g), "failed": int((all_runs.status != "ok").sum())}
        for m in ("val_acc", "test_acc", "test_f1", "val_f1", "final_train_acc"):
            row[m] = g[m].mean() if len(g) else math.nan
            row[m + "_std"] = g[m].std(ddof=1) if len(g) > 1 else math.nan
        drops = g["train_loss_drop"].dropna()
        row["train_loss_drop"] = float(drops.mean()) if len(drops) else math.nan
        row["judged"] = len(drops)
        row["still_improving"] = _still_improving(row["train_loss_drop"],
                                                  row["final_train_acc"])
        row["epochs_mean"] = float(g["epochs"].mean()) if len(g) else math.nan
        row["not_converged"] = _capped(all_runs)
        row["cancelled"] = arm in cancelled
        row["verdict"] = row["verdict_val"] = "reference" if arm == "baseline" else "no baseline"
        if has_base and arm != "baseline":
            row["diff"], (row["ci_lo"], row["ci_hi"]), row["n_pairs"] = paired_diff(df, arm,
                                                                                      metric)
            row["verdict"] = (verdict(row["diff"], row["ci_lo"], row["ci_hi"], row["n_pairs"])
                              if len(g) else "failed")
            row["diff_val"], (row["ci_lo_val"], row["ci_hi_val"]), _ = paired_diff(
                df, arm, "val_acc")
            row["verdict_val"] = (verdict(row["diff_val"], row["ci_lo_val"], row["ci_hi_val"],
                                          row["n_pairs"]) if len(g) else "failed")
            if len(g) and (row["not_converged"] or base_capped):
                row["verdict"] = row["verdict_val"] = "not converged"
        rows.append(row)
    s = pd.DataFrame(rows)
    if s.empty:
        return s
    base = s.final_train_acc[s.arm == "baseline"].mean()  # NaN without a baseline
    s["underfit"] = (s.arm != "baseline") & (s.final_train_acc < base - UNDERFIT_GAP)
    return s


def _pm(mean, std, pct=True):
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    s = 100 if pct else 1
    return f"{mean * s:.1f}" + ("" if math.isnan(std) else f" ± {std * s:.1f}")


def _interval(r, suffix: str = "") -> str:
    """``+3.1 [+0.5, +5.7]`` points, or ``+3.1`` without an interval (``suffix="_val"``:
    the validation interval)."""
    lo, hi = r["ci_lo" + suffix], r["ci_hi" + suffix]
    ci = "" if math.isnan(lo) else f" [{lo * 100:+.1f}, {hi * 100:+.1f}]"
    return f"{r['diff' + suffix] * 100:+.1f}{ci}"


def _n_words(ns, folds: bool) -> str:
    ns = sorted({int(n) for n in ns})
    unit = "(seed, fold) pairs" if folds else "seeds"
    return f"n = {ns[0]} {unit}" if len(ns) == 1 else f"n = {ns[0]} to {ns[-1]} {unit}"


def _flags(r) -> str:
    words = [w for w, on in (("not converged", r.not_converged), ("underfit", r.underfit),
                             ("still improving", r.still_improving),
                             ("cancelled by the normalisation", r.cancelled)) if on]
    return ", ".join(words) or "-"


def flag_lines(df: pd.DataFrame, s: pd.DataFrame) -> list[str]:
    """The flags' legend and one hint per flagged arm (see the module's docstring)."""
    ok = df[df.status == "ok"]
    if ok.empty:
        return []
    judged = sorted({int(e) for e in ok.epochs[ok.protocol == "fixed"] if e >= MIN_TREND_EPOCHS})
    if not (ok.protocol == "fixed").any():
        trend = ("*not converged*: a run of the arm ended at the epoch cap (`max_epochs`) while "
                 "its validation accuracy was still rising; its verdict is withheld")
    elif not judged:
        trend = (f"*still improving* is not judged: the runs have fewer than "
                 f"{MIN_TREND_EPOCHS} epochs")
    else:
        ks = {trend_window(e) for e in judged}
        here = f", here {ks.pop()}" if len(ks) == 1 else ""
        trend = (f"*still improving*: the training loss averaged over the last k epochs is "
                 f"more than {STILL_IMPROVING_DROP:.0%} below its average over the k epochs "
                 f"before (k = max(3, epochs // 8){here}; mean over the arm's runs; runs with "
                 f"fewer than {MIN_TREND_EPOCHS} epochs, and arms that ended at "
                 f"{FITTED_ACC:.0%} training accuracy or more, are not judged)")
    has_base = bool((s.arm == "baseline").any()) and s.n[s.arm == "baseline"].iloc[0] > 0
    underfit = (f"*underfit*: mean final training accuracy more than {UNDERFIT_GAP * 100:.0f} "
                f"points below the baseline's" if has_base else
                "*underfit* is not judged: there is no baseline to compare with")
    lines = [f"Flags: {trend}; {underfit}. Training accuracy is measured on the augmented "
             "training batches, as the model trains."]
    base = s.final_train_acc[s.arm == "baseline"].mean()
    hints = []
    for _, r in s.iterrows():
        if not (r.still_improving or r.underfit):
            continue
        k = trend_window(int(ok.epochs[ok.arm == r.arm].max()))
        fell = (f"its training loss was still falling (the last {k} epochs averaged "
                f"{r.train_loss_drop:.0%} below the {k} before)")
        head = f"{r.arm}: training accuracy {r.final_train_acc:.0%} vs baseline {base:.0%}"
        if not r.underfit:
            hints.append(f"- {r.arm}: {fell}: it may need more epochs.")
        elif r.still_improving:
            hints.append(f"- {head}, and {fell}: it may need more epochs.")
        elif math.isnan(r.train_loss_drop):  # not judged: too few epochs, or converge
            hints.append(f"- {head}: more epochs, or a milder augmentation for this model, may "
                         "close the gap (whether its training loss still fell is not judged).")
        else:
            hints.append(f"- {head}, and its training loss had levelled off: more epochs alone "
                         "may not close the gap (the augmentation may be too strong for this "
                         "model).")
    return lines + ([""] + hints if hints else [])


def _verdict_list(df: pd.DataFrame, others: pd.DataFrame, folds: bool) -> list[str]:
    """One bullet per verdict: helps, hurts, indistinguishable, and the arms without one."""

    def named(v):
        g = others[others.verdict == v]
        return g, ", ".join(f"{r.arm} {_interval(r)}" for _, r in g.iterrows()) or "none"

    lines = [f"- **helps** (interval above zero): {named('helps')[1]}",
             f"- **hurts** (interval below zero): {named('hurts')[1]}"]
    g, text = named("indistinguishable")
    at = f" at {_n_words(g.n_pairs, folds)}" if len(g) else ""
    lines.append(f"- **indistinguishable from the baseline{at}** (interval contains zero): "
                 f"{text}")
    g, text = named("no interval")
    if len(g):
        lines.append(f"- **no interval** (one seed paired with the baseline): {text}")
    g = others[others.verdict == "not converged"]
    if len(g):
        whose = "a baseline run" if _capped(df[df.arm == "baseline"]) else "some of their runs"
        lines.append(f"- **not converged** (no verdict: {whose} ended at the epoch cap, still "
                     f"improving on validation; raise `--max-epochs`): {', '.join(g.arm)}")
    for v, why in (("failed", "every run failed"),
                   ("no pairs", "no seed in common with an ok baseline run")):
        g = others[others.verdict == v]
        if len(g):
            lines.append(f"- **no verdict**, {why}: {', '.join(g.arm)}")
    return lines


def _norm_lines(others: pd.DataFrame) -> list[str]:
    """A warning when a ``norm:<mode>`` arm beats the baseline's normalisation."""
    norms = others[others.arm.str.startswith("norm:") & (others.verdict_val == "helps")] \
        if len(others) else others
    if not len(norms):
        return []
    named = ", ".join(f"{r.arm} {_interval(r, '_val')}" for _, r in norms.iterrows())
    best = norms.sort_values("diff_val").iloc[-1].arm[len("norm:"):]
    return ["", f"**Normalisation beats the baseline on validation**: {named} points (paired "
            "95% interval above zero). The baseline's normalisation is not the strongest here, "
            "so the gains of augmentation arms may be normalisation, not augmentation: run the "
            f"ablation again with `--normalize {best}`."]


#: The end of the best arm's sentence, by its verdict (``{split}``, ``{ci}``, ``{n}``,
#: ``{diff}`` filled in).
_BEST_TAILS = {
    "not converged": "; it has no verdict: it or the baseline did not converge.",
    "reference": "; no arm beats the baseline on validation.",
    "no baseline": "; there is no baseline to compare it with.",
    "helps": "; on {split} it beats the baseline beyond its interval: {ci} points.",
    "hurts": "; on {split} it is below the baseline beyond its interval ({ci} points): its "
             "lead on validation does not carry over.",
    "indistinguishable": "; on {split} it does not beat the baseline beyond its interval "
                         "({ci} points, {n}).",
    "no interval": "; on {split} it is {diff:+.1f} points vs the baseline on one seed, with "
                   "no interval.",
}


def _best_line(s: pd.DataFrame, split: str, folds: bool) -> str:
    """The arm with the best mean validation accuracy, and whether it beats the baseline."""
    best = s.dropna(subset=["val_acc"]).sort_values("val_acc", ascending=False).iloc[0]
    head = f"Best arm on validation: **{best.arm}** ({best.val_acc * 100:.1f}% val acc"
    if best.arm != "baseline" and "diff_val" in best and not math.isnan(best.diff_val):
        head += f", {_interval(best, '_val')} points over the baseline on validation"
    tail = _BEST_TAILS.get(best.verdict, "; it shares no seed with an ok baseline run.")
    judged = "diff" in best and not math.isnan(best["diff"])
    return head + ")" + tail.format(
        split=split, ci=_interval(best) if judged else "", diff=best.get("diff", math.nan) * 100,
        n=_n_words([best.n_pairs], folds) if judged else "")


def verdict_lines(df: pd.DataFrame, s: pd.DataFrame) -> list[str]:
    """Which arms help, hurt or cannot be told from the baseline, in words; then the arm
    with the best mean validation accuracy and whether it beats the baseline."""
    metric = primary_metric(df)
    folds = df["fold"].nunique() > 1
    split = "test" if metric == "test_acc" else "validation"
    what = ("test accuracy" if metric == "test_acc" else
            "validation accuracy (there is no test split, so the verdict uses validation, "
            "the data that also selected each run's epoch: read it as optimistic)")
    others = s[s.arm != "baseline"] if len(s) else s
    one_seed = len(others) and (others.verdict.isin(["no interval", "failed", "no pairs"])).all() \
        and (others.verdict == "no interval").any()
    if "baseline" not in set(df.arm[df.status == "ok"]):
        why = ("every baseline run failed" if "baseline" in set(df.arm) else
               "there is no baseline arm")
        lines = [f"**Verdict**: {why}, so no arm can be called helpful or harmful (run the "
                 "`baseline` arm to compare against)."]
    elif others.empty:
        lines = ["**Verdict**: only the baseline ran; there is nothing to compare."]
    elif one_seed:
        diffs = ", ".join(f"{r.arm} {r['diff'] * 100:+.1f}" for _, r in others.iterrows()
                          if r.verdict == "no interval")
        lines = [f"**Verdict**: one seed, so there is no interval and no verdict: a difference "
                 f"on one seed cannot be told from seed-to-seed noise; run more seeds (e.g. "
                 f"`--seeds 0,1,2`). {split.capitalize()} accuracy vs baseline on that seed, in "
                 f"points: {diffs}."]
    else:
        lines = [f"**Verdict** on {what}, from the paired 95% interval of each arm minus the "
                 "baseline (points):", "", *_verdict_list(df, others, folds)]
    lines += _norm_lines(others)
    ranked = s.dropna(subset=["val_acc"]) if len(s) else s
    if not len(ranked):
        return lines + ["", "No run finished ok."]
    return lines + ["", _best_line(s, split, folds)]


def protocol_lines(df: pd.DataFrame) -> list[str]:
    """The baseline's normalisation and the training protocol, in words (summary.md's
    first lines)."""
    ok = df[df.status == "ok"]
    base = df[df.arm == "baseline"]
    modes = sorted(set(base.normalize)) or sorted(set(df.normalize[~df.arm.str.startswith(
        "norm:")]))
    norm = " / ".join(f"`{m}` ({NORMALIZE_MODES.get(m, m)})" for m in modes) or "-"
    lines = [f"**Baseline**: no augmentation, normalisation {norm}; every augmentation arm "
             "uses the same normalisation, in training and evaluation."]
    protocols = sorted(set(ok.protocol))
    if protocols == ["converge"]:
        capped = int((ok.stop == "cap").sum())
        lines.append(
            f"**Protocol**: converge: each run trains until its 3-epoch mean validation "
            f"accuracy stops rising (patience), then its learning rate decays linearly to 0; "
            f"epochs used {int(ok.epochs.min())}-{int(ok.epochs.max())}"
            + (f"; {capped} run(s) hit the epoch cap (*not converged*)." if capped else
               "; every run converged before the cap."))
    elif protocols == ["fixed"]:
        epochs = sorted({int(e) for e in ok.epochs})
        lines.append(f"**Protocol**: fixed budget: every run trains "
                     f"{'/'.join(map(str, epochs))} epoch{'' if epochs == [1] else 's'} "
                     "(budget parity; an arm may end while still learning).")
    elif protocols:
        lines.append(f"**Protocol**: mixed ({', '.join(protocols)}): runs from different "
                     "protocols are compared; read the differences with care.")
    return lines


def summary_markdown(df: pd.DataFrame, title: str, context: str = "",
                     cancelled: tuple[str, ...] | list[str] = ()) -> str:
    s = summary_frame(df, cancelled)
    metric = primary_metric(df)
    has_test = metric == "test_acc"
    head = ["arm", "n", "epochs", "val acc %"] + (["test acc %", "test macro-F1 %"] if has_test
                                                  else ["val macro-F1 %"])
    head += ["train acc % (last epoch)", "Δ val acc vs baseline [95% CI]"]
    if has_test:
        head.append("Δ test acc vs baseline [95% CI]")
    head.append("flags")
    any_failed = bool(len(s) and (s.failed > 0).any())
    if any_failed:
        head.append("failed runs")
    lines = [f"# {title}", "", *protocol_lines(df), "", context, "",
             f"Mean ± std over seeds (n). Δ is paired over seeds: arm minus baseline on the "
             f"same seed{' and fold' if df['fold'].nunique() > 1 else ''}, with a 95% "
             f"t-interval. Epochs are selected on validation"
             + ("; test is read once, at the selected epoch." if has_test else
                "; there is no test split, so these are validation scores."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in s.iterrows():
        cells = [r.arm, str(r.n), "-" if math.isnan(r.epochs_mean) else f"{r.epochs_mean:.0f}",
                 _pm(r.val_acc, r.val_acc_std)]
        cells += ([_pm(r.test_acc, r.test_acc_std), _pm(r.test_f1, r.test_f1_std)] if has_test
                  else [_pm(r.val_f1, r.val_f1_std)])
        cells.append(_pm(r.final_train_acc, r.final_train_acc_std))
        for suffix in ("_val", "") if has_test else ("_val",):
            key = "diff" + suffix
            if key in r and not (isinstance(r[key], float) and math.isnan(r[key])):
                cells.append(f"{_interval(r, suffix)} (n={int(r.n_pairs)})")
            else:
                cells.append("-")
        cells.append(_flags(r))
        if any_failed:
            cells.append(f"{int(r.failed)} failed" if r.failed else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if len(s) and s.cancelled.any():
        lines += ["", "*cancelled by the normalisation*: the baseline's normalisation undoes "
                  "these arms exactly (their model input equals the baseline's, measured): "
                  f"{', '.join(s.arm[s.cancelled])}; any difference is noise."]
    flags = flag_lines(df, s)
    lines += ([""] + flags if flags else []) + [""] + verdict_lines(df, s)
    failed = df[df.status != "ok"]
    if len(failed):
        lines += ["", f"Failed runs ({len(failed)}, excluded from every mean and interval; "
                  "`--retry-failed` runs them again):", ""]
        for _, r in failed.iterrows():
            fold = "" if pd.isna(r.fold) else f" fold {int(r.fold)}"
            lines.append(f"- {r.arm} seed {r.seed}{fold}: {r.error}")
    return "\n".join(lines) + "\n"


def write_report(out: Path, results: list[RunResult], arm_order: list[str], classes: list[str],
                 title: str, context: str = "", plots: bool = True,
                 cancelled: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Write results.csv and summary.md, and with ``plots`` the PNGs; return the frame.

    ``cancelled``: arms the normalisation undoes (:func:`experiments.arms.cancelled_arms`).
    """
    df = results_frame(results, arm_order)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4f")
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "summary.md", summary_markdown(df, title, context, cancelled))
    ok = [r for r in results if r.ok]
    if not plots or not ok:
        return df
    s = summary_frame(df)
    save(curves_figure(ok, arm_order), out / "curves.png")
    if "diff" in s and s["diff"].notna().any():
        save(deltas_figure(s.dropna(subset=["diff"]), primary_metric(df)), out / "deltas.png")
    best = s.dropna(subset=["val_acc"]).sort_values("val_acc", ascending=False).iloc[0].arm
    split = "test" if primary_metric(df) == "test_acc" else "val"
    runs = [r for r in ok if r.arm == best]
    cm = np.sum([np.array(r.primary.confusion) for r in runs], axis=0)
    save(confusion_figure(cm, classes, f"{best}: {split} confusion, summed over {len(runs)} "
                                       "run(s) (arm chosen on val)"), out / "confusion.png")
    return df
