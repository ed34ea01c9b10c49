"""The ablation runner: end to end on tiny generated data, resume after SIGKILL, stats."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments import ablate
from experiments import config as C
from experiments.arms import Pipeline, arm_augmentations, expand_arms
from experiments.report import paired_diff
from experiments.train import DeviceData, crop_batch, eval_crops

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}


def tiny_args(tmp_path, *extra):
    return ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--sample-rate", "8000", "--crop-seconds", "1.0", "--epochs", "2",
            "--swanlab-mode", "disabled", "--no-progress", "--set", "n_fft=256",
            "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=8",
            "--set", f"synthetic={json.dumps(TINY)}", *extra]


def test_end_to_end_ablation(tmp_path, capsys):
    rc = ablate.main(tiny_args(tmp_path, "--arms", "baseline,time_mask,all-minus-noise",
                               "--seeds", "0,1"))
    assert rc == 0
    out = tmp_path / "out"
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 6 and set(df.arm) == {"baseline", "time_mask", "all-minus-noise"}
    assert df.test_acc.between(0, 1).all() and df.val_acc.between(0, 1).all()
    assert (df.selected_epoch >= 1).all() and (df.selected_epoch <= 2).all()
    assert set(df.augmentations) == {"-", "time_mask", "time_mask+freq_mask+gain"}
    summary = (out / "summary.md").read_text()
    assert "| time_mask | 2 |" in summary and "(n=2)" in summary
    for png in ("curves.png", "deltas.png", "confusion.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["epochs"] == 2 and cfg["versions"]["torch"] == torch.__version__
    assert cfg["dataset"]["classes"] == sorted(cfg["dataset"]["classes"])
    run = json.loads((out / "runs" / "time_mask" / "seed1.json").read_text())
    assert len(run["history"]) == 2 and "test" in run and run["seed"] == 1
    printed = capsys.readouterr().out
    assert "Best arm on validation" in printed
    # The same command again skips everything.
    assert ablate.main(tiny_args(tmp_path, "--arms", "baseline,time_mask,all-minus-noise",
                                 "--seeds", "0,1")) == 0
    assert "6 done, 0 to run" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["offline", "local"])
def test_swanlab_logs_each_run_with_media(tmp_path, monkeypatch, mode):
    """The tracker's real code path (other tests disable it): one run per (arm, seed)."""
    monkeypatch.setenv("SWANLAB_LOG_DIR", str(tmp_path / "out" / "swanlog"))  # local sets it
    args = [a for a in tiny_args(tmp_path, "--arms", "baseline,gain", "--seeds", "0")
            if a != "disabled"]
    args[args.index("--swanlab-mode") + 1:args.index("--swanlab-mode") + 1] = [mode]
    assert ablate.main(args) == 0
    swanlog = tmp_path / "out" / "swanlog"
    runs = sorted(swanlog.glob("run-*"))
    assert len(runs) == 2
    for run in runs:
        assert len(list(run.glob("media/**/*.png"))) >= 5  # 4 examples + the confusion matrix
        assert list(run.glob("media/**/*.wav"))
        assert list(run.glob("*.swanlab"))
    if mode == "local":
        # What `swanlab watch` serves: swanboard's database with both experiments.
        import sqlite3

        with sqlite3.connect(swanlog / "runs.swanlab") as db:
            names = {n for (n,) in db.execute("select name from experiment")}
        assert names == {"baseline-seed0", "gain-seed0"}


