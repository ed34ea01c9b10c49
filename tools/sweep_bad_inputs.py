"""Bad-input sweep: try many kinds of bad or unusual input, as a new user would.

    python -m tools.sweep_bad_inputs --out runs/sweep        # from the repository's root
    python -m tools.sweep_bad_inputs --out runs/sweep --only cli_lr_inf,file_nan_samples
    python -m tools.sweep_bad_inputs --out runs/sweep --budget 180   # CI: <= 3 minutes

The one list of what bad input gets. It holds the developers' own cases and every
case of the sweep of 2026-12-06 (130 ids, ``L..`` library, ``D..`` runner data,
``C..`` runner config/CLI, ``P..`` disk and process faults: :data:`DOC_IDS`; the
cases are in :mod:`tools.sweep_doc_library` and :mod:`tools.sweep_doc_runner`).
Each case builds its inputs in ``<out>/cases/<name>``, runs the runner's CLI
(``experiments.ablate.main``, in-process, or as a process where signals, locks or
a second command are the point), the data path (``load_dataset`` then
``make_splits``) or a library call, with a timeout, and classifies what happened:

* ``one-line error``: exit status 2 (or 1 for a diverged run or a full disk, 130 for
  Ctrl-C, 143 for SIGTERM), or a ``ValueError``/``TypeError``/``FileNotFoundError``,
  whose one-line message names the file or argument (good);
* ``named warning + correct result``: it ran, a warning named the input, and the
  result is right (good);
* ``correct result``: unusual but valid input handled right, nothing to warn (good);
* ``cryptic error``: an error that does not name the file or argument (bad);
* ``traceback``: any other exception (bad);
* ``silent change``: it ran but the result is wrong, or nothing named the input (bad);
* ``hang``: the timeout passed (bad);
* ``data loss``: finished results lost, or runs of other settings mixed in (bad).

It prints a summary line (counts of every outcome and the wall time) and a markdown
table (both also in ``<out>/sweep.md``), and exits 1 if any case is bad, or if the
sweep took longer than ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import augkit as ak
from experiments.data import decode
from tools import sweep_doc_library, sweep_doc_runner
from tools.sweep_core import (
    BAD,
    GOOD,
    ROOT,
    SR,
    Case,
    Obs,
    Row,
    _Cases,
    _cli,
    _data,
    _lib,
    _time_limit,
    _Timeout,
    _tiny,
    _tone,
    _tree,
    _write,
    classify,
)

#: Every case id of the sweep of 2026-12-06 (docs' ``bad-inputs-2026-12-06.md``).
DOC_IDS = (
    *(f"L{i:02d}" for i in range(1, 22)), "L21b", *(f"L{i:02d}" for i in range(22, 51)),
    *(f"D{i:02d}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 16)),
    "D17a", "D17b", "D17c", "D18", "D19", "D20", "D21", "D24a", "D24b", "D24c", "D24d",
    "D25", "D28", "D29", "D30", "D31", "D32",
    *(f"C{i:02d}" for i in range(1, 41)), *(f"P{i:02d}" for i in range(1, 10)),
)


# ---------------------------------------------------------------------------
# The developers' cases


def _cli_errors(cases: _Cases) -> None:
    """Bad flags and settings: a one-line error each."""
    shared = cases.shared

    def cli_error(name, what, extra, tokens):
        cases.add(name, "runner", what, tokens)(lambda tmp: _cli(_tiny(tmp, shared, *extra)))

    cli_error("cli_unknown_arm", "--arms with a typo", ["--arms", "baseline,tim_mask"],
              ["tim_mask"])
    cli_error("cli_unknown_key", "--set of an unknown key", ["--set", "lrr=0.1"], ["lrr"])
    cli_error("cli_negative_epochs", "--epochs -1", ["--epochs", "-1"], ["epochs"])
    cli_error("cli_bad_seeds", "--seeds a,b", ["--seeds", "a,b"], ["--seeds"])
    cli_error("cli_negative_seed", "--seeds -1", ["--seeds=-1"], ["seeds"])
    cli_error("cli_lr_inf", "--lr inf", ["--lr", "inf"], ["lr"])
    cli_error("cli_lr_nan", "--lr nan", ["--lr", "nan"], ["lr"])
    cli_error("cli_backbone_typo", "--backbone resnet19", ["--backbone", "resnet19"],
              ["resnet19"])
    cli_error("cli_pretrained_missing", "--pretrained of a missing file",
              ["--pretrained", "/no/such/weights.pth"], ["weights.pth"])
    cli_error("cli_crop_shorter_than_nfft", "--crop-seconds 0.01 with n_fft 256",
              ["--crop-seconds", "0.01"], ["crop_seconds", "n_fft"])
    cli_error("cli_nfft_longer_than_crop", "n_fft=16384 with 1 s crops",
              ["--set", "n_fft=16384"], ["n_fft"])
    cli_error("cli_nmels_too_many", "n_mels=500 with n_fft=256", ["--set", "n_mels=500"],
              ["n_mels"])
    cli_error("cli_augment_low_gt_high", "augment.gain.gain_db=[6,-6]",
              ["--set", "augment.gain.gain_db=[6,-6]"], ["augment.gain", "gain_db"])
    cli_error("cli_augment_nan", "augment.noise.snr_db=[NaN,3]",
              ["--set", "augment.noise.snr_db=[NaN,3]"], ["augment.noise", "snr_db"])
    cli_error("cli_augment_unknown_arg", "augment.gain.gian_db=3",
              ["--set", "augment.gain.gian_db=3"], ["augment.gain", "gian_db"])
    cli_error("cli_kfold_one_fold", "--split kfold --folds 1",
              ["--split", "kfold", "--folds", "1"], ["folds"])
    cli_error("cli_fold_out_of_range", "--split kfold --fold 9",
              ["--split", "kfold", "--fold", "9"], ["fold"])
    cli_error("cli_config_missing", "--config of a missing file",
              ["--config", "/no/such/conf.json"], ["conf.json"])
    cli_error("cli_max_seconds_text", "--set max_seconds=abc", ["--set", "max_seconds=abc"],
              ["max_seconds"])
    cli_error("cli_sample_rate_zero", "--sample-rate 0", ["--sample-rate", "0"],
              ["sample_rate"])
    cli_error("cli_unknown_preset", "--preset fast", ["--preset", "fast"], ["--preset"])
    cli_error("cli_device_unknown", "--device tpu", ["--device", "tpu"], ["device"])
    cli_error("cli_data_missing", "--data of a missing folder", ["--data", "/no/such/data"],
              ["/no/such/data"])


def _cli_inputs(cases: _Cases) -> None:
    """Bad paths, weights and accounts given to the runner."""
    shared = cases.shared

    @cases.add("cli_config_bad_json", "runner", "--config file that is not JSON", ["bad.json"])
    def _(tmp):
        (tmp / "bad.json").write_text("{lr: 0.1,}")
        return _cli(_tiny(tmp, shared, "--config", str(tmp / "bad.json")))

    @cases.add("cli_manifest_split_without_csv", "runner", "--split manifest on a folder",
               ["manifest"])
    def _(tmp):
        return _cli(_tiny(tmp, shared, "--split", "manifest", "--data", str(_tree(tmp / "d"))))

    @cases.add("cli_out_is_file", "runner", "--out naming a file", ["--out", "afile"])
    def _(tmp):
        (tmp / "afile").write_text("x")
        return _cli(_tiny(tmp, shared, "--out", str(tmp / "afile")))

    @cases.add("cli_cache_is_file", "runner", "--cache-dir naming a file", ["--cache-dir", "cfile"])
    def _(tmp):
        (tmp / "cfile").write_text("x")
        return _cli(_tiny(tmp, shared, "--cache-dir", str(tmp / "cfile")))

    @cases.add("cli_pretrained_wrong_shape", "runner", "--pretrained weights of another model",
          ["w.pth"])
    def _(tmp):
        torch.save(ak.create_backbone("cnn_small", 3, in_chans=1, width=8).state_dict(),
                   tmp / "w.pth")
        return _cli(_tiny(tmp, shared, "--pretrained", str(tmp / "w.pth")))

    @cases.add("cli_swanlab_cloud_no_login", "runner", "--swanlab-mode cloud without a login",
          ["swanlab login"])
    def _(tmp):
        args = _tiny(tmp, shared)
        args[args.index("disabled")] = "cloud"
        home = tmp / "home"
        with contextlib.chdir(tmp):
            return _cli(args, env={"HOME": str(home), "SWANLAB_ROOT": str(home / ".swanlab"),
                                   "SWANLAB_API_KEY": ""})


def _cli_runs(cases: _Cases) -> None:
    """Inputs that run: duplicates, divergence."""
    shared = cases.shared

    @cases.add("cli_duplicate_seeds", "runner", "--seeds 0,0", ["duplicate seed"])
    def _(tmp):
        return _cli(_tiny(tmp, shared, "--seeds", "0,0"),
                    lambda: len(pd.read_csv(tmp / "out" / "results.csv")) == 1)

    @cases.add("cli_duplicate_arms", "runner", "--arms baseline,baseline", ["duplicate arm"])
    def _(tmp):
        return _cli(_tiny(tmp, shared, "--arms", "baseline,baseline"),
                    lambda: len(pd.read_csv(tmp / "out" / "results.csv")) == 1)

    @cases.add("cli_lr_diverges", "runner", "--lr 1e30: training diverges",
               ["failed", "not finite"])
    def _(tmp):
        return _cli(_tiny(tmp, shared, "--lr", "1e30"))


def _cli_resume(cases: _Cases) -> None:
    """A results folder used again: changed settings or data, fewer seeds, Ctrl-C."""
    shared = cases.shared

    @cases.add("cli_resume_changed_settings", "runner", "same --out, other --epochs",
          ["differs in: epochs"])
    def _(tmp):
        o = _cli(_tiny(tmp, shared))
        if o.error or o.exc:
            return o
        return _cli(_tiny(tmp, shared, "--epochs", "2"))

    @cases.add("cli_resume_changed_data", "runner", "same --out, a clip added to --data",
          ["clip added", "new.wav"])
    def _(tmp):
        data = _tree(tmp / "d")
        o = _cli(_tiny(tmp, shared, "--data", str(data)))
        if o.error or o.exc:
            return o
        _write(data / "a" / "new.wav", _tone(9))
        return _cli(_tiny(tmp, shared, "--data", str(data)))

    @cases.add("cli_rerun_fewer_seeds", "runner", "re-run with fewer seeds keeps the report whole",
          [], ok_expected=True)
    def _(tmp):
        o = _cli(_tiny(tmp, shared, "--seeds", "0,1"))
        if o.error or o.exc:
            return o
        return _cli(_tiny(tmp, shared, "--seeds", "0"),
                    lambda: sorted(pd.read_csv(tmp / "out" / "results.csv").seed) == [0, 1])

    @cases.add("cli_ctrl_c", "runner", "Ctrl-C during training", ["interrupted;", "pairs done"])
    def _(tmp):
        args = _tiny(tmp, shared, "--arms", "baseline,gain", "--seeds", "0,1,2")
        proc = subprocess.Popen([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + 120
        while (time.time() < deadline and proc.poll() is None
               and not list((tmp / "out" / "runs").glob("*/*.json"))):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if "Traceback" in err:
            return Obs(exc=err, rc=proc.returncode)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if proc.returncode == 130 and len(lines) == 1:
            return Obs(error=lines[0], rc=130)
        return Obs(error=err, rc=proc.returncode, check=False)


def _data_trees(cases: _Cases) -> None:
    """Dataset folders that are missing, empty or oddly laid out."""
    @cases.add("data_missing_path", "data tree", "a dataset path that does not exist", ["nowhere"])
    def _(tmp):
        return _data(tmp / "nowhere", tmp / "cache")

    @cases.add("data_empty_folder", "data tree", "an empty folder", ["no audio files"])
    def _(tmp):
        (tmp / "d").mkdir()
        return _data(tmp / "d", tmp / "cache")

    @cases.add("data_empty_class_folder", "data tree", "a class folder without audio", ["zydeco"])
    def _(tmp):
        (_tree(tmp / "d") / "zydeco").mkdir()
        return _data(tmp / "d", tmp / "cache")

    @cases.add("data_nested_folder", "data tree", "audio in a nested subfolder", ["a/sub"])
    def _(tmp):
        _write(_tree(tmp / "d") / "a" / "sub" / "deep.wav", _tone())
        return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 10)

    @cases.add("data_dangling_symlink", "data tree", "a dangling symlink in a class folder",
          ["b/gone.wav"])
    def _(tmp):
        os.symlink(tmp / "missing.wav", _tree(tmp / "d") / "b" / "gone.wav")
        return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 10)

    @cases.add("data_loose_file", "data tree", "an audio file beside the class folders",
          ["loose.wav"])
    def _(tmp):
        _write(_tree(tmp / "d") / "loose.wav", _tone())
        return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 10)

    @cases.add("data_other_extension", "data tree", "an .m4a file (not decoded)", ["a/song.m4a"])
    def _(tmp):
        (_tree(tmp / "d") / "a" / "song.m4a").write_bytes(b"\x00" * 64)
        return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 10)


def _data_sizes(cases: _Cases) -> None:
    """Datasets too small to split, and other layouts."""
    @cases.add("data_one_class", "data tree", "a one-class dataset", ["at least 2 classes"])
    def _(tmp):
        return _data(_tree(tmp / "d", {"a": 6}), tmp / "cache")

    @cases.add("data_class_too_small", "data tree", "20 vs 2 clips (holdout)", ["class 'b'"])
    def _(tmp):
        return _data(_tree(tmp / "d", {"a": 20, "b": 2}, n=400), tmp / "cache")

    @cases.add("data_kfold_class_too_small", "data tree", "3 clips of a class, 5 folds",
          ["class 'b'"])
    def _(tmp):
        return _data(_tree(tmp / "d", {"a": 10, "b": 3}, n=400), tmp / "cache", split="kfold")

    @cases.add("data_both_gtzan_folders", "data tree", "genres and genres_original side by side",
          ["genres_original", "genres"])
    def _(tmp):
        _tree(tmp / "d" / "genres")
        _tree(tmp / "d" / "genres_original")
        return _data(tmp / "d", tmp / "cache")

    @cases.add("data_not_a_csv", "data tree", "--data naming a .txt file", ["list.txt"])
    def _(tmp):
        (tmp / "list.txt").write_text("a.wav\n")
        return _data(tmp / "list.txt", tmp / "cache")

    @cases.add("data_class_all_unreadable", "data tree", "every file of a class corrupt", ["b"])
    def _(tmp):
        _tree(tmp / "d", {"a": 5, "b": 0})
        for i in range(3):
            (tmp / "d" / "b").mkdir(parents=True, exist_ok=True)
            (tmp / "d" / "b" / f"b{i}.wav").write_bytes(b"\x00" * 100)
        return _data(tmp / "d", tmp / "cache")


def _files(cases: _Cases) -> None:
    """Audio files that are corrupt, cut, NaN, loud, stereo, 8-bit, other rates."""
    def file_case(name, what, make, tokens, expect_n=10, ok_expected=False, check_ds=None,
                  **load_kwargs):
        @cases.add(name, "file", what, tokens, ok_expected)
        def _(tmp):
            make(_tree(tmp / "d"))
            return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == expect_n,
                         check_ds=check_ds, **load_kwargs)

    file_case("file_corrupt_wav", "garbage bytes named .wav",
              lambda d: (d / "a" / "bad.wav").write_bytes(b"RIFF\x00garbage" * 10),
              ["a/bad.wav", "unreadable"])
    file_case("file_empty_wav", "an empty .wav", lambda d: (d / "a" / "e.wav").write_bytes(b""),
              ["a/e.wav"])
    file_case("file_header_only_wav", "a WAV header with no frames",
              lambda d: _write(d / "a" / "h.wav", np.zeros(0, np.float32)), ["a/h.wav"])

    def cut(path: Path, keep: int) -> None:
        path.write_bytes(path.read_bytes()[:keep])

    file_case("file_truncated_wav", "a WAV cut at 4 kB (interrupted download)",
              lambda d: cut(_write(d / "a" / "cut.wav", _tone(1, 4 * SR)), 4096),
              ["a/cut.wav", "truncated"])
    def half(path: Path) -> None:
        cut(path, path.stat().st_size // 2)

    file_case("file_truncated_flac", "a FLAC cut in half",
              lambda d: half(_write(d / "a" / "cut.flac", _tone(1, 4 * SR))), ["a/cut.flac"])
    file_case("file_truncated_aiff", "an AIFF cut short",
              lambda d: cut(_write(d / "a" / "cut.aiff", _tone(1, 4 * SR)), 3000),
              ["a/cut.aiff", "truncated"])

    def nan_file(d, value, name, everywhere=False):
        x = np.full(SR, value, np.float32) if everywhere else _tone(2)
        if not everywhere:
            x[100] = value
        _write(d / "b" / name, x, "FLOAT")

    file_case("file_nan_samples", "a float WAV with a NaN sample",
              lambda d: nan_file(d, np.nan, "nan.wav"), ["b/nan.wav", "NaN"])
    file_case("file_all_nan", "a float WAV of NaN only",
              lambda d: nan_file(d, np.nan, "allnan.wav", True), ["b/allnan.wav", "NaN"])
    file_case("file_inf_samples", "a float WAV with +inf",
              lambda d: nan_file(d, np.inf, "inf.wav"), ["b/inf.wav", "NaN/inf"])
    file_case("file_over_full_scale", "a float WAV peaking at 3.0",
              lambda d: _write(d / "b" / "loud.wav", 3 * _tone(1, amp=1.0), "FLOAT"),
              ["b/loud.wav", "clipped"], expect_n=11,
              check_ds=lambda ds: abs(float(ds.clip(ds.ids.index("b/loud.wav")).abs().max())
                                      - 1.0) < 1e-3)
    file_case("file_stereo", "a stereo file (downmixed)",
              lambda d: _write(d / "b" / "st.wav", np.stack([_tone(1), _tone(1)], 1)), [],
              expect_n=11, ok_expected=True,
              check_ds=lambda ds: np.allclose(ds.clip(ds.ids.index("b/st.wav")).numpy(),
                                              _tone(1), atol=2e-4))
    file_case("file_8bit", "an 8-bit unsigned WAV",
              lambda d: _write(d / "b" / "u8.wav", _tone(1), "PCM_U8"), [], expect_n=11,
              ok_expected=True)
    file_case("file_other_rate", "a 44.1 kHz file (resampled)",
              lambda d: _write(d / "b" / "hi.wav", _tone(1, 44100), sr=44100), [], expect_n=11,
              ok_expected=True,
              check_ds=lambda ds: int(ds.lengths[ds.ids.index("b/hi.wav")]) == SR)
    file_case("file_uppercase_extension", "a .WAV file", lambda d: _write(d / "b" / "UP.WAV",
                                                                          _tone(1)),
              [], expect_n=11, ok_expected=True)

    @cases.add("file_read_failure_not_cached", "file", "a read failure, then the file is fixed",
          ["Permission denied"])
    def _(tmp):
        _tree(tmp / "d")
        real, state = decode._decode, {"fail": True}

        def flaky(path, *a, **k):
            if state["fail"] and path.name == "a1.wav":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *a, **k)

        decode._decode = flaky
        try:
            first = _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 9)
            state["fail"] = False
            second = _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 10)
        finally:
            decode._decode = real
        return Obs(warned=first.warned, error=first.error or second.error,
                   exc=first.exc or second.exc, check=bool(first.check and second.check))


def _manifests(cases: _Cases) -> None:
    """CSV manifests with format problems."""
    def manifest_case(name, what, text, tokens, split="holdout", raw=None):
        @cases.add(name, "file", what, tokens)
        def _(tmp):
            _tree(tmp / "d", {"a": 4, "b": 4})
            m = tmp / "d" / "m.csv"
            if raw is not None:
                m.write_bytes(raw)
            else:
                m.write_text(text)
            return _data(m, tmp / "cache", split=split)

    rows = "".join(f"{c}/{c}{i}.wav,{c},{s}\n" for c in "ab"
                   for i, s in enumerate(["train", "train", "val", "test"]))
    manifest_case("manifest_extra_comma", "a row with an unquoted comma",
                  "path,label\na/a0.wav,a\na/a, 1.wav,a\n", ["m.csv", "line 3"])
    manifest_case("manifest_latin1", "a Latin-1 manifest", None, ["m.csv", "line 2", "UTF-8"],
                  raw="path,label\na/a0.wav,caf\u00e9\n".encode("latin-1"))
    manifest_case("manifest_missing_file", "a row naming a missing file",
                  "path,label\na/a0.wav,a\na/zz.wav,b\n", ["zz.wav", "line 3"])
    manifest_case("manifest_missing_columns", "columns file,class", "file,class\na/a0.wav,a\n",
                  ["m.csv", "'path'"])
    manifest_case("manifest_duplicate_row", "the same file twice",
                  "path,label\na/a0.wav,a\n./a/a0.wav,b\n", ["a/a0.wav", "twice"])
    manifest_case("manifest_empty", "an empty manifest", "", ["m.csv", "empty"])
    manifest_case("manifest_unknown_split", "split value 'dev'",
                  "path,label,split\n" + rows.replace(",val\n", ",dev\n"), ["'dev'"],
                  split="manifest")
    manifest_case("manifest_class_only_in_val", "a class never in train",
                  "path,label,split\n" + rows.replace("b,train", "b,val"), ["class 'b'",
                                                                            "train 0"],
                  split="manifest")
    manifest_case("manifest_unterminated_quote", "an unterminated quote",
                  'path,label\n"a/a0.wav,a\n', ["m.csv"])


def _library(cases: _Cases) -> None:
    """Library calls with bad arguments or inputs."""
    def lib_case(name, what, fn, tokens, check=None, ok_expected=False):
        cases.add(name, "library", what, tokens, ok_expected)(lambda tmp: _lib(fn, check))

    i16 = torch.zeros(2, 1, 1000, dtype=torch.int16)
    x = 0.1 * torch.randn(2, 1, 1000, generator=torch.Generator().manual_seed(0))
    lib_case("lib_gain_int16", "Gain on int16", lambda: ak.Gain(p=1.0)(i16), ["int16"])
    lib_case("lib_mixup_int16", "Mixup on int16",
             lambda: ak.Mixup(num_classes=2)(i16, target=torch.tensor([0, 1])), ["int16"])
    lib_case("lib_mel_int16", "MelFrontend on int16",
             lambda: ak.MelFrontend(SR, n_fft=256)(i16), ["int16"])
    lib_case("lib_compose_int16", "Compose(Gain, MelFrontend) on int16",
             lambda: ak.Compose([ak.Gain(p=1.0), ak.MelFrontend(SR, n_fft=256)])(i16),
             ["int16"])
    lib_case("lib_noise_snr_nan", "GaussianNoise(snr_db=nan)",
             lambda: ak.GaussianNoise(snr_db=math.nan), ["snr_db"])
    lib_case("lib_gain_inf", "Gain(gain_db=inf)", lambda: ak.Gain(gain_db=math.inf),
             ["gain_db"])
    lib_case("lib_mixup_alpha_inf", "Mixup(alpha=inf)", lambda: ak.Mixup(alpha=math.inf),
             ["alpha"])
    lib_case("lib_mel_top_db_inf", "MelFrontend(top_db=inf)",
             lambda: ak.MelFrontend(SR, top_db=math.inf), ["top_db"])
    lib_case("lib_mel_power_nan", "MelFrontend(power=nan)",
             lambda: ak.MelFrontend(SR, power=math.nan), ["power"])
    lib_case("lib_mel_empty_batch", "MelFrontend on B=0: an empty batch of features",
             lambda: ak.MelFrontend(SR, n_fft=256, n_mels=32)(torch.zeros(0, 1, 1000)), [],
             check=lambda y: tuple(y.shape[:3]) == (0, 1, 32), ok_expected=True)
    lib_case("lib_mel_empty_clip", "MelFrontend on T=0",
             lambda: ak.MelFrontend(SR, n_fft=256)(torch.zeros(2, 1, 0)), ["empty clips"])
    lib_case("lib_mel_short_clip", "MelFrontend on clips shorter than n_fft",
             lambda: ak.MelFrontend(SR, n_fft=256)(torch.zeros(2, 1, 100)), ["n_fft=256"])
    lib_case("lib_mel_nmels_too_high", "MelFrontend(n_mels=128, n_fft=64)",
             lambda: ak.MelFrontend(SR, n_fft=64, n_mels=128, log=None)(x), ["all-zero"],
             check=lambda y: tuple(y.shape[:3]) == (2, 1, 128))
    lib_case("lib_generator_int", "generator=123",
             lambda: ak.Gain(p=1.0)(x, generator=123), ["generator"])
    lib_case("lib_mask_width_inf", "TimeMasking(max_width=inf)",
             lambda: ak.TimeMasking(math.inf), ["max_width"])
    lib_case("lib_p_nan", "Gain(p=nan)", lambda: ak.Gain(p=math.nan), ["p "])
    lib_case("lib_crop_zero", "RandomCrop(0)", lambda: ak.RandomCrop(0), ["length"])
    lib_case("lib_degenerate_range", "Gain(gain_db=(3, 3)): a valid fixed gain",
             lambda: ak.Gain(gain_db=(3, 3), p=1.0)(x), [], ok_expected=True,
             check=lambda y: torch.allclose(y, x * 10 ** (3 / 20), atol=1e-6))


_GROUPS = (_cli_errors, _cli_inputs, _cli_runs, _cli_resume, _data_trees, _data_sizes, _files,
           _manifests, _library, *sweep_doc_runner.GROUPS, *sweep_doc_library.GROUPS)


def _cases(shared: Path) -> list[Case]:
    """Every case, each group of :data:`_GROUPS` in turn."""
    cases = _Cases(shared)
    for group in _GROUPS:
        group(cases)
    return cases


def doc_coverage(cases: list[Case]) -> list[str]:
    """The ids of :data:`DOC_IDS` no case repeats (empty: the sweep holds every one)."""
    held = {d for c in cases for d in c.doc}
    return [d for d in DOC_IDS if d not in held]


# ---------------------------------------------------------------------------
# Run and report


def run_cases(names: list[str] | None, out: Path, timeout: int = 180) -> list[Row]:
    """Run the named cases (all when ``None``) under ``out``; return their rows."""
    out = Path(out)
    shared = out / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    cases = _cases(shared)
    if names is not None:
        by_name = {c.name: c for c in cases}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown case(s) {unknown}; known: {sorted(by_name)}")
        cases = [by_name[n] for n in names]
    rows = []
    for c in cases:
        tmp = out / "cases" / c.name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        t0 = time.time()
        try:
            with _time_limit(timeout):
                obs = c.run(tmp)
            outcome, detail = classify(c, obs)
        except _Timeout:
            outcome, detail = "hang", f"no result in {timeout} s"
        except Exception:
            outcome, detail = "traceback", traceback.format_exc().strip().splitlines()[-1][:200]
        rows.append(Row(c.name, c.category, c.what, outcome, detail.replace("|", "\\|"),
                        time.time() - t0, c.doc))
    return rows


def summary(rows: list[Row], seconds: float | None = None) -> str:
    """One line: how many cases (of them, the 2026-12-06 ids), each outcome's count (the
    bad ones always, zeros included), and the wall time."""
    counts = Counter(r.outcome for r in rows)
    ids = {d for r in rows for d in r.doc}
    good = ", ".join(f"{counts[k]} {k}" for k in GOOD if counts[k])
    bad = ", ".join(f"{counts[k]} {k}" for k in BAD)
    took = "" if seconds is None else f"; {seconds:.0f} s"
    return (f"{len(rows)} kinds of bad or unusual input ({len(ids)} of the {len(DOC_IDS)} "
            f"ids of 2026-12-06); {good}; {bad}{took}")


def markdown(rows: list[Row], seconds: float | None = None) -> str:
    lines = [summary(rows, seconds), "",
             "| case | doc | category | input | outcome | what it said | s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {' '.join(r.doc)} | {r.category} | {r.what} | "
                     f"{r.outcome} | {r.detail} | {r.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.sweep_bad_inputs",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the cases' inputs and the table")
    p.add_argument("--only", help="comma list of case names")
    p.add_argument("--timeout", type=int, default=180, help="seconds per case (default 180)")
    p.add_argument("--budget", type=float, help="fail when the whole sweep takes longer "
                   "(seconds; CI: 180)")
    p.add_argument("--quiet", action="store_true", help="print only the cases that are not "
                   "good and the summary line (the whole table is in <out>/sweep.md)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    t0 = time.time()
    try:
        rows = run_cases(names, Path(args.out), args.timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seconds = time.time() - t0
    table = markdown(rows, seconds)
    Path(args.out, "sweep.md").write_text(table)
    bad = [r for r in rows if not r.good]
    print(markdown(bad, seconds) if args.quiet else table)
    print(summary(rows, seconds))
    if args.budget is not None and seconds > args.budget:
        print(f"error: the sweep took {seconds:.0f} s, over its budget of {args.budget:g} s",
              file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*TorchCodec.*")
    raise SystemExit(main())
