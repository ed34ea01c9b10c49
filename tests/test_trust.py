"""Trustworthy runs: no silent corruption, every bad input a clear one-line error.

One test (or a few) per item of the "Trustworthy runs" issue; the item number is
in each test's docstring. The property-based scan/decode/split test is at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import augkit as ak
from experiments import ablate, plan
from experiments import config as C
from experiments.arms import build_arm
from experiments.data import decode
from experiments.data.audioset import AudioSet
from experiments.data.decode import load_dataset
from experiments.data.scan import scan_dataset
from experiments.data.splits import make_splits
from experiments.io import atomic_write_json
from experiments.reporting.tracking import Tracker
from experiments.training import trainer
from experiments.training.trainer import eval_positions, evaluate
from tools import sweep_bad_inputs as sweep

ROOT = Path(__file__).resolve().parents[1]
SR = 8000
TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}


def _tone(k: int, n: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n) / SR
    return (amp * np.sin(2 * np.pi * (150 + 40 * k) * t)).astype(np.float32)


def _folder(root: Path, counts: dict[str, int], n: int = SR) -> Path:
    for c, (name, k) in enumerate(sorted(counts.items())):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(k):
            sf.write(root / name / f"{name}{i}.wav", _tone(3 * c + i, n), SR, subtype="PCM_16")
    return root


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--sample-rate", "8000", "--crop-seconds", "1.0", "--epochs", "1",
            "--swanlab-mode", "disabled", "--no-progress", "--set", "n_fft=256",
            "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=8",
            "--set", f"synthetic={json.dumps(TINY)}", *extra]


def _load(path, cache, **kw):
    kw.setdefault("progress", False)
    return load_dataset(path, kw.pop("sample_rate", SR), cache, **kw)


def _caught(fn):
    """Run ``fn``; return (result, [warning messages])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught]


# ---------------------------------------------------------------------------
# 1, 8: the resume identity includes the data; reports cover the whole folder


def test_resume_refuses_a_changed_dataset_and_says_what_changed(tmp_path, capsys):
    """Item 1: adding clips or a class under the same --data is refused, not mixed."""
    data = _folder(tmp_path / "d", {"a": 5, "b": 5})
    args = _args(tmp_path, "--data", str(data), "--arms", "baseline", "--seeds", "0")
    assert ablate.main(args) == 0
    out = tmp_path / "out"
    csv_before = (out / "results.csv").read_text()
    capsys.readouterr()

    sf.write(data / "a" / "new.wav", _tone(9), SR, subtype="PCM_16")
    assert ablate.main(args) == 2
    err = capsys.readouterr().err
    assert "1 clip added" in err and "a/new.wav" in err and "--out" in err
    assert err.count("\n") == 1, err  # one line

    (data / "a" / "new.wav").unlink()
    _folder(data, {"c": 5})
    assert ablate.main(args) == 2
    err = capsys.readouterr().err
    assert "class added: c" in err and "5 clips added" in err
    shutil.rmtree(data / "c")

    # Same content, new mtimes (a re-extracted archive): the same data, resumed.
    for f in (data / "a").iterdir():
        os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    assert ablate.main(args) == 0
    assert "1 done, 0 to run" in capsys.readouterr().out
    assert (out / "results.csv").read_text() == csv_before


def test_fingerprint_diff_names_what_changed():
    """Item 1: the message's content, on the fingerprint records alone."""
    old = {"a/1.wav": ["a", "x1", "train"], "a/2.wav": ["a", "x2", "val"],
           "b/1.wav": ["b", "y1", "test"]}
    new = {"a/1.wav": ["a", "x1", "val"], "a/2.wav": ["a", "CHANGED", "val"],
           "b/1.wav": ["b", "y1", "test"], "c/1.wav": ["c", "z", "train"]}
    msg = plan.describe_data_change(old, new)
    assert "1 clip added (c/1.wav)" in msg and "class added: c" in msg
    assert "1 clip changed (a/2.wav)" in msg and "1 clip moved to another split (a/1.wav)" in msg