def test_resume_after_sigkill(tmp_path):
    args = tiny_args(tmp_path, "--arms", "baseline,gain", "--seeds", "0,1,2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = tmp_path / "out" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(runs.glob("*/*.json"))) < 2:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(runs.glob("*/*.json"))
    assert 2 <= len(done) < 6, "the run should have been killed part-way"
    for f in done:  # every file that exists is complete JSON
        json.loads(f.read_text())
    mtimes = {f: f.stat().st_mtime_ns for f in done}
    res = subprocess.run([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(done)} done, {6 - len(done)} to run" in res.stdout
    assert all(f.stat().st_mtime_ns == m for f, m in mtimes.items())  # not redone
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 6


def test_changed_settings_are_refused(tmp_path):
    assert ablate.main(tiny_args(tmp_path, "--arms", "baseline", "--seeds", "0")) == 0
    with pytest.raises(SystemExit, match="differs in: epochs"):
        ablate.main(tiny_args(tmp_path, "--arms", "baseline", "--seeds", "0", "--epochs", "3"))


@pytest.mark.parametrize("argv, message", [
    (["--arms", "baseline,tim_mask"], "unknown arm 'tim_mask'"),
    (["--set", "lrr=0.1"], "did you mean lr"),
    (["--set", "epochs=-1"], "epochs must be > 0"),
    (["--seeds", "a,b"], "--seeds must be a comma list"),
    (["--data", "/no/such/folder"], "/no/such/folder"),
    (["--set", "augment.noise_domain=air"], "augment.noise_domain"),
    (["--set", "augment.mask_value=loud"], "augment.mask_value"),
])
def test_bad_input_gets_a_clear_error(argv, message, tmp_path, capsys):
    rc = ablate.main(["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                      "--no-progress", "--swanlab-mode", "disabled", *argv])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_arms_expand_and_validate():
    augs = ["time_mask", "freq_mask", "noise", "gain"]
    arms = expand_arms(["default"], augs)
    assert arms == ["baseline", *augs, "all", *[f"all-minus-{a}" for a in augs]]
    assert arm_augmentations("all-minus-noise", augs) == ["time_mask", "freq_mask", "gain"]
    assert arm_augmentations("noise+mixup", augs) == ["noise", "mixup"]
    with pytest.raises(ValueError, match="not in augmentations"):
        arm_augmentations("all-minus-mixup", augs)
    with pytest.raises(ValueError, match="unknown augmentation"):
        expand_arms(["baseline"], ["time_mask", "reverb"])


def test_presets_resolve_and_tutorial_recipe():
    for preset in C.PRESETS:
        C.resolve(preset)
    cfg = C.resolve("tutorial")
    assert (cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.backbone, cfg.lr, cfg.batch_size,
            cfg.epochs, cfg.optimizer, cfg.scale, cfg.tutorial_input) == (
        2048, 640, 128, "resnet18", 1e-4, 16, 20, "adam", "clamp", True)
    pipe = Pipeline(cfg, cfg.augmentations)
    assert [type(m).__name__ for m in pipe.spec.steps.values()] == [
        "TimeMasking", "FrequencyMasking", "GaussianNoise", "Gain"]
    assert pipe.spec["noise"].std == (0.01, 0.01) and pipe.spec["gain"].factor == (0.8, 1.2)
    assert len(pipe.wave.steps) == 0
    cfg = C.resolve("quick", overrides={"augment.gain_db": "[-3, 3]", "seeds": "4,5"})
    assert cfg.augment.gain_db == (-3.0, 3.0) and cfg.seeds == [4, 5]


def test_masks_on_db_features_fill_each_example_mean():
    cfg = C.resolve("quick")
    pipe, clean = Pipeline(cfg, ["time_mask", "noise"]), Pipeline(cfg, [])
    assert list(pipe.feature.steps) == ["time_mask"] and list(pipe.spec.steps) == []
    assert list(pipe.wave.steps) == ["noise"]
    pipe.wave.disable("noise")
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(4, 1, 8000) * torch.tensor([0.01, 0.1, 0.5, 1.0]).view(4, 1, 1)
    x, ref = pipe.features(wave, g), clean.features(wave)
    p = pipe.feature.last_params["time_mask"]
    frames = torch.arange(x.shape[-1])
    for i in range(4):
        hit = ((frames >= p["start"][i, :, None]) &
               (frames < (p["start"] + p["width"])[i, :, None])).any(0)
        assert hit.any()
        torch.testing.assert_close(x[i, ..., hit], ref[i].mean().expand_as(x[i, ..., hit]))
        torch.testing.assert_close(x[i, ..., ~hit], ref[i, ..., ~hit])
    # The tutorial masks its power mel with silence, before the clamp.
    tut = C.resolve("tutorial")
    pipe = Pipeline(tut, ["time_mask"])
    assert list(pipe.spec.steps) == ["time_mask"] and pipe.spec["time_mask"].value == 0.0


def test_paired_diff_matches_a_hand_computation():
    df = pd.DataFrame({"arm": ["baseline"] * 3 + ["x"] * 3, "seed": [0, 1, 2] * 2,
                       "fold": [None] * 6, "test_acc": [0.5, 0.6, 0.7, 0.6, 0.6, 0.9]})
    mean, (lo, hi), n = paired_diff(df, "x", "test_acc")
    d = [0.1, 0.0, 0.2]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert n == 3 and mean == pytest.approx(0.1)
    assert (lo, hi) == pytest.approx((0.1 - half, 0.1 + half))
    assert sum(d) / 3 == pytest.approx(mean)


def test_crops_respect_each_clip_length():
    waves = torch.zeros(3, 100, dtype=torch.int16)
    waves[0, :100] = torch.arange(100)
    waves[1, :40] = torch.arange(40) + 1000
    waves[2, :100] = -torch.arange(100)
    data = DeviceData(waves, torch.tensor([100, 40, 100]), torch.tensor([0, 1, 2]),
                      ["a", "b", "c"], 8000)
    g = torch.Generator().manual_seed(0)
    x = crop_batch(data, torch.tensor([0, 1, 2, 0]), 50, generator=g) * 32768
    assert x.shape == (4, 1, 50)
    assert torch.equal(x[1, 0, :40], torch.arange(40.0) + 1000)  # short clip: whole + zeros
    assert (x[1, 0, 40:] == 0).all()
    start = int(x[0, 0, 0])
    assert torch.equal(x[0, 0], torch.arange(start, start + 50).float())
    # Two crops would cover a 100-sample clip; K is made odd so the middle one is the centre.
    rows, offsets = eval_crops(torch.tensor([100, 40, 100]), 50)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert offsets.tolist() == [0, 25, 50, 0, 0, 0, 0, 25, 50]
    rows, offsets = eval_crops(torch.tensor([90, 150]), 50)  # ceil(150 / 50) = 3 already odd
    assert offsets.tolist() == [0, 20, 40, 0, 50, 100]
