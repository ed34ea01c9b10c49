"""The ablation runner: end to end on tiny generated data, resume after SIGKILL, stats."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import augkit as ak
from experiments import ablate
from experiments import config as C
from experiments.arms import arm_augmentations, build_arm, expand_arms
from experiments.augmentations import AUGMENTATIONS, DB_SCALE
from experiments.data.audioset import AudioSet
from experiments.reporting.summary import paired_diff
from experiments.training.trainer import eval_positions

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}


def tiny_args(tmp_path, *extra):
    return ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--sample-rate", "8000", "--crop-seconds", "1.0", "--epochs", "2",
            "--swanlab-mode", "disabled", "--no-progress", "--set", "n_fft=256",
            "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=8",
            "--set", f"synthetic={json.dumps(TINY)}", *extra]


def test_end_to_end_ablation(tmp_path, capsys):
    rc = ablate.main(tiny_args(tmp_path, "--arms", "baseline,time_mask,all-minus-colored_noise",
                               "--seeds", "0,1"))
    assert rc == 0
    out = tmp_path / "out"
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 6 and set(df.arm) == {"baseline", "time_mask", "all-minus-colored_noise"}
    assert df.test_acc.between(0, 1).all() and df.val_acc.between(0, 1).all()
    assert (df.selected_epoch >= 1).all() and (df.selected_epoch <= 2).all()
    assert set(df.augmentations) == {"-", "time_mask", "reverb+filter_augment+band_limit+time_mask"}
    summary = (out / "summary.md").read_text()
    assert "| time_mask | 2 |" in summary and "(n=2)" in summary
    for png in ("curves.png", "deltas.png", "confusion.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["optim"]["epochs"] == 2 and cfg["versions"]["torch"] == torch.__version__
    assert cfg["dataset"]["classes"] == sorted(cfg["dataset"]["classes"])
    run = json.loads((out / "runs" / "time_mask" / "seed1.json").read_text())
    assert len(run["history"]) == 2 and "test" in run and run["seed"] == 1
    printed = capsys.readouterr().out
    assert "Best arm on validation" in printed
    # The same command again skips everything.
    assert ablate.main(tiny_args(tmp_path, "--arms", "baseline,time_mask,all-minus-colored_noise",
                                 "--seeds", "0,1")) == 0
    assert "6 done, 0 to run" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["offline", "local"])
def test_swanlab_logs_each_run_with_media(tmp_path, monkeypatch, mode):
    """The tracker's real code path (other tests disable it): one run per (arm, seed)."""
    pytest.importorskip("swanlab")
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