def test_reports_cover_every_finished_run_in_the_folder(tmp_path, capsys):
    """Item 8: re-running with fewer seeds keeps the finished pairs in the report."""
    assert ablate.main(_args(tmp_path, "--arms", "baseline", "--seeds", "0,1")) == 0
    assert ablate.main(_args(tmp_path, "--arms", "baseline", "--seeds", "0")) == 0
    out = tmp_path / "out"
    df = pd.read_csv(out / "results.csv")
    assert sorted(df.seed) == [0, 1]
    assert "| baseline | 2 |" in (out / "summary.md").read_text()


# ---------------------------------------------------------------------------
# 2: duplicate seeds and arms


def test_duplicate_seeds_and_arms_are_removed_with_a_warning():
    """Item 2: --seeds 0,0 must not fake replication."""
    with pytest.warns(UserWarning, match=r"duplicate seed\(s\) 0 removed"):
        cfg = C.resolve("quick", overrides={"seeds": "0,0,1", "arms": ["baseline", "gain"]})
    assert cfg.runtime.seeds == [0, 1]
    with pytest.warns(UserWarning, match=r"duplicate arm\(s\) gain removed"):
        cfg = C.resolve("quick", overrides={"arms": ["gain", "baseline", "gain"]})
    assert cfg.runtime.arms == ["gain", "baseline"]


# ---------------------------------------------------------------------------
# 3: every class in every split


def _fake(counts: dict[str, int], splits: dict[str, list[str]] | None = None) -> AudioSet:
    ids = [f"{c}/{i}.wav" for c, k in sorted(counts.items()) for i in range(k)]
    classes = sorted(counts)
    labels = torch.tensor([classes.index(i.split("/")[0]) for i in ids])
    n = len(ids)
    ms = None if splits is None else [splits[i.split("/")[0]][int(i.split("/")[1][:-4]) %
                                                            len(splits[i.split("/")[0]])]
                                      for i in ids]
    return AudioSet(torch.zeros(n, dtype=torch.int16), torch.arange(n),
                    torch.ones(n, dtype=torch.int64), labels, ids, classes, SR, [], ms)


def test_a_class_missing_from_a_split_is_an_error_naming_it():
    """Item 3: 20 vs 2 clips, a class only in val/test, and a one-class dataset."""
    with pytest.raises(ValueError, match=r"class 'b'.* 2 clips"):
        make_splits(_fake({"a": 20, "b": 2}), "holdout")
    only_val = _fake({"a": 6, "b": 4}, {"a": ["train", "val", "test"], "b": ["val", "test"]})
    with pytest.raises(ValueError, match=r"class 'b' has no clips in train \(train 0, val 2, "
                                         r"test 2\).*--allow-missing-classes"):
        make_splits(only_val, "manifest")
    with pytest.warns(UserWarning, match="class 'b' has no clips in train"):
        s = make_splits(only_val, "manifest", allow_missing_classes=True)
    assert s["train"].numel() == 2
    with pytest.raises(ValueError, match="at least 2 classes.*'a'"):
        make_splits(_fake({"a": 10}), "holdout")
    with pytest.raises(ValueError, match=r"5 folds.*class 'b' has 3 clips"):
        make_splits(_fake({"a": 10, "b": 3}), "kfold", folds=5)


# ---------------------------------------------------------------------------
# 4, 5, 6: data you can trust


