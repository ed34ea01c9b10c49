"""The ablation protocol: normalised baselines, training to convergence, test read once."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from test_ablate import tiny_args

import augkit as ak
from experiments import ablate
from experiments import config as C
from experiments.arms import (
    arm_augmentations,
    arm_normalize,
    build_arm,
    cancelled_arms,
    expand_arms,
    unnormalized_features,
)
from experiments.config import NORMALIZE_MODES
from experiments.data.audioset import AudioSet
from experiments.training import optim as O
from experiments.training import trainer as T
from experiments.training.trainer import Recipe

# ---------------------------------------------------------------------------
# The converge protocol's schedule and stopping rule


def drive(conv: O.Convergence, accs: list[float]) -> int:
    """Feed validation accuracies until the protocol stops; the epochs trained."""
    epoch = 0
    for acc in accs:
        epoch += 1
        if not conv.update(epoch, acc):
            return epoch
    raise AssertionError("did not stop")


def test_patience_starts_the_decay_and_the_run_ends_fully_decayed():
    conv = O.Convergence(steps_per_epoch=10, warmup_epochs=1, max_epochs=60, patience=3,
                         n_val=20)
    accs = [0.3, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7] + [0.7] * 20
    epochs = drive(conv, accs)
    # the 3-epoch mean last rose by >= 1/20 at epoch 5 (0.667); 3 epochs without: epoch 8
    assert conv.reason == "patience" and conv.decay_from == 8
    assert epochs == 8 + O.decay_epochs(8) == 11
    assert conv.factor(0) == pytest.approx(0.1) and conv.factor(9) == 1.0  # warmup
    assert conv.factor(79) == 1.0  # the last step before the decay
    assert conv.factor(80) == pytest.approx(1 - 1 / 30)
    assert conv.factor(epochs * 10 - 1) == 0.0  # the run's last step: fully decayed


def test_a_rise_smaller_than_one_validation_clip_does_not_count():
    conv = O.Convergence(10, 0, 60, patience=2, n_val=10)  # one clip = 0.1
    drive(conv, [0.5, 0.5, 0.5, 0.55, 0.6, 0.62, 0.62, 0.62] + [0.6] * 20)
    assert conv.reason == "patience" and conv.decay_from == 5


def test_the_cap_ends_a_run_still_improving_and_says_so():
    conv = O.Convergence(10, 1, max_epochs=20, patience=3, n_val=100)
    epochs = drive(conv, [0.1 + 0.04 * e for e in range(40)])  # always rising
    assert conv.reason == "cap"
    assert epochs <= 20 and epochs == conv.decay_from + O.decay_epochs(conv.decay_from)
    assert conv.decay_from == O.last_start(20) == 16  # 16 + max(3, ceil(3.2)) = 20


@pytest.mark.parametrize("cap", [5, 7, 12, 30, 61, 100])
def test_the_cap_bounds_every_run(cap):
    start = O.last_start(cap)
    assert start + O.decay_epochs(start) <= cap < start + 1 + O.decay_epochs(start + 1)


# ---------------------------------------------------------------------------
# A run: fitted statistics, test read once, epochs recorded


def tiny_set(n_per_split: int = 6, sr: int = 8000) -> tuple[AudioSet, dict[str, torch.Tensor]]:
    """Two classes, 1-s clips; validation and test clips are 100x louder than training's
    and have a 1 kHz tone the training clips lack."""
    g = torch.Generator().manual_seed(0)
    n = 3 * n_per_split
    t = torch.arange(sr) / sr
    clips = 0.01 * torch.randn(n, sr, generator=g)
    clips[n_per_split:] = 0.5 * torch.sin(2 * torch.pi * 1000 * t) + clips[n_per_split:] * 30
    samples = (clips.clamp(-1, 0.999) * 32767).to(torch.int16).flatten()
    labels = torch.arange(n) % 2
    ds = AudioSet(samples, torch.arange(n) * sr, torch.full((n,), sr), labels,
                  [f"{i % 2}/{i}.wav" for i in range(n)], ["0", "1"], sr, [])
    idx = torch.arange(n)
    return ds, {"train": idx[:n_per_split], "val": idx[n_per_split:2 * n_per_split],
                "test": idx[2 * n_per_split:]}


def tiny_cfg(**over) -> C.Config:
    return C.resolve("quick", overrides={
        "sample_rate": 8000, "crop_seconds": 0.5, "n_fft": 256, "hop_length": 128, "n_mels": 32,
        "batch_size": 4, "eval_batch_size": 8, "swanlab_mode": "disabled", **over})


def chain_for(cfg: C.Config, arm: str) -> ak.Compose:
    return build_arm(arm, cfg.frontend, cfg.ablation, 2).chain


def test_frequency_statistics_are_fitted_on_the_training_split_only():
    ds, splits = tiny_set()
    cfg = tiny_cfg(normalize="freq")
    chain = chain_for(cfg, "baseline")
    stats = T.fit_normalizer(chain, ds, splits["train"], 4000, 8)
    # the reference: the same features of the training clips alone, by hand
    rows, pos = T.eval_positions(ds.lengths[splits["train"]], 4000)
    ref = ak.FrequencyStandardize(cfg.frontend.n_mels)
    feats = unnormalized_features(chain, ds.crop(splits["train"][rows], 4000, pos))
    ref.fit(feats)
    torch.testing.assert_close(torch.tensor(stats["mean"]), ref.mean.float().cpu(),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.tensor(stats["std"]), ref.std.float().cpu(),
                               rtol=1e-4, atol=1e-4)
    # what validation/test would have done to them: the louder, tonal clips move the means
    both = ak.FrequencyStandardize(cfg.frontend.n_mels).fit(unnormalized_features(
        chain, ds.crop(torch.arange(len(ds)), 4000, torch.full((len(ds),), 0.5))))
    assert (both.mean - ref.mean).abs().max() > 0.5
    assert stats["frames"] == int(ref.count)


def test_a_run_reads_test_once_at_the_selected_epoch_and_records_its_protocol(monkeypatch):
    ds, splits = tiny_set()
    cfg = tiny_cfg(normalize="freq", max_epochs=6, patience=1)
    calls: list[int] = []
    real = T.evaluate

    def counting(model, chain, data, idx, *a, **k):
        calls.append(int(idx[0]))
        return real(model, chain, data, idx, *a, **k)

    monkeypatch.setattr(T, "evaluate", counting)
    r = T.train_run(build_arm("baseline", cfg.frontend, cfg.ablation, 2), Recipe.of(cfg), 0,
                    None, ds, splits)
    test_first = int(splits["test"][0])
    assert calls.count(test_first) == 1 and calls[-1] == test_first  # once, after training
    assert r.final_test_acc is None and r.test is not None
    assert r.protocol == "converge" and r.normalize == "freq" and r.stop in ("patience", "cap")
    assert len(r.history) <= 6 and r.history[-1].lr < 0.25 * cfg.optim.lr
    assert len(r.extra["norm_stats"]["mean"]) == cfg.frontend.n_mels
    assert r.extra["decay_from"] == len(r.history) - O.decay_epochs(r.extra["decay_from"])


def test_a_norm_arm_trains_with_its_own_normalisation():
    assert arm_normalize("norm:lufs", "max") == "lufs" and arm_normalize("gain", "max") == "max"
    assert arm_augmentations("norm:standardize", ["gain"]) == []
    assert expand_arms(["baseline", "norms"], ["gain"]) == [
        "baseline", *(f"norm:{m}" for m in NORMALIZE_MODES)]
    with pytest.raises(ValueError, match="normalisation 'loud' is not one of"):
        expand_arms(["norm:loud"], ["gain"])
    cfg = tiny_cfg(normalize="max")
    assert isinstance(chain_for(cfg, "baseline")["normalize"], ak.MaxNormalize)
    lufs = chain_for(cfg, "norm:lufs")
    assert lufs.names[0] == "normalize" and isinstance(lufs["normalize"], ak.LoudnessNormalize)
    assert "normalize" not in chain_for(cfg, "norm:none").names
    chain = chain_for(cfg, "gain")
    assert chain.names.index("normalize") == chain.names.index("scale") + 1


def test_the_normalisers_run_in_evaluation_too():
    cfg = tiny_cfg(normalize="max")
    chain = chain_for(cfg, "baseline").eval()
    x = chain(0.1 * torch.randn(3, 1, 4000))
    assert torch.allclose(x.amax(dim=(1, 2, 3)), torch.zeros(3), atol=1e-6)


def test_cancelled_arms_are_measured():
    def cancelled(normalize: str) -> list[str]:
        cfg = tiny_cfg(normalize=normalize)
        arms = [build_arm(a, cfg.frontend, cfg.ablation, 2)
                for a in ("baseline", "gain", "colored_noise", "time_mask", "norm:none")]
        return cancelled_arms(arms, cfg.frontend, cfg.ablation, cfg.data.crop_seconds)

    assert cancelled("max") == ["gain"]
    assert cancelled("standardize") == ["gain"]
    assert cancelled("none") == []
    # LUFS goes first in the chain, so a gain after it is not undone
    assert cancelled("lufs") == []


# ---------------------------------------------------------------------------
# The command line and the config


def test_epochs_means_a_fixed_budget_and_max_epochs_a_cap(capsys):
    _, ov = ablate.parse_args(["--epochs", "5"])
    assert ov["protocol"] == "fixed"
    _, ov = ablate.parse_args(["--max-epochs", "30", "--patience", "4"])
    assert ov["protocol"] == "converge" and ov["patience"] == 4
    with pytest.raises(SystemExit):
        ablate.parse_args(["--epochs", "5", "--max-epochs", "30"])
    assert "do not combine" in capsys.readouterr().err
    assert C.resolve("quick").optim.protocol == "converge"
    assert C.resolve("tutorial").optim.protocol == "fixed"


@pytest.mark.parametrize("bad, match", [
    ({"normalize": "loud"}, "normalize must be one of none, max"),
    ({"protocol": "forever"}, "protocol must be one of converge, fixed"),
    ({"patience": 0}, "patience must be an integer >= 1"),
    ({"max_epochs": 3}, "max_epochs=3 leaves no room"),
    ({"target_lufs": 5.0}, "target_lufs must be in"),
    ({"normalize": "max", "scale": "clamp"}, "works on decibel features"),
])
def test_bad_protocol_settings_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_cfg(**bad)


def test_identity_leaves_out_what_the_protocol_does_not_use():
    conv = C.identity(tiny_cfg())["optim"]
    assert "epochs" not in conv and "schedule" not in conv and conv["max_epochs"] == 36
    assert C.identity(tiny_cfg(epochs=99))["optim"] == conv  # --epochs is unused: converge
    fixed = C.identity(tiny_cfg(protocol="fixed"))["optim"]
    assert "max_epochs" not in fixed and "patience" not in fixed and "epochs" in fixed
    assert fixed["protocol"] == "fixed"
    assert C.identity(tiny_cfg(normalize="max"))["frontend"]["normalize"] == "max"


def test_end_to_end_converge_with_normalisation_arms(tmp_path):
    args = [a for a in tiny_args(tmp_path, "--arms", "baseline,gain,norm:none", "--seeds",
                                 "0,1", "--normalize", "max")]
    i = args.index("--epochs")
    args[i:i + 2] = ["--max-epochs", "6", "--patience", "1"]
    assert ablate.main(args) == 0
    out = tmp_path / "out"
    df = pd.read_csv(out / "results.csv")
    assert set(df.protocol) == {"converge"} and set(df.stop) <= {"patience", "cap"}
    assert (df.epochs <= 6).all()
    assert dict(zip(df.arm, df.normalize, strict=False)) == {
        "baseline": "max", "gain": "max", "norm:none": "none"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["normalize"] == "max" and cfg["protocol"] == "converge"
    assert cfg["cancelled_by_normalization"] == ["gain"]
    summary = (out / "summary.md").read_text()
    assert summary.split("\n")[2].startswith("**Baseline**: no augmentation, normalisation "
                                             "`max`")
    assert "**Protocol**: converge" in summary
    assert "cancelled by the normalisation" in summary
