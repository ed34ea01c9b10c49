"""The report on synthetic runs (no training): underfitting flags, the verdict in words,
the training-accuracy panel, the new results.csv columns."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.reporting import plots
from experiments.reporting import summary as report
from experiments.reporting.summary import (
    primary_metric,
    results_frame,
    summary_frame,
    summary_markdown,
    train_loss_drop,
    write_report,
)
from experiments.training.results import EpochLog, Metrics, RunResult

FALLING = [2.0 * 0.85 ** e for e in range(10)]  # last 3 average 39% below the 3 before
FLAT = [1.0, 0.9, 0.8, 0.75, 0.7, 0.7, 0.71, 0.69, 0.7, 0.7]  # levelled off


def _metrics(acc: float) -> Metrics:
    return Metrics(loss=1.0 - acc, acc=acc, acc_centre=acc, f1=acc, confusion=[[3, 1], [1, 3]])


def run(arm: str, seed: int, *, train_acc: float = 0.66, losses=FLAT, val: float = 0.5,
        test: float | None = 0.5, fold: int | None = None) -> RunResult:
    n = len(losses)
    history = [EpochLog(epoch=e + 1, train_loss=loss, train_acc=train_acc * (e + 1) / n,
                        lr=1e-3, clips_per_s=100.0, val_loss=1.0, val_acc=val,
                        val_acc_centre=val, val_f1=val)
               for e, loss in enumerate(losses)]
    return RunResult(arm=arm, seed=seed, fold=fold,
                     augmentations=[] if arm == "baseline" else [arm], selected_epoch=n,
                     val=_metrics(val), test=None if test is None else _metrics(test),
                     history=history, final_train_acc=train_acc, final_train_loss=losses[-1],
                     final_val_acc=val, final_val_f1=val, final_test_acc=test, time_s=1.0,
                     train_clips_per_s=100.0, params=10)


def failed(arm: str, seed: int) -> RunResult:
    r = run(arm, seed)
    r.status, r.error, r.val, r.test, r.selected_epoch = "failed", "loss not finite", None, \
        None, 0
    return r


def frame(results: list[RunResult]) -> pd.DataFrame:
    return results_frame(results, ["baseline", *sorted({r.arm for r in results} -
                                                       {"baseline"})])


def arm_row(s: pd.DataFrame, arm: str) -> pd.Series:
    return s.set_index("arm").loc[arm]


def md(results: list[RunResult]) -> str:
    return summary_markdown(frame(results), "t")


# ---------------------------------------------------------------------------
# Flags: still improving, underfit


def hist(losses) -> list[EpochLog]:
    return run("x", 0, losses=losses).history


def test_still_falling_loss_is_flagged_and_a_flat_one_is_not():
    assert train_loss_drop(hist(FALLING)) == pytest.approx(1 - 0.85 ** 3)
    assert report.still_improving(hist(FALLING))
    assert not report.still_improving(hist(FLAT))
    assert abs(train_loss_drop(hist(FLAT))) < 0.02
    # 3% lower over the last 3 epochs: under the 5% margin, noise-level, not flagged.
    assert not report.still_improving(hist([1.0] * 4 + [0.99 ** e for e in range(6)]))


def test_runs_under_six_epochs_are_never_judged():
    steep = [2.0 * 0.5 ** e for e in range(5)]
    assert math.isnan(train_loss_drop(hist(steep)))
    assert not report.still_improving(hist(steep))
    assert report.still_improving(hist([2.0 * 0.5 ** e for e in range(6)]))  # 6 is enough
    assert report.trend_window(6) == 3 and report.trend_window(40) == 5
    text = md([run("baseline", 0, losses=steep), run("gain", 0, losses=steep)])
    assert "still improving* is not judged: the runs have fewer than 6 epochs" in text
    assert "it may need more epochs" not in text


def test_underfit_is_far_below_the_baseline_train_accuracy():
    rs = [run("baseline", s, train_acc=0.66) for s in range(3)]
    rs += [run("all", s, train_acc=0.46, losses=FALLING) for s in range(3)]  # 20 points below
    rs += [run("gain", s, train_acc=0.61) for s in range(3)]  # 5 points below
    s = summary_frame(frame(rs))
    assert arm_row(s, "all").underfit and arm_row(s, "all").still_improving
    assert not arm_row(s, "gain").underfit and not arm_row(s, "gain").still_improving
    assert not arm_row(s, "baseline").underfit
    text = md(rs)
    assert "| all | 3 |" in text and "| underfit, still improving |" in text
    assert ("- all: training accuracy 46% vs baseline 66%, and its training loss was still "
            "falling (the last 3 epochs averaged 39% below the 3 before): it may need more "
            "epochs.") in text
    assert "- gain:" not in text
    assert "more than 5% below" in text and "more than 10 points below" in text


def test_underfit_with_a_levelled_off_loss_says_more_epochs_may_not_help():
    rs = [run("baseline", s, train_acc=0.9) for s in range(2)]
    rs += [run("all", s, train_acc=0.5) for s in range(2)]
    text = md(rs)
    assert "- all: training accuracy 50% vs baseline 90%, and its training loss had " \
           "levelled off" in text
    assert "| underfit |" in text


def test_under_six_epochs_an_underfit_arm_is_not_told_its_loss_levelled_off():
    """The loss trend is not judged under 6 epochs: the hint must not claim it levelled."""
    short = [1.0, 0.9]
    rs = [run("baseline", s, train_acc=0.9, losses=short) for s in range(2)]
    rs += [run("all", s, train_acc=0.5, losses=short) for s in range(2)]
    text = md(rs)
    assert "*still improving* is not judged" in text and "| underfit |" in text
    assert "levelled off" not in text
    assert "- all: training accuracy 50% vs baseline 90%" in text and "not judged)" in text


def test_a_fitted_run_is_not_still_improving():
    """At 95% training accuracy or more a falling loss is growing confidence, not learning."""
    assert report.still_improving(hist(FALLING))  # 66% train accuracy
    fitted = run("x", 0, train_acc=0.97, losses=FALLING)
    assert not report.still_improving(fitted.history)
    rs = [run("baseline", s, train_acc=0.97, losses=FALLING) for s in range(2)]
    rs += [run("gain", s, train_acc=0.92, losses=FALLING) for s in range(2)]
    s = summary_frame(frame(rs))
    assert not arm_row(s, "baseline").still_improving and arm_row(s, "gain").still_improving
    text = md(rs)
    assert "- baseline" not in text and "- gain: its training loss was still falling" in text
    assert "ended at 95% training accuracy or more, are not judged" in text


def test_a_still_improving_baseline_gets_a_hint_too():
    text = md([run("baseline", s, losses=FALLING) for s in range(2)]
              + [run("gain", s) for s in range(2)])
    assert "- baseline: its training loss was still falling" in text
    assert "- gain" not in text


# ---------------------------------------------------------------------------
# The verdict in words


BASE_TEST = [0.50, 0.56, 0.44]


def verdict_runs(with_val: bool = True) -> list[RunResult]:
    def arm(name, deltas, val):
        return [run(name, s, test=b + d if with_val else None, val=val if with_val else b + d)
                for s, (b, d) in enumerate(zip(BASE_TEST, deltas, strict=True))]
    return (arm("baseline", [0, 0, 0], 0.5) + arm("good", [0.10, 0.12, 0.11], 0.6)
            + arm("bad", [-0.10, -0.12, -0.11], 0.4) + arm("same", [0.02, -0.02, 0.01], 0.55))


def test_verdict_helps_hurts_indistinguishable():
    rs = verdict_runs()
    s = summary_frame(frame(rs))
    assert dict(zip(s.arm, s.verdict, strict=True)) == {
        "baseline": "reference", "good": "helps", "bad": "hurts", "same": "indistinguishable"}
    text = md(rs)
    assert "**Verdict** on test accuracy" in text
    assert "- **helps** (interval above zero): good +11.0 [" in text
    assert "- **hurts** (interval below zero): bad -11.0 [" in text
    assert "- **indistinguishable from the baseline at n = 3 seeds** (interval contains " \
           "zero): same +0.3 [" in text
    assert "Best arm on validation: **good** (60.0% val acc, +10.0 [" in text
    assert "points over the baseline on validation); on test it beats the baseline beyond its " \
           "interval" in text


def test_best_on_validation_that_does_not_beat_the_baseline_on_test():
    rs = [r for r in verdict_runs() if r.arm in ("baseline", "same")]
    text = md(rs)
    assert "- **helps** (interval above zero): none" in text
    assert "Best arm on validation: **same** (55.0% val acc, " in text
    assert "on validation); on test it does not beat the baseline beyond its interval" in text


def test_single_seed_has_no_interval_and_says_so():
    rs = [run("baseline", 0, test=0.5), run("gain", 0, test=0.6, val=0.7)]
    s = summary_frame(frame(rs))
    assert arm_row(s, "gain").verdict == "no interval"
    text = md(rs)
    assert "one seed, so there is no interval and no verdict" in text and "gain +10.0" in text
    assert "**helps**" not in text
    assert "on test it is +10.0 points vs the baseline on one seed, with no interval" in text


def test_without_a_baseline_no_arm_is_judged():
    rs = [run("gain", s) for s in range(2)] + [run("all", s, train_acc=0.1) for s in range(2)]
    s = summary_frame(frame(rs))
    assert set(s.verdict) == {"no baseline"} and not s.underfit.any()
    text = md(rs)
    assert "**Verdict**: there is no baseline arm, so no arm can be called helpful" in text
    assert "*underfit* is not judged: there is no baseline" in text
    assert "there is no baseline to compare it with." in text
    rs = [failed("baseline", s) for s in range(2)] + [run("gain", s) for s in range(2)]
    assert "**Verdict**: every baseline run failed" in md(rs)


def test_without_a_test_split_the_verdict_uses_validation_and_says_so():
    text = md(verdict_runs(with_val=False))
    assert "**Verdict** on validation accuracy (there is no test split" in text
    assert "- **helps** (interval above zero): good" in text
    assert "on validation it beats the baseline" in text


def test_failed_runs_in_the_verdict():
    rs = verdict_runs() + [failed("broken", s) for s in range(3)]
    rs = [r for r in rs if not (r.arm == "good" and r.seed == 2)] + [failed("good", 2)]
    s = summary_frame(frame(rs))
    assert arm_row(s, "broken").verdict == "failed"
    assert arm_row(s, "good").n_pairs == 2
    text = md(rs)
    assert "- **no verdict**, every run failed: broken" in text
    assert "Failed runs (4," in text


# ---------------------------------------------------------------------------
# The curves plot and results.csv


def test_plot_curves_has_a_training_accuracy_panel(tmp_path):
    rs = [run("baseline", s, train_acc=0.9) for s in range(2)] + [run("all", 0, train_acc=0.5)]
    fig = plots.curves_figure(rs, ["baseline", "all"])
    axes = fig.axes
    plots.save(fig, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(axes) == 3
    titles = [ax.get_title() for ax in axes]
    assert "Training accuracy" in titles
    panel = axes[titles.index("Training accuracy")]
    lines = {ln.get_label(): ln.get_ydata() for ln in panel.get_lines()}
    assert lines["baseline"][-1] == pytest.approx(0.9) and lines["all"][-1] == pytest.approx(0.5)


def test_results_csv_has_the_flag_columns(tmp_path):
    rs = [run("baseline", s, train_acc=0.7) for s in range(2)]
    rs += [run("all", 0, train_acc=0.4, losses=FALLING), run("all", 1, train_acc=0.65)]
    rs.append(failed("gain", 0))
    write_report(tmp_path, rs, ["baseline", "all", "gain"], ["a", "b"], "t", plots=False)
    df = pd.read_csv(tmp_path / "results.csv")
    for col in ("train_loss_drop", "still_improving", "train_acc_vs_baseline", "underfit"):
        assert col in df.columns
    by = df.set_index(["arm", "seed"])
    assert by.loc[("all", 0)].still_improving and not by.loc[("all", 1)].still_improving
    assert by.loc[("all", 0)].train_loss_drop == pytest.approx(0.3859, abs=1e-4)
    assert by.loc[("all", 0)].underfit and not by.loc[("all", 1)].underfit
    assert by.loc[("all", 0)].train_acc_vs_baseline == pytest.approx(-0.3)
    assert not by.loc[("baseline", 0)].underfit
    assert math.isnan(by.loc[("gain", 0)].train_loss_drop)
    assert not by.loc[("gain", 0)].still_improving
    summary = (tmp_path / "summary.md").read_text()
    assert "| flags | failed runs |" in summary


# ---------------------------------------------------------------------------
# Normalisation and the converge protocol


def conv(arm: str, seed: int, *, stop: str = "patience", val: float = 0.5, test: float = 0.5,
         normalize: str = "max") -> RunResult:
    r = run(arm, seed, val=val, test=test)
    r.protocol, r.stop, r.normalize = "converge", stop, normalize
    return r


def test_an_arm_that_hit_the_cap_is_not_converged_never_helps():
    rs = [conv("baseline", s, val=0.5, test=0.5) for s in range(3)]
    rs += [conv("gain", s, val=0.7 + 0.01 * s, test=0.7 + 0.01 * s, stop="cap" if s == 1
                else "patience") for s in range(3)]
    rs += [conv("noise", s, val=0.3 + 0.01 * s, test=0.3 + 0.01 * s) for s in range(3)]
    s = summary_frame(frame(rs))
    assert arm_row(s, "gain").verdict == "not converged"  # +20 points, but capped
    assert arm_row(s, "gain").not_converged and not arm_row(s, "noise").not_converged
    assert arm_row(s, "noise").verdict == "hurts"
    text = md(rs)
    assert "- **not converged** (no verdict: some of their runs ended at the epoch cap" in text
    assert "- **helps** (interval above zero): none" in text
    assert "| not converged |" in text
    assert "it has no verdict: it or the baseline did not converge" in text
    assert "**Protocol**: converge" in text and "1 run(s) hit the epoch cap" in text


def test_a_capped_baseline_withholds_every_verdict():
    rs = [conv("baseline", s, stop="cap" if s == 0 else "patience") for s in range(3)]
    rs += [conv("gain", s, val=0.7 + 0.01 * s, test=0.7 + 0.01 * s) for s in range(3)]
    s = summary_frame(frame(rs))
    assert arm_row(s, "gain").verdict == "not converged"
    assert "no verdict: a baseline run ended at the epoch cap" in md(rs)


def test_summary_names_the_baseline_normalisation_and_protocol():
    rs = [conv("baseline", s) for s in range(2)] + [conv("gain", s) for s in range(2)]
    text = md(rs)
    first = text.split("\n")[2]
    assert first.startswith("**Baseline**: no augmentation, normalisation `max` (decibels "
                            "relative to each example's maximum")
    assert "every run converged before the cap" in text
    fixed = md([run("baseline", s) for s in range(2)])
    assert "**Protocol**: fixed budget: every run trains 10 epochs" in fixed


def test_a_normalisation_arm_that_beats_the_baseline_on_validation_is_called_out():
    rs = [conv("baseline", s, normalize="none", val=0.5 + 0.01 * s) for s in range(3)]
    rs += [conv("norm:max", s, val=0.8 + 0.012 * s) for s in range(3)]
    rs += [conv("gain", s, normalize="none", val=0.7 + 0.01 * s) for s in range(3)]
    s = summary_frame(frame(rs))
    assert arm_row(s, "norm:max").verdict_val == "helps"
    text = md(rs)
    assert "**Normalisation beats the baseline on validation**: norm:max +30.2 [" in text
    assert "may be normalisation, not augmentation" in text and "`--normalize max`" in text
    # a normalisation arm that does not beat the baseline is not called out
    rs2 = [conv("baseline", s, val=0.5 + 0.01 * s) for s in range(3)]
    rs2 += [conv("norm:none", s, val=0.5 + 0.011 * s) for s in range(3)]
    assert "Normalisation beats" not in md(rs2)


def test_cancelled_arms_are_flagged():
    rs = [conv("baseline", s) for s in range(2)] + [conv("gain", s) for s in range(2)]
    text = report.summary_markdown(frame(rs), "t", cancelled=["gain"])
    assert "cancelled by the normalisation |" in text
    assert "undoes these arms exactly (their model input equals the baseline's, measured): " \
           "gain" in text
    assert "cancelled by the normalisation" not in md(rs)


def test_results_csv_has_normalisation_epochs_and_stop_and_no_last_epoch_test(tmp_path):
    rs = [conv("baseline", s) for s in range(2)] + [conv("gain", s, stop="cap") for s in range(2)]
    df = report.write_report(tmp_path, rs, ["baseline", "gain"], ["a", "b"], "t", plots=False)
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert {"normalize", "protocol", "epochs", "stop", "converged"} <= set(header)
    assert "final_test_acc" not in header
    assert list(df.converged) == [True, True, False, False]
    assert set(df.normalize) == {"max"} and set(df.epochs) == {10}


@pytest.mark.parametrize("seeds, label", [(1, "no interval: one seed"),
                                          (3, "95% CI paired over seeds")])
def test_deltas_plot_labels_its_bars_by_what_they_are(seeds, label):
    """One seed gives no interval: the bars must not be labelled "95% CI"."""
    rs = [run("baseline", s, test=0.5 + 0.01 * s) for s in range(seeds)]
    rs += [run("gain", s, test=0.6 + 0.03 * s) for s in range(seeds)]
    df = frame(rs)
    fig = plots.deltas_figure(summary_frame(df).dropna(subset=["diff"]), primary_metric(df))
    xlabel = fig.axes[0].get_xlabel()
    plots.close(fig)
    assert label in xlabel and ("95% CI" in xlabel) == (seeds > 1)