def test_nonfinite_files_are_skipped_and_clipping_is_named(tmp_path):
    """Item 4: NaN/inf files are skipped (not repaired into silence); clipping is named."""
    tmp_path, cache = tmp_path / "d", tmp_path / "cache"
    _folder(tmp_path, {"a": 2, "b": 2})
    x = _tone(1)
    x[100] = np.nan
    sf.write(tmp_path / "a" / "nan.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "a" / "allnan.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    y = _tone(2)
    y[5] = np.inf
    sf.write(tmp_path / "b" / "inf.wav", y, SR, subtype="FLOAT")
    sf.write(tmp_path / "b" / "loud.wav", 1.5 * _tone(3, amp=1.0), SR, subtype="FLOAT")
    ds, msgs = _caught(lambda: _load(tmp_path, cache))
    assert len(msgs) == 1, msgs
    (m,) = msgs
    assert "3 with NaN/inf samples" in m
    for name in ("a/nan.wav", "a/allnan.wav", "b/inf.wav"):
        assert name in m and name not in ds.ids
    assert "clipped 1 above full scale" in m and "b/loud.wav" in m and "b/loud.wav" in ds.ids
    assert sorted(ds.skipped) == ["a/allnan.wav", "a/nan.wav", "b/inf.wav"]
    # The clipped clip is clipped at full scale, not wrapped.
    k = ds.ids.index("b/loud.wav")
    assert ds.clip(k).abs().max() == pytest.approx(1.0, abs=1e-4)
    # Opting in to the repair names it too.
    ds2, msgs = _caught(lambda: _load(tmp_path, cache, nonfinite="repair"))
    assert "a/nan.wav" in ds2.ids and "repaired" in msgs[0]


def test_scan_names_every_file_it_ignores(tmp_path):
    """Item 5: nested folders, dangling symlinks and loose files are named, not dropped."""
    tmp_path, cache = tmp_path / "d", tmp_path / "cache"
    _folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "sub").mkdir()
    sf.write(tmp_path / "a" / "sub" / "deep.wav", _tone(0), SR)
    os.symlink(tmp_path / "nowhere.wav", tmp_path / "b" / "dangling.wav")
    sf.write(tmp_path / "loose.wav", _tone(0), SR)
    (tmp_path / "b" / "notes.m4a").write_bytes(b"x")
    (tmp_path / "a" / ".DS_Store").write_bytes(b"x")  # hidden: ignored silently
    ds, msgs = _caught(lambda: _load(tmp_path, cache))
    assert len(ds) == 4 and len(msgs) == 1
    m = msgs[0]
    assert "ignored 4" in m
    for name in ("a/sub", "b/dangling.wav", "loose.wav", "b/notes.m4a"):
        assert name in m
    assert ".DS_Store" not in m


def test_truncated_files_are_detected_and_skipped(tmp_path):
    """Item 5: a WAV cut short (an interrupted download) is skipped, not padded silence."""
    tmp_path, cache = tmp_path / "d", tmp_path / "cache"
    _folder(tmp_path, {"a": 2, "b": 2})
    full = tmp_path / "a" / "a0.wav"
    sf.write(tmp_path / "a" / "cut.wav", _tone(5, 2 * SR), SR, subtype="PCM_16")
    blob = (tmp_path / "a" / "cut.wav").read_bytes()
    (tmp_path / "a" / "cut.wav").write_bytes(blob[:4096])
    sf.write(tmp_path / "b" / "cut.flac", _tone(6, 4 * SR), SR)
    blob = (tmp_path / "b" / "cut.flac").read_bytes()
    (tmp_path / "b" / "cut.flac").write_bytes(blob[: len(blob) // 2])
    ds, msgs = _caught(lambda: _load(tmp_path, cache))
    assert full.exists() and "a/cut.wav" not in ds.ids and "b/cut.flac" not in ds.ids
    (m,) = msgs
    assert "2 truncated" in m and "a/cut.wav" in m and "b/cut.flac" in m
    assert "4096" in m or "%" in m
    # Opting in keeps what is there, named.
    ds2, msgs = _caught(lambda: _load(tmp_path, cache, truncated="keep"))
    assert "a/cut.wav" in ds2.ids and "truncated" in msgs[0]


def test_read_failures_are_not_cached(tmp_path, monkeypatch):
    """Item 6: a file that failed once (permissions, I/O) is tried again next time."""
    tmp_path, cache = tmp_path / "d", tmp_path / "cache"
    _folder(tmp_path, {"a": 2, "b": 2})
    real = decode._decode
    fail = {"on": True}

    def flaky(path, *args, **kwargs):
        if fail["on"] and path.name == "a1.wav":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode, "_decode", flaky)
    ds, msgs = _caught(lambda: _load(tmp_path, cache))
    assert "a/a1.wav" not in ds.ids and "Permission denied" in msgs[0]
    fail["on"] = False
    ds, msgs = _caught(lambda: _load(tmp_path, cache))
    assert "a/a1.wav" in ds.ids and not msgs and len(ds) == 4
    # ... and the repaired cache is complete: a third load decodes nothing.
    monkeypatch.setattr(decode, "_decode", lambda *a, **k: pytest.fail("decoded again"))
    assert _load(tmp_path, cache).ids == ds.ids


# ---------------------------------------------------------------------------
# 7: --pretrained PATH


def test_pretrained_path_from_the_cli(tmp_path, capsys):
    """Item 7: a weights path works from the CLI; a missing one is named before decoding."""
    weights = tmp_path / "w.pth"
    torch.save(ak.create_backbone("cnn_small", 10, in_chans=1, width=16).state_dict(), weights)
    cfg = C.resolve("quick", overrides=ablate.parse_args(["--pretrained", str(weights)])[1])
    assert cfg.model.pretrained == str(weights)
    for word, value in (("false", False), ("True", True)):
        ov = ablate.parse_args(["--pretrained", word])[1]
        assert C.resolve("quick", overrides=ov).model.pretrained is value
    assert ablate.main(_args(tmp_path, "--arms", "baseline", "--seeds", "0",
                             "--pretrained", str(weights))) == 0
    rc = ablate.main(_args(tmp_path, "--out", str(tmp_path / "o2"), "--arms", "baseline",
                           "--pretrained", str(tmp_path / "missing.pth")))
    assert rc == 2 and "missing.pth" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# 9: validate before any work


@pytest.fixture
def no_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("decoded before validating")
    monkeypatch.setattr(plan, "load_dataset", boom)


@pytest.mark.parametrize("extra, message", [
    (["--backbone", "resnet19"], "backbone 'resnet19'"),
    (["--set", "augment.noise.snr_db=[NaN,3]"], "augment.noise"),
    (["--set", "n_fft=16384"], "n_fft"),
    (["--crop-seconds", "0.01"], "crop_seconds"),
    (["--lr", "inf"], "lr"),
    (["--set", "max_seconds=abc"], "max_seconds"),
    (["--split", "kfold", "--folds", "1"], "folds"),
    (["--split", "kfold", "--fold", "x"], "fold"),
    (["--split", "manifest", "--data", "."], "split 'manifest' needs --data pointing to a CSV"),
    (["--set", "n_mels=500"], "n_mels"),
])
def test_bad_settings_fail_before_decoding_and_before_writing(extra, message, tmp_path, capsys,
                                                                no_decoding):
    """Item 9: one-line error, nothing decoded, nothing written into --out."""
    rc = ablate.main(_args(tmp_path, "--arms", "baseline", *extra))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["--out", "--cache-dir"])