def test_changed_settings_are_refused(tmp_path, capsys):
    assert ablate.main(tiny_args(tmp_path, "--arms", "baseline", "--seeds", "0")) == 0
    capsys.readouterr()
    assert ablate.main(tiny_args(tmp_path, "--arms", "baseline", "--seeds", "0",
                                 "--epochs", "3")) == 2
    assert "differs in: epochs" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--arms", "baseline,tim_mask"], "unknown arm 'tim_mask'"),
    (["--set", "lrr=0.1"], "did you mean lr"),
    (["--set", "epochs=-1"], "epochs must be > 0"),
    (["--seeds", "a,b"], "argument --seeds: must be a comma list of integers"),
    (["--data", "/no/such/folder"], "/no/such/folder"),
    (["--set", "augment.noise.where=air"], "augment.noise.where must be one of"),
    (["--set", "augment.time_mask.value=loud"], "augment.time_mask: value must be"),
    (["--set", "augment.gain.gain_db=[6,-6]"], "augment.gain: gain_db must have low <= high"),
    (["--set", "augment.gain.gian_db=3"], "augment.gain: "),
    (["--set", "augment.nosie.p=0.5"], "did you mean noise"),
    (["--set", "augment.time_mask_width=30"], "replaced by augment.time_mask.max_width"),
])
def test_bad_input_gets_a_clear_error(argv, message, tmp_path, capsys):
    rc = ablate.main(["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                      "--no-progress", "--swanlab-mode", "disabled", *argv])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_arms_expand_and_validate():
    augs = ["time_mask", "freq_mask", "noise", "gain"]
    arms = expand_arms(["default"], augs)
    assert arms == ["baseline", *augs, "all", "trivial", *[f"all-minus-{a}" for a in augs]]
    assert arm_augmentations("all-minus-noise", augs) == ["time_mask", "freq_mask", "gain"]
    assert arm_augmentations("noise+mixup", augs) == ["noise", "mixup"]
    with pytest.raises(ValueError, match="not in augmentations"):
        arm_augmentations("all-minus-mixup", augs)
    with pytest.raises(ValueError, match="unknown augmentation"):
        expand_arms(["baseline"], ["time_mask", "chorus"])


def chain_for(cfg, names, num_classes=10):
    """The chain of augmentations ``names`` on ``cfg``'s frontend, without normalisation."""
    frontend = dataclasses.replace(cfg.frontend, normalize="none")
    return build_arm("+".join(names) or "baseline", frontend, cfg.ablation, num_classes).chain


def test_presets_resolve_and_tutorial_recipe():
    for preset in C.PRESETS:
        C.resolve(preset)
    cfg = C.resolve("tutorial")
    fe, model, optim = cfg.frontend, cfg.model, cfg.optim
    assert (fe.n_fft, fe.hop_length, fe.n_mels, model.backbone, optim.lr, optim.batch_size,
            optim.epochs, optim.optimizer, fe.scale, model.tutorial_input) == (
        2048, 640, 128, "resnet18", 1e-4, 16, 20, "adam", "clamp", True)
    chain = chain_for(cfg, cfg.ablation.augmentations)
    # The tutorial augments its power mel: between the mel and the clamp.
    assert chain.names == ["mel", "time_mask", "freq_mask", "noise", "gain", "scale"]
    assert chain["noise"].std == (0.01, 0.01) and chain["noise"].snr_db is None
    assert chain["gain"].factor == (0.8, 1.2) and chain["time_mask"].value == 0.0
    cfg = C.resolve("quick", overrides={"augment.gain.gain_db": "[-3, 3]", "seeds": "4,5"})
    assert cfg.ablation.augment["gain"]["gain_db"] == [-3, 3] and cfg.runtime.seeds == [4, 5]
    assert chain_for(cfg, ["gain"])["gain"].gain_db == (-3.0, 3.0)


def test_every_registered_augmentation_builds_into_a_chain():
    """A new table entry is covered here: it builds, sits where it says, and trains a batch."""
    cfg = C.resolve("quick")
    wave = torch.randn(4, 1, 16000)
    for name, entry in AUGMENTATIONS.items():
        chain = chain_for(cfg, [name])
        order = chain.names
        assert order.index(name) < order.index("mel") if entry.where == "waveform" else \
            order.index(name) > order.index("mel")
        x, soft = chain(wave, target=torch.tensor([0, 1, 2, 3]),
                        generator=torch.Generator().manual_seed(0))
        frames = 1 + wave.shape[-1] // cfg.frontend.hop_length
        assert x.shape == (4, 1, cfg.frontend.n_mels, frames) and soft.shape == (4, 10), name
        assert torch.isfinite(x).all(), name


def test_masks_on_db_features_fill_each_example_mean():
    cfg = C.resolve("quick")
    chain, clean = chain_for(cfg, ["time_mask", "noise"]), chain_for(cfg, [])
    assert chain.names == ["noise", "mel", "scale", "time_mask"]
    assert isinstance(chain["scale"], ak.AmplitudeToDB) and chain["scale"].scale == DB_SCALE
    chain.disable("noise")
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(4, 1, 8000) * torch.tensor([0.01, 0.1, 0.5, 1.0]).view(4, 1, 1)
    x, ref = chain(wave, generator=g), clean(wave)
    p = chain.last_params["time_mask"]
    frames = torch.arange(x.shape[-1])
    for i in range(4):
        hit = ((frames >= p["start"][i, :, None]) &
               (frames < (p["start"] + p["width"])[i, :, None])).any(0)
        assert hit.any()
        torch.testing.assert_close(x[i, ..., hit], ref[i].mean().expand_as(x[i, ..., hit]))
        torch.testing.assert_close(x[i, ..., ~hit], ref[i, ..., ~hit])
    # per-example dB / 20, each example's floor 80 dB (4 units) below its own maximum
    half_silent = wave.clone()
    half_silent[..., 4000:] = 0
    db = clean(half_silent)
    torch.testing.assert_close(db.amin(dim=(1, 2, 3)), db.amax(dim=(1, 2, 3)) - 80 * DB_SCALE)


def test_paired_diff_matches_a_hand_computation():
    df = pd.DataFrame({"arm": ["baseline"] * 3 + ["x"] * 3, "seed": [0, 1, 2] * 2,
                       "fold": [None] * 6, "test_acc": [0.5, 0.6, 0.7, 0.6, 0.6, 0.9]})
    mean, (lo, hi), n = paired_diff(df, "x", "test_acc")
    d = [0.1, 0.0, 0.2]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert n == 3 and mean == pytest.approx(0.1)
    assert (lo, hi) == pytest.approx((0.1 - half, 0.1 + half))
    assert sum(d) / 3 == pytest.approx(mean)


def test_eval_positions_cover_each_clip_with_an_odd_count():
    # Two crops would cover a 100-sample clip; K is made odd so the middle one is the centre.
    # Each clip gets the crops its own length needs (the 40-sample clip: one, the centre).
    rows, pos = eval_positions(torch.tensor([100, 40, 100]), 50)
    assert rows.tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert pos.tolist() == [0.0, 0.5, 1.0, 0.5, 0.0, 0.5, 1.0]
    rows, pos = eval_positions(torch.tensor([90, 150]), 50)  # 2 -> 3, and 3 already odd
    assert rows.tolist() == [0, 0, 0, 1, 1, 1]
    rows, pos = eval_positions(torch.tensor([30, 40]), 50)  # one crop: the centre
    assert pos.tolist() == [0.5, 0.5]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_batch_path_has_no_host_sync_on_cuda():
    """Crop from the packed set on the device, then every registered augmentation."""
    lengths = torch.tensor([16000, 4000, 24000, 9000])
    ds = AudioSet((torch.randn(int(lengths.sum())) * 3000).to(torch.int16),
                  torch.cumsum(lengths, 0) - lengths, lengths, torch.tensor([0, 1, 2, 1]),
                  ["a", "b", "c", "d"], ["x", "y", "z"], 16000, []).to("cuda")
    cfg = C.resolve("quick")
    chain = chain_for(cfg, list(AUGMENTATIONS), num_classes=3).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    idx = torch.tensor([0, 1, 2, 3, 2, 0], device="cuda")

    def batch():
        wave = ds.crop(idx, 8000, torch.rand(idx.shape, device="cuda", generator=g))
        return chain(wave, target=ds.labels[idx], generator=g)

    batch()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        x, soft = batch()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert x.shape == (6, 1, cfg.frontend.n_mels, 26) and soft.shape == (6, 3)


# ---------------------------------------------------------------------------
# The command line and the grouped config


def test_every_example_in_the_help_parses_and_resolves(capsys):
    """The --help text's commands and --set examples are accepted as written."""
    assert ablate.main(["--help"]) == 0
    text = capsys.readouterr().out
    commands = [ln.split("-m experiments.ablate", 1)[1].split("#")[0].split()
                for ln in text.splitlines()
                if ln.strip().startswith(("python -m experiments.ablate", "torchrun"))]
    sets = [kv for kv in (m.rstrip(",.;") for m in re.findall(
        r"--set\s+([\w.]+=\S+)", text)) if not kv.startswith("KEY=")]  # not the usage's
    assert len(commands) >= 5 and len(sets) >= 3, (commands, sets)
    for argv in [*commands, *(["--set", kv] for kv in sets)]:
        args, overrides = ablate.parse_args(argv)
        C.resolve(args.preset, args.config, overrides)


def test_flat_keys_resolve_to_their_group_with_the_annotated_types(tmp_path):
    cfg = C.resolve("quick", overrides={
        "lr": "1e-3", "optim.batch_size": 8, "seeds": "0,1", "max_seconds": "null",
        "gpus_per_run": "0.5", "data": "x.csv", "pretrained": "false", "fold": 2,
        "backbone_kwargs": '{"width": 8}', "compile": "true"})
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.batch_size == 8 and cfg.runtime.seeds == [0, 1]
    assert cfg.data.max_seconds is None and cfg.scale.gpus_per_run == 0.5
    assert cfg.data.path == "x.csv" and cfg.model.pretrained is False
    assert cfg.runtime.fold == "2" and cfg.model.backbone_kwargs == {"width": 8}
    assert cfg.runtime.compile is True
    grouped = tmp_path / "grouped.json"
    grouped.write_text(json.dumps({"_note": "a comment", "optim": {"lr": 0.01},
                                   "frontend": {"n_mels": 40}, "scale": "db"}))
    cfg = C.resolve("quick", str(grouped))
    assert (cfg.optim.lr, cfg.frontend.n_mels, cfg.frontend.scale) == (0.01, 40, "db")
    for overrides, message in (({"optim.n_mels": 40}, "unknown config key 'optim.n_mels'"),
                               ({"lr": "abc"}, "lr must be a number"),
                               ({"epochs": 2.5}, "epochs must be an integer"),
                               ({"seeds": "0,x"}, "seeds must be a list of integers"),
                               ({"compile": "maybe"}, "compile: cannot parse")):
        with pytest.raises(ValueError, match=re.escape(message)):
            C.resolve("quick", overrides=overrides)


def test_identity_is_every_group_but_runtime_and_scale():
    a = C.resolve("quick")
    b = C.resolve("quick", overrides={"workers": 2, "device": "cpu", "arms": "baseline",
                                      "seeds": "7", "cache_dir": "/elsewhere", "out": "o",
                                      "log_examples": 0, "swanlab_mode": "disabled"})
    assert set(C.identity(a)) == {"data", "frontend", "model", "optim", "ablation"}
    assert C.identity(a) == C.identity(b) and C.identity_diff(a, b) == []
    assert C.identity_diff(a, C.resolve("quick", overrides={"n_mels": 40})) == ["n_mels"]


def test_the_cache_defaults_to_the_platform_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.resolve("quick").runtime.cache_dir == str(tmp_path / "xdg" / "augkit")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.resolve("quick").runtime.cache_dir == str(tmp_path / "home" / ".cache" / "augkit")


#: A results folder written before the config had groups (its README says how).
FLAT = Path(__file__).parent / "data" / "runner_flat_config"


def test_a_folder_written_before_the_groups_resumes_and_one_of_0_2_is_refused(tmp_path,
                                                                               capsys):
    out = tmp_path / "out"
    shutil.copytree(FLAT, out)
    args = tiny_args(tmp_path, "--arms", "baseline", "--seeds", "0")
    args[args.index("--epochs") + 1] = "1"  # FLAT's command
    assert ablate.main([*args, "--set", "lr=0.01"]) == 2
    assert "differs in: lr" in capsys.readouterr().err
    assert ablate.main(args) == 0
    assert "1 done, 0 to run" in capsys.readouterr().out
    assert "frontend" in json.loads((out / "config.json").read_text())["config"]  # grouped now
    shutil.rmtree(out)
    shutil.copytree(FLAT, out)
    written = json.loads((out / "config.json").read_text())
    for name in C.PROTOCOL_FIELDS:  # what augkit 0.2's config did not have
        del written["config"][name]
    (out / "config.json").write_text(json.dumps(written))
    assert ablate.main(args) == 2
    err = capsys.readouterr().err
    assert "augkit 0.2" in err and "normalize, target_lufs, protocol, max_epochs, patience" in err
    assert err.count("\n") == 1, err


# ---------------------------------------------------------------------------
# SwanLab: test scores once, examples clean and augmented


class _FakeSwanLab:
    """What the tracker calls of ``swanlab``, recorded: ``logged`` is ``[(step, dict)]``."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []

    def init(self, **kwargs):
        return object()

    def log(self, data: dict, step: int | None = None) -> None:
        self.logged.append((step, data))

    def finish(self, **kwargs) -> None:
        pass

    class Image:
        def __init__(self, fig, caption: str | None = None) -> None:
            self.titles = [ax.get_title() for ax in fig.axes if ax.images]
            self.labels = [ax.get_ylabel() for ax in fig.axes if not ax.images]

    class Audio:
        def __init__(self, data, sample_rate: int, caption: str | None = None) -> None:
            self.shape = data.shape


def test_swanlab_gets_test_scores_once_and_examples_clean_beside_augmented(tmp_path,
                                                                          monkeypatch):
    fake = _FakeSwanLab()
    monkeypatch.setitem(sys.modules, "swanlab", fake)
    args = tiny_args(tmp_path, "--arms", "gain", "--seeds", "0", "--normalize", "none")
    args[args.index("disabled")] = "offline"
    assert ablate.main(args) == 0
    tests = [(step, d) for step, d in fake.logged if "test/acc" in d]
    run = json.loads((tmp_path / "out" / "runs" / "gain" / "seed0.json").read_text())
    assert [step for step, _ in tests] == [len(run["history"])]  # once, after the last epoch
    assert tests[0][1] == {f"test/{k}": run["test"][k] for k in ("acc", "acc_centre", "f1",
                                                                   "loss")}
    (images,) = [d["examples/spectrogram"] for _, d in fake.logged
                 if "examples/spectrogram" in d]
    assert len(images) == 4
    for i, image in enumerate(images):
        assert image.titles == [f"example {i}: clean", f"example {i}: augmented"]
        assert image.labels == ["dB"]  # the colour bar's: -normalize none gives decibels