def test_output_and_cache_paths_that_are_files(which, tmp_path, capsys, no_decoding):
    """Item 9: --out or --cache-dir naming a file is refused up front."""
    f = tmp_path / "afile"
    f.write_text("x")
    rc = ablate.main(_args(tmp_path, "--arms", "baseline", which, str(f)))
    assert rc == 2 and f"{which} {f} is a file" in capsys.readouterr().err


def test_swanlab_cloud_without_login(tmp_path, capsys, monkeypatch, no_decoding):
    """Item 9: --swanlab-mode cloud without `swanlab login` fails before any work."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SWANLAB_ROOT", str(tmp_path / "home" / ".swanlab"))
    monkeypatch.delenv("SWANLAB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    args = _args(tmp_path, "--arms", "baseline")
    args[args.index("disabled")] = "cloud"
    rc = ablate.main(args)
    assert rc == 2 and "swanlab login" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path, capsys):
    """Item 9: a config.json without finished runs is not a result to protect."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"identity": {"backbone": "resnet19"}}))
    assert ablate.main(_args(tmp_path, "--arms", "baseline", "--seeds", "0")) == 0


# ---------------------------------------------------------------------------
# 10: divergence


def test_divergence_is_a_failed_run_not_a_result(tmp_path, capsys, monkeypatch):
    """Item 10: a NaN loss stops that run, marks it failed, and the ablation goes on."""
    real = trainer.Trainer.epoch

    def diverging(self, *a, **k):
        loss, acc, speed = real(self, *a, **k)
        return (math.nan if self.generator.initial_seed() == 1 else loss), acc, speed

    monkeypatch.setattr(trainer.Trainer, "epoch", diverging)
    args = _args(tmp_path, "--arms", "baseline,gain", "--seeds", "0,1")
    rc = ablate.main(args)
    captured = capsys.readouterr()
    assert rc == 1 and "2 of 4 runs failed" in captured.err
    out = tmp_path / "out"
    runs = {p.name: json.loads(p.read_text()) for p in (out / "runs" / "gain").glob("*.json")}
    assert runs["seed1.json"]["status"] == "failed" and runs["seed0.json"]["status"] == "ok"
    assert "not finite" in runs["seed1.json"]["error"]
    df = pd.read_csv(out / "results.csv")
    assert set(df.status) == {"ok", "failed"}
    summary = (out / "summary.md").read_text()
    assert "| gain | 1 |" in summary and "1 failed" in summary
    assert "gain seed 1" in summary and "not finite" in summary
    # Failed pairs count as finished on resume; --retry-failed runs them again.
    monkeypatch.setattr(trainer.Trainer, "epoch", real)
    assert ablate.main(args) == 1
    assert "4 done, 0 to run" in capsys.readouterr().out
    assert ablate.main([*args, "--retry-failed"]) == 0
    assert "4 done, 2 to run" in capsys.readouterr().out
    assert set(pd.read_csv(out / "results.csv").status) == {"ok"}


# ---------------------------------------------------------------------------
# 11: library inputs


@pytest.mark.parametrize("call, exc, words", [
    (lambda: ak.MelFrontend(8000, n_fft=256)(torch.zeros(2, 1, 1000, dtype=torch.int16)),
     TypeError, "int16"),
    (lambda: ak.Gain(p=1.0)(torch.zeros(2, 1, 100, dtype=torch.int16)), TypeError, "int16"),
    (lambda: ak.Mixup(num_classes=2)(torch.zeros(2, 1, 100, dtype=torch.int16),
                                     target=torch.tensor([0, 1])), TypeError, "int16"),
    (lambda: ak.Mixup(alpha=float("inf")), ValueError, "alpha"),
    (lambda: ak.Mixup(alpha=float("nan")), ValueError, "alpha"),
    (lambda: ak.GaussianNoise(snr_db=float("nan")), ValueError, "snr_db"),
    (lambda: ak.Gain(gain_db=float("inf")), ValueError, "gain_db"),
    (lambda: ak.MelFrontend(8000, top_db=float("inf")), ValueError, "top_db"),
    (lambda: ak.MelFrontend(8000, power=float("inf")), ValueError, "power"),
    (lambda: ak.MelFrontend(8000, log_offset=float("nan")), ValueError, "log_offset"),
    (lambda: ak.MelFrontend(8000, f_min=float("nan")), ValueError, "f_min"),
    (lambda: ak.MelFrontend(8000, n_fft=256)(torch.zeros(2, 1, 0)), ValueError, "empty clips"),
    (lambda: ak.MelFrontend(8000, n_fft=256)(torch.zeros(2, 1, 100)), ValueError,
     "shorter than n_fft=256"),
    (lambda: ak.Gain(p=1.0)(torch.zeros(2, 1, 100), generator=123), TypeError, "generator"),
])
def test_library_rejects_bad_inputs_with_one_line(call, exc, words):
    """Item 11: dtype, non-finite arguments, empty and short input, generator."""
    with pytest.raises(exc, match=words) as e:
        call()
    assert "\n" not in str(e.value)


def test_gain_and_mixup_accept_a_degenerate_range():
    ak.Gain(gain_db=(3, 3))
    ak.GaussianNoise(snr_db=(20, 20))


def test_mel_frontend_warns_about_all_zero_filters():
    """Item 11: as torchaudio does, when n_mels is too high for the FFT bins."""
    with pytest.warns(UserWarning, match=r"all-zero.*n_mels \(128\)"):
        ak.MelFrontend(8000, n_fft=64, n_mels=128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ak.MelFrontend(8000, n_fft=256, n_mels=32)


def test_manifest_extra_comma_and_latin1_are_one_line_errors_naming_file_and_line(tmp_path):
    """Item 11: the manifest's own format problems, with file and line."""
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "x.wav", _tone(0), SR)
    comma = tmp_path / "comma.csv"
    comma.write_text("path,label\na/x.wav,a\na/x, y.wav,b\n")
    with pytest.raises(ValueError, match=r"comma\.csv, line 3: 3 fields") as e:
        scan_dataset(comma)
    assert "\n" not in str(e.value)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path,label\na/x.wav,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv, line 2: not UTF-8"):
        scan_dataset(latin)


# ---------------------------------------------------------------------------
# 12: Ctrl-C


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    """Item 12: interrupted; N of M pairs done; re-run to resume."""
    args = _args(tmp_path, "--arms", "baseline,gain", "--seeds", "0,1,2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "out" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/*.json")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted; ") and " of 6 pairs done; re-run the same " \
        "command to resume" in lines[0]


# ---------------------------------------------------------------------------
# 13: SwanLab example images


def test_swanlab_example_spectrograms_have_contrast(tmp_path, monkeypatch):
    """Item 13: the logged image shows the spectrogram, not a black tile."""
    pytest.importorskip("swanlab")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SWANLAB_LOG_DIR", str(tmp_path / "swanlog"))
    tr = Tracker("offline", "augkit-test", tmp_path / "swanlog", "x", "g", ["t"], {})
    feats = torch.linspace(-4, 0, 32 * 50).view(1, 1, 32, 50).repeat(2, 1, 1, 1)
    feats[1] = feats[1].flip(-1)
    tr.log_examples(torch.randn(2, 1, 800) * 0.1, feats * 20, feats.flip(-2) * 20, "dB", SR)
    tr.finish()
    pngs = sorted((tmp_path / "swanlog").glob("**/media/**/*.png"))
    assert len(pngs) == 2
    for png in pngs:
        img = plt.imread(png)[..., :3] * 255
        assert img.shape[0] >= 200 and img.shape[1] >= 600, img.shape  # two panels
        assert img.std() > 30, img.std()


# ---------------------------------------------------------------------------
# 14: files follow the umask


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    """Item 14: results are readable by colleagues when the umask says so."""
    old = os.umask(umask)
    try:
        p = atomic_write_json(tmp_path / "sub" / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode


# ---------------------------------------------------------------------------
# 15: evaluation crops each clip by its own length


def test_eval_crops_each_clip_by_its_own_length():
    """Item 15: one long clip adds its own crops only (not K crops to every clip)."""
    lengths = torch.tensor([SR] * 9 + [100 * SR])
    rows, pos = eval_positions(lengths, SR)
    assert rows.numel() == 9 + 101  # was 10 x 101
    assert rows.tolist() == [*range(9), *[9] * 101]
    assert pos[:9].tolist() == [0.5] * 9
    assert pos[9:].tolist() == pytest.approx(torch.linspace(0, 1, 101).tolist())


class _MeanModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        m = x.mean(dim=(1, 3))  # (B, F)
        return torch.stack([m[:, :16].mean(1), m[:, 16:].mean(1)], 1) @ self.w


def test_evaluate_equals_each_clip_alone_and_crops_in_proportion(monkeypatch):
    """Item 15: batching clips of different lengths does not change any clip's score."""
    lengths = [800, 3000, 400, 12000, 1000]
    n = torch.tensor(lengths)
    g = torch.Generator().manual_seed(1)
    ds = AudioSet((torch.randn(int(n.sum()), generator=g) * 3000).to(torch.int16),
                  torch.cumsum(n, 0) - n, n, torch.tensor([0, 1, 2, 0, 1]),
                  [f"c/{i}" for i in range(5)], ["a", "b", "c"], SR, [])
    frontend = C.FrontendConfig(sample_rate=SR, n_fft=256, hop_length=128, n_mels=32)
    chain = build_arm("baseline", frontend, C.AblationConfig(), 3).chain
    model = _MeanModel()
    crops = []
    real_crop = AudioSet.crop

    def counting(self, idx, length, position):
        crops.append(idx.numel())
        return real_crop(self, idx, length, position)

    monkeypatch.setattr(AudioSet, "crop", counting)
    idx = torch.arange(5)
    together = evaluate(model, chain, ds, idx, 1000, 7, False)
    assert sum(crops) == 1 + 3 + 1 + 13 + 1  # odd ceil(length / 1000) per clip
    alone = [evaluate(model, chain, ds, idx[i:i + 1], 1000, 7, False) for i in range(5)]
    assert together.confusion == np.sum([a.confusion for a in alone], axis=0).tolist()
    assert together.loss == pytest.approx(np.mean([a.loss for a in alone]), rel=1e-5)
    assert together.acc_centre == pytest.approx(np.mean([a.acc_centre for a in alone]))


# ---------------------------------------------------------------------------
# Property-based: random trees of good and bad files


_KINDS = ("good", "good", "good", "corrupt", "empty", "truncated", "nan", "nested", "dangling",
          "text", "hidden", "loose", "stereo", "loud")


def _make(root: Path, cls: str, i: int, kind: str) -> tuple[str | None, str | None]:
    """Write one entry; return (id if it must load, name if it must be named)."""
    d = root / cls
    d.mkdir(parents=True, exist_ok=True)
    name = f"{kind}{i}.wav"
    x = _tone(i, 400)
    if kind == "good":
        sf.write(d / name, x, SR, subtype="PCM_16")
        return f"{cls}/{name}", None
    if kind == "stereo":
        sf.write(d / name, np.stack([x, -x], 1), SR, subtype="PCM_16")
        return f"{cls}/{name}", None
    if kind == "loud":
        sf.write(d / name, 2 * x / np.abs(x).max(), SR, subtype="FLOAT")
        return f"{cls}/{name}", f"{cls}/{name}"
    if kind == "corrupt":
        (d / name).write_bytes(b"RIFF\x00\x01garbage" * 7)
    elif kind == "empty":
        (d / name).write_bytes(b"")
    elif kind == "truncated":
        sf.write(d / name, _tone(i, 4000), SR, subtype="PCM_16")
        (d / name).write_bytes((d / name).read_bytes()[:1000])
    elif kind == "nan":
        x[3] = np.nan
        sf.write(d / name, x, SR, subtype="FLOAT")
    elif kind == "nested":
        (d / f"sub{i}").mkdir(exist_ok=True)
        sf.write(d / f"sub{i}" / name, x, SR)
        return None, f"{cls}/sub{i}"
    elif kind == "dangling":
        os.symlink(root / "missing" / name, d / name)
    elif kind == "text":
        name = f"notes{i}.txt"
        (d / name).write_text("hello")
    elif kind == "hidden":
        (d / f".{name}").write_bytes(b"junk")
        return None, None
    elif kind == "loose":
        sf.write(root / name, x, SR)
        return None, name
    return None, f"{cls}/{name}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_KINDS), min_size=0, max_size=6), min_size=1,
                max_size=3),
       st.sampled_from(["holdout", "tutorial", "kfold"]))
def test_random_trees_load_exactly_the_good_files_or_fail_in_one_line(tree, split):
    """Never a traceback: the good files load, every bad one is named; or one line."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        expect_ids, expect_named = set(), set()
        for c, kinds in enumerate(tree):
            (root / f"class{c}").mkdir()
            for i, kind in enumerate(kinds):
                ok, named = _make(root, f"class{c}", i, kind)
                expect_ids |= {ok} - {None}
                expect_named |= {named} - {None}
        try:
            ds, msgs = _caught(lambda: _load(root, Path(tmp) / "cache"))
        except (ValueError, FileNotFoundError) as e:
            assert "\n" not in str(e) and str(e)
            return
        assert set(ds.ids) == expect_ids
        # One warning counts them and names a few per reason; ds.problems lists them all.
        listed = "\n".join(f for files in ds.problems.values() for f in files)
        for name in expect_named:
            assert name in listed, (name, listed)
        if expect_named:
            (text,) = msgs
            assert f"{sum(map(len, ds.problems.values()))} of " in text and "\n" not in text
        if not expect_named:
            assert not msgs and not ds.problems, msgs
        try:
            make_splits(ds, split, folds=2)
        except ValueError as e:
            assert "\n" not in str(e) and str(e)


# ---------------------------------------------------------------------------
# The bad-input sweep script runs (a handful of its cases)


def test_sweep_script_cases_are_good(tmp_path):
    names = ["cli_unknown_arm", "data_missing_path", "file_truncated_wav",
             "lib_mixup_alpha_inf", "manifest_latin1"]
    rows = sweep.run_cases(names, tmp_path)
    assert [r.name for r in rows] == names
    assert all(r.good for r in rows), [(r.name, r.outcome, r.detail) for r in rows]
    assert "| case |" in sweep.markdown(rows)


def test_exit_status_survives_an_interrupted_string_eval(tmp_path):
    """Item 12: CPython 3.12 under ``-m`` dies by SIGINT at exit (status -2 to a Python
    parent) once a KeyboardInterrupt has ended a string exec anywhere in the run, which a
    Ctrl-C during a dataclass's creation does; the entry points keep their 130."""
    pkg = tmp_path / "interrupted_eval"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "from experiments.exit import exit_with\n"
        "try:\n"
        "    exec('raise KeyboardInterrupt', {})\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "exit_with(130)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "interrupted_eval"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
