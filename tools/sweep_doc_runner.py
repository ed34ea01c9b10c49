"""The runner cases (D.., C.., P..) of the sweep of 2026-12-06, for :mod:`tools.sweep_bad_inputs`.

``$A`` of the report is :func:`_a`: the quick preset at 8 kHz, 1-s crops, one epoch,
the baseline arm, seed 0, no SwanLab, on ``--data`` (by default :func:`_base`: 2
classes x 6 one-second clips, ``a/0_00.wav`` ... ``b/1_05.wav``). Cases run the CLI
in-process (:func:`tools.sweep_core._cli`), or as a process where a signal, a lock
or a second command is the point (:func:`_spawn`), or the data path
(:func:`tools.sweep_core._data`) where the row is about reading files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch

from experiments import plan as plan_module
from experiments.data import decode
from experiments.data.splits import make_splits
from experiments.lock import OutLock
from tools.sweep_core import ROOT, SR, Obs, _Cases, _cli, _data, _tone, _write

TOKEN_LOCKED = ("in use by another run", "PID")


def _base(root: Path, classes=("a", "b"), n: int = 6) -> Path:
    """2 classes x 6 one-second 8 kHz clips, each its own tone: ``<class>/<k>_<i>.wav``."""
    for k, name in enumerate(classes):
        for i in range(n):
            path = root / name / f"{k}_{i:02d}.wav"
            if not path.exists():
                _write(path, _tone(6 * k + i))
    return root


def _shared_base(shared: Path) -> Path:
    """One base data set for the cases that do not change it (its decode cache is shared)."""
    return _base(shared / "data" / "base")


def _a(tmp: Path, shared: Path, data: Path | str | None, *extra: str) -> list[str]:
    """The report's ``$A`` with ``--out <case>/out``; later flags override."""
    args = ["--preset", "quick", "--sample-rate", str(SR), "--crop-seconds", "1",
            "--epochs", "1", "--arms", "baseline", "--seeds", "0", "--swanlab-mode",
            "disabled", "--no-progress", "--set", "n_fft=256", "--set", "hop_length=128",
            "--set", "n_mels=32", "--set", "batch_size=8", "--cache-dir",
            str(shared / "cache"), "--out", str(tmp / "out")]
    return args + (["--data", str(data)] if data is not None else []) + list(extra)


def _rows(out: Path) -> pd.DataFrame:
    path = out / "results.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["arm", "seed"])


def _config(out: Path) -> dict:
    path = out / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _first_bad(*runs) -> Obs:
    """Run each variant (a callable returning ``(Obs, tokens)``) until one is not a
    one-line error naming its tokens; that one decides, else the last."""
    obs = Obs()
    for run in runs:
        obs, tokens = run()
        msg = obs.error or ""
        one_line = len([ln for ln in msg.splitlines() if ln.strip()
                        and not ln.startswith("warning:")]) == 1
        if obs.exc is not None or obs.error is None or not one_line or not all(
                t in msg for t in tokens):
            return Obs(verdict=("traceback" if obs.exc else "silent change" if obs.error is None
                                else "cryptic error", (obs.exc or obs.error or
                                                       "accepted: " + obs.warned)[-200:]))
    return Obs(verdict=("one-line error", (obs.error or "").splitlines()[-1]))


def _spawn(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """``python -m experiments.ablate args`` as a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _stderr_lines(err: str) -> list[str]:
    """The runner's own lines of a process's stderr: not its warnings, not SwanLab's."""
    lines = (_ANSI.sub("", ln).strip() for ln in err.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("warning:")
            and "swanlab" not in ln.lower()]


@contextlib.contextmanager
def _file_size_limit(nbytes: int):
    """``ulimit -f``: writes past ``nbytes`` fail with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@contextlib.contextmanager
def _disk_full_for(name: str):
    """A full disk for files named ``name``: their fsync fails with ENOSPC."""
    real = os.fsync

    def fsync(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if f".{name}." in Path(path).name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    with mock.patch("os.fsync", fsync):
        yield


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` read-only: chmod, and for root (who ignores modes) the runner's
    ``os.access`` check told so."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    real = os.access

    def access(path, mode, *a, **k):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)

    try:
        with mock.patch.object(plan_module.os, "access", access) if os.geteuid() == 0 \
                else contextlib.nullcontext():
            yield folder
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------------------
# 2. Runner data


def _data_layouts(cases: _Cases) -> None:
    """D01-D08: names, symlinks, manifests that parse."""
    shared = cases.shared

    def runs(doc, what, make, check, tokens=()):
        @cases.add(f"doc_{doc}", "runner data", what, tokens, ok_expected=not tokens, doc=doc)
        def _(tmp):
            data = make(tmp)
            return _cli(_a(tmp, shared, data), lambda: check(tmp / "out"))

    runs("D01", "class folders 'hip hop 🎵', 'música clásica', files 'clip 0 – ünï 🎧.wav'",
         lambda tmp: _base(tmp / "d", ("hip hop 🎵", "música clásica")),
         lambda out: set(_config(out)["dataset"]["classes"]) == {"hip hop 🎵", "música clásica"})
    runs("D02", "a class folder named 'rock, \"pop\"'",
         lambda tmp: _base(tmp / "d", ("a", 'rock, "pop"')),
         lambda out: 'rock, "pop"' in _config(out)["dataset"]["classes"] and len(_rows(out)))
    runs("D03", "class folders Dog, dog, cat",
         lambda tmp: _base(tmp / "d", ("Dog", "cat", "dog")),
         lambda out: len(_config(out)["dataset"]["classes"]) == 3)

    def outside(tmp):
        _base(tmp / "elsewhere", ("a", "b"))
        (tmp / "d").mkdir()
        shutil.copytree(tmp / "elsewhere" / "a", tmp / "d" / "a")
        os.symlink(tmp / "elsewhere" / "b", tmp / "d" / "b")
        return tmp / "d"

    runs("D04", "class folder b is a symlink to a folder outside the data set", outside,
         lambda out: _config(out)["dataset"]["clips"] == 12)

    def sibling(tmp):
        _base(tmp / "d")
        os.symlink("a", tmp / "d" / "c")
        return tmp / "d"

    runs("D05", "class folder c is a symlink to sibling class a (the same audio, two labels)",
         sibling, lambda out: len(_config(out)["dataset"]["duplicates"]) == 6,
         tokens=("same audio", "a/0_00.wav", "c/0_00.wav"))

    @cases.add("doc_D06", "runner data", "a manifest whose paths are relative to the working "
               "folder", ["m.csv", "line 2", "does not exist"], doc="D06")
    def _(tmp):
        base = _base(tmp / "data" / "base")
        (tmp / "data" / "D06").mkdir()
        m = tmp / "data" / "D06" / "m.csv"
        m.write_text("path,label\n" + "".join(f"data/base/{f.parent.name}/{f.name},"
                                              f"{f.parent.name}\n"
                                              for f in sorted(base.glob("*/*.wav"))))
        return _data(m, tmp / "cache")

    def manifest(tmp: Path, text: str | bytes) -> Path:
        _base(tmp / "d")
        m = tmp / "d" / "m.csv"
        m.write_bytes(text if isinstance(text, bytes) else text.encode())
        return m

    def rows(fmt=lambda c, i, s: f"{c}/{'ab'.index(c)}_{i:02d}.wav,{c},{s}"):
        return [fmt(c, i, s) for c in "ab" for i, s in enumerate(
            ["train", "train", "train", "train", "val", "test"])]

    def split_sizes(ds, want=(8, 2, 2)):
        s = make_splits(ds, "manifest")
        return tuple(int(s[k].shape[0]) for k in ("train", "val", "test")) == want

    @cases.add("doc_D07", "runner data", "a manifest with a UTF-8 BOM and CRLF line endings", [],
               ok_expected=True, doc="D07")
    def _(tmp):
        m = manifest(tmp, b"\xef\xbb\xbf" + "\r\n".join(["path,label,split", *rows()]).encode()
                     + b"\r\n")
        return _data(m, tmp / "cache", split="manifest", check_ds=split_sizes)

    @cases.add("doc_D08", "runner data", "quoted paths holding commas", [], ok_expected=True,
               doc="D08")
    def _(tmp):
        _base(tmp / "d")
        for f in (tmp / "d" / "a").glob("*.wav"):
            f.rename(f.with_name(f"clip {f.stem}, take 2.wav"))
        lines = [f'"{p.relative_to(tmp / "d").as_posix()}",{p.parent.name}'
                 for p in sorted((tmp / "d").glob("*/*.wav"))]
        m = tmp / "d" / "m.csv"
        m.write_text("path,label\n" + "\n".join(lines) + "\n")
        return _data(m, tmp / "cache", lambda ids: len(ids) == 12)


def _data_duplicates_and_labels(cases: _Cases) -> None:
    """D09-D11, D14: a manifest alias, labels and split values, a long file."""
    shared = cases.shared

    @cases.add("doc_D09", "runner data", "a manifest listing a/0_00.wav (train) and "
               "alias/0_00.wav (test), alias a symlink to a",
               ["same audio", "a/0_00.wav", "alias/0_00.wav"], doc="D09")
    def _(tmp):
        data = _base(tmp / "d")
        os.symlink("a", data / "alias")
        lines = [f"{c}/{'ab'.index(c)}_{i:02d}.wav,{c},{s}" for c in "ab" for i, s in
                 enumerate(["train", "train", "train", "train", "val", "test"])]
        m = data / "m.csv"
        m.write_text("path,label,split\n" + "\n".join(lines) + "\nalias/0_00.wav,a,test\n")
        return _cli(_a(tmp, shared, m), lambda: len(_config(tmp / "out")["dataset"]
                                                    ["duplicates"]) == 1)

    @cases.add("dup_strict", "runner data", "--strict-duplicates on a class folder linked to "
               "another", ["same audio", "--strict-duplicates"])
    def _(tmp):
        _base(tmp / "d")
        os.symlink("a", tmp / "d" / "c")
        return _cli(_a(tmp, shared, tmp / "d", "--strict-duplicates"))

    @cases.add("doc_D10", "runner data", "manifest labels ' a', 'a ', 'a', 'A'", ["'A'"],
               doc="D10")
    def _(tmp):
        _base(tmp / "d")
        labels = [" a", "a ", "a", " a", "a ", "A"]
        lines = [f"a/0_{i:02d}.wav,{labels[i]}" for i in range(6)]
        lines += [f"b/1_{i:02d}.wav,b" for i in range(6)]
        m = tmp / "d" / "m.csv"
        m.write_text("path,label\n" + "\n".join(lines) + "\n")
        return _data(m, tmp / "cache")

    @cases.add("doc_D11", "runner data", "split values validation, Test, TRAIN, ' VAL '", [],
               ok_expected=True, doc="D11")
    def _(tmp):
        _base(tmp / "d")
        words = ["TRAIN", "train", "Train", "TRAIN", "validation", "Test"]
        other = ["train", "TRAIN", "train", "train", " VAL ", "test"]
        lines = [f"a/0_{i:02d}.wav,a,{words[i]}" for i in range(6)]
        lines += [f"b/1_{i:02d}.wav,b,{other[i]}" for i in range(6)]
        m = tmp / "d" / "m.csv"
        m.write_text("path,label,split\n" + "\n".join(lines) + "\n")

        def sizes(ds):
            s = make_splits(ds, "manifest")
            return [int(s[k].shape[0]) for k in ("train", "val", "test")] == [8, 2, 2]

        return _data(m, tmp / "cache", split="manifest", check_ds=sizes)

    @cases.add("doc_D14", "runner data", "one 10-minute file among 1-s clips", [],
               ok_expected=True, doc="D14")
    def _(tmp):
        data = _base(tmp / "d")
        _write(data / "a" / "0_99_long.wav", np.tile(_tone(3), 600))
        t0 = time.time()
        return _cli(_a(tmp, shared, data), lambda: time.time() - t0 < 60)


def _wav(samples: np.ndarray, sr: int = SR, data_size: int | None = None,
         tail: bytes = b"") -> bytes:
    """A PCM-16 mono WAV by hand: ``data_size`` overrides the data chunk's size field."""
    data = samples.astype("<i2").tobytes()
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, sr, sr * 2, 2, 16)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + fmt + struct.pack("<4sI", b"data", size) + data + tail
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def _data_files(cases: _Cases) -> None:
    """D16-D21: formats, rates, tiny files, hidden-looking class names, odd WAV chunks."""
    def file_case(doc, what, make, check, tokens=(), n=13):
        @cases.add(f"doc_{doc}", "runner data", what, tokens, ok_expected=not tokens, doc=doc)
        def _(tmp):
            clip_id = make(_base(tmp / "d"))
            return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == n,
                         check_ds=lambda ds: check(ds, clip_id))

    def same(want, atol=2e-4):
        return lambda ds, clip_id: np.allclose(ds.clip(ds.ids.index(clip_id)).numpy(), want,
                                               atol=atol)

    def put(name, x, subtype="PCM_16", fmt=None):
        """A maker: write ``a/<name>``, return its clip id."""
        def make(d):
            _write(d / "a" / name, x, subtype, fmt=fmt)
            return f"a/{name}"
        return make

    six = np.stack([_tone(k) for k in range(6)], 1)
    file_case("D16", "WAV data in a file named .mp3", put("wav_named.mp3", _tone(2),
                                                          fmt="WAV"), same(_tone(2)))
    file_case("D17a", "a 24-bit PCM WAV", put("p24.wav", _tone(2), "PCM_24"), same(_tone(2)))
    file_case("D17b", "a 64-bit float WAV", put("f64.wav", _tone(2), "DOUBLE"),
              same(_tone(2)))
    file_case("D17c", "a 6-channel WAV (downmixed to the channel mean)",
              put("six.wav", six, "FLOAT"), same(six.mean(1)))

    @cases.add("doc_D18", "runner data", "class a at 8 kHz, class b at 48 kHz", [],
               ok_expected=True, doc="D18")
    def _(tmp):
        t48 = np.arange(48000) / 48000
        for i in range(6):
            _write(tmp / "d" / "a" / f"a{i}.wav", _tone(i))
            _write(tmp / "d" / "b" / f"b{i}.wav", (0.3 * np.sin(2 * np.pi * (300 + 20 * i) * t48)
                                                   ).astype(np.float32), sr=48000)
        return _data(tmp / "d", tmp / "cache", lambda ids: len(ids) == 12,
                     check_ds=lambda ds: bool((ds.lengths == SR).all()))

    file_case("D19", "a mono file of 1 sample (kept, zero-padded to the crop)",
              put("one.wav", np.array([0.5], np.float32)),
              lambda ds, c: int(ds.lengths[ds.ids.index(c)]) == 1)

    @cases.add("doc_D20", "runner data", "a class folder named __noise__ beside a and b", [],
               ok_expected=True, doc="D20")
    def _(tmp):
        data = _base(tmp / "d")
        shutil.copytree(data / "a", data / "__noise__")
        return _data(data, tmp / "cache", lambda ids: len(ids) == 18,
                     check_ds=lambda ds: "__noise__" in ds.classes)

    @cases.add("doc_D21", "runner data", "WAVs with a LIST chunk after the data, and streamed "
               "data sizes 0 and 0xFFFFFFFF", ["zz_stream_zero.wav"], doc="D21")
    def _(tmp):
        data = _base(tmp / "d")
        x = np.round(_tone(4) * 32767).astype(np.int16)
        info = b"INFOISFT\x04\x00\x00\x00sw\x00\x00"
        (data / "b" / "zz_list.wav").write_bytes(_wav(x, tail=b"LIST" + struct.pack(
            "<I", len(info)) + info))
        (data / "b" / "zz_stream_ffff.wav").write_bytes(_wav(x, data_size=0xFFFFFFFF))
        (data / "b" / "zz_stream_zero.wav").write_bytes(_wav(x, data_size=0))

        def check(ds):
            return all(int(ds.lengths[ds.ids.index(f"b/{n}")]) == SR
                       for n in ("zz_list.wav", "zz_stream_ffff.wav"))

        return _data(data, tmp / "cache", lambda ids: len(ids) == 14, check_ds=check)


def _data_refused(cases: _Cases) -> None:
    """D24-D28: manifests and a --data that are refused."""
    def manifest_case(doc, what, text, tokens):
        @cases.add(f"doc_{doc}", "runner data", what, tokens, doc=doc)
        def _(tmp):
            _base(tmp / "d")
            m = tmp / "d" / "m.csv"
            m.write_bytes(text)
            return _data(m, tmp / "cache")

    manifest_case("D24a", "manifest header Path,Label,Split",
                  b"Path,Label,Split\na/0_00.wav,a,train\n", ["'path'", "'Path'"])
    manifest_case("D24b", "a semicolon-separated manifest",
                  b"path;label;split\na/0_00.wav;a;train\n", ["path;label;split"])
    manifest_case("D24c", "a UTF-16 manifest (Excel 'Unicode text')",
                  "path,label\na/0_00.wav,a\n".encode("utf-16"), ["m.csv", "UTF-8"])
    manifest_case("D24d", "Windows backslash paths a\\0_00.wav",
                  b"path,label\na\\0_00.wav,a\n", ["a\\0_00.wav", "line 2"])

    @cases.add("doc_D25", "runner data", "a manifest of only a BOM; a header and blank or ,, "
               "rows", [], doc="D25")
    def _(tmp):
        _base(tmp / "d")
        m = tmp / "d" / "m.csv"

        def one(text, tokens):
            def run():
                m.write_bytes(text)
                return _data(m, tmp / "cache"), tokens
            return run

        return _first_bad(one(b"\xef\xbb\xbf", ["m.csv", "empty"]),
                          one(b"path,label\n\n,,\n\n", ["m.csv", "lists no audio"]))

    @cases.add("doc_D28", "runner data", "--data pointing at one class folder",
               ["6 audio files lie directly", "own subfolder"], doc="D28")
    def _(tmp):
        return _data(_base(tmp / "d") / "a", tmp / "cache")


def _data_cache_and_banks(cases: _Cases) -> None:
    """D29-D32: the decode cache's key, --noise-dir and --ir-dir."""
    shared = cases.shared

    @cases.add("doc_D29", "runner data", "K1/ds and K2/ds: same names, sizes and mtimes, other "
               "audio, one cache", [], ok_expected=True, doc="D29")
    def _(tmp):
        for k, root in enumerate((tmp / "K1" / "ds", tmp / "K2" / "ds")):
            for c in "ab":
                for i in range(3):
                    f = _write(root / c / f"{i}.wav", _tone(10 * k + 3 * "ab".index(c) + i))
                    os.utime(f, (1577836800, 1577836800))  # 2020-01-01, as archives do
        own = decode.load_dataset(tmp / "K2" / "ds", SR, tmp / "own-cache", progress=False)
        first = _data(tmp / "K1" / "ds", tmp / "cache", split="tutorial")
        if first.error or first.exc:
            return first
        return _data(tmp / "K2" / "ds", tmp / "cache", split="tutorial",
                     check_ds=lambda ds: ds.digests == own.digests != [])

    def bank_run(tmp, arm, flag, folder, check):
        return _cli(_a(tmp, shared, _shared_base(shared), "--arms", arm, flag, str(folder)),
                    check)

    @cases.add("doc_D30", "runner data", "--arms background_noise --noise-dir <a folder with a "
               "NaN file>", ["n.wav", "NaN"], doc="D30")
    def _(tmp):
        _write(tmp / "N" / "good.wav", 0.3 * _tone(5), "FLOAT")
        x = 0.3 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
        x[100:200] = np.nan
        _write(tmp / "N" / "n.wav", x, "FLOAT")
        return bank_run(tmp, "background_noise", "--noise-dir", tmp / "N", lambda: any(
            "n.wav" in f for v in _config(tmp / "out")["banks"]["noise_dir"]["skipped"].values()
            for f in v))

    @cases.add("doc_D31", "runner data", "--arms reverb --ir-dir <a_room.wav, b_silent.wav>",
               ["b_silent.wav", "silent"], doc="D31")
    def _(tmp):
        from augkit.banks import synthetic_room_irs
        _write(tmp / "I" / "a_room.wav", synthetic_room_irs(1, SR, rt60=(0.2, 0.3))[0].numpy(),
               "FLOAT")
        _write(tmp / "I" / "b_silent.wav", np.zeros(800, np.float32), "FLOAT")
        return bank_run(tmp, "reverb", "--ir-dir", tmp / "I", lambda: any(
            "b_silent.wav" in f for v in _config(tmp / "out")["banks"]["ir_dir"]["skipped"]
            .values() for f in v))

    @cases.add("doc_D32", "runner data", "--noise-dir <empty folder>", ["holds no audio files"],
               doc="D32")
    def _(tmp):
        (tmp / "N").mkdir()
        return _cli(_a(tmp, shared, _shared_base(shared), "--noise-dir", str(tmp / "N")))


# ---------------------------------------------------------------------------
# 3. Runner config/CLI


def _errors(cases: _Cases, doc: str, what: str, variants: list[tuple[list[str], list[str]]]
            ) -> None:
    """A row of bad settings: every variant ``(extra args, tokens)`` a one-line error."""
    shared = cases.shared

    @cases.add(f"doc_{doc}", "runner config", what, [], doc=doc)
    def _(tmp):
        base = _shared_base(shared)
        return _first_bad(*((lambda extra=extra, tokens=tokens: (
            _cli(_a(tmp, shared, base, *extra)), tokens)) for extra, tokens in variants))


def _config_values(cases: _Cases) -> None:
    """C01-C07: numbers and types of settings."""
    _errors(cases, "C01", "--set lr=NaN", [(["--set", "lr=NaN"], ["lr"])])
    _errors(cases, "C02", "--set lr=0, lr=-0.001", [(["--set", "lr=0"], ["lr"]),
                                                   (["--set", "lr=-0.001"], ["lr"])])
    _errors(cases, "C03", "--set epochs=0", [(["--set", "epochs=0"], ["epochs"])])
    _errors(cases, "C04", "--set batch_size=0, eval_batch_size=0", [
        (["--set", "batch_size=0"], ["batch_size"]),
        (["--set", "eval_batch_size=0"], ["eval_batch_size"])])
    keys = ["weight_decay=Infinity", "label_smoothing=NaN", "warmup_epochs=-1", "top_db=NaN",
            "f_min=-5", "f_max=0", "max_seconds=Infinity", "crop_seconds=NaN", "gamma=0",
            "step_size=0", "input_size=-3", "hop_length=-1", "n_fft=0"]
    _errors(cases, "C05", "13 more numeric keys out of range", [
        (["--set", kv], [kv.split("=")[0]]) for kv in keys])
    types = [("epochs=ten", "epochs"), ("epochs=true", "epochs"), ("epochs=1e1", "epochs"),
             ('seeds=[0,"x"]', "seeds"), ("arms=5", "arms"), ('crop_seconds="1"',
                                                              "crop_seconds"),
             ('augment.gain.gain_db="loud"', "gain"), ("backbone_kwargs=[1]", "backbone_kwargs"),
             ("n_mels=32.0", "n_mels"), ("split=5", "split"), ("synthetic=3", "synthetic")]
    _errors(cases, "C06", "type confusion in 9 keys", [(["--set", kv], [k]) for kv, k in types])
    _errors(cases, "C07", "float seeds: --set 'seeds=[1.9, 2.2]', [0.5]", [
        (["--set", "seeds=[1.9, 2.2]"], ["seeds"]), (["--set", "seeds=[0.5]"], ["seeds"])])


def _config_sizes(cases: _Cases) -> None:
    """C08-C11: sizes that run, warned where they mislead."""
    shared = cases.shared

    def runs(doc, what, extra, tokens=(), check=lambda out: len(_rows(out)) == 1):
        @cases.add(f"doc_{doc}", "runner config", what, tokens, ok_expected=not tokens,
                   doc=doc)
        def _(tmp):
            return _cli(_a(tmp, shared, _shared_base(shared), *extra),
                        lambda: check(tmp / "out"))

    runs("C08", "--set batch_size=1000 with 8 training clips", ["--set", "batch_size=1000"],
         ["batch_size=1000", "training split"])
    runs("C09", "--crop-seconds 5 when every clip is 1 s", ["--crop-seconds", "5"])
    runs("C10", "--set hop_length=4096 with n_fft 256", ["--set", "hop_length=4096"],
         ["hop_length=4096", "n_fft=256"])
    runs("C11", "--set batch_size=1", ["--set", "batch_size=1"])


def _config_files(cases: _Cases) -> None:
    """C12-C16: --config files that are not a JSON object of settings."""
    shared = cases.shared

    def config_case(doc, what, files: list[tuple[str, bytes | None, list[str]]]):
        @cases.add(f"doc_{doc}", "runner config", what, [], doc=doc)
        def _(tmp):
            def one(name, content, tokens):
                def run():
                    path = tmp / "cfg" / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if content is None:
                        path.mkdir(exist_ok=True)
                    else:
                        path.write_bytes(content)
                    return _cli(_a(tmp, shared, _shared_base(shared), "--config",
                                   str(path))), tokens
                return run
            return _first_bad(*(one(*f) for f in files))

    config_case("C12", "--config naming a folder", [("adir", None, ["adir"])])
    config_case("C13", "--config of YAML", [("c.yaml", b"epochs: 2\n", ["c.yaml", "JSON"])])
    config_case("C14", "--config holding null, a string or a list", [
        ("null.json", b"null", ["null.json", "JSON object"]),
        ("str.json", b'"quick"', ["str.json", "JSON object"]),
        ("list.json", b'[["epochs", 2]]', ["list.json", "JSON object"])])
    config_case("C15", "--config with augment.gain 5, or augment [1]", [
        ("g.json", b'{"augment": {"gain": 5}}', ["augment"]),
        ("l.json", b'{"augment": [1]}', ["augment"])])
    config_case("C16", "--config saved with a UTF-8 BOM", [
        ("bom.json", b'\xef\xbb\xbf{"epochs": 1}', ["bom.json"])])


def _config_paths(cases: _Cases) -> None:
    """C17-C20, C26, C27: --out, --cache-dir and --data as paths."""
    shared = cases.shared

    @cases.add("doc_C17", "runner config", "--out in a read-only folder",
               ["--out", "permission denied"], doc="C17")
    def _(tmp):
        with _read_only(tmp / "ro") as ro:
            return _cli(_a(tmp, shared, _shared_base(shared), "--out", str(ro / "out")))

    @cases.add("doc_C20", "runner config", "--cache-dir in a read-only folder",
               ["--cache-dir", "permission denied"], doc="C20")
    def _(tmp):
        with _read_only(tmp / "ro") as ro:
            return _cli(_a(tmp, shared, _shared_base(shared), "--cache-dir",
                           str(ro / "cache")))

    def inside(doc, flag, sub):
        @cases.add(f"doc_{doc}", "runner config", f"{flag} inside --data, then the same "
                   "command again", [flag, "inside --data"], doc=doc)
        def _(tmp):
            data = _base(tmp / "d")
            before = sorted(p.name for p in data.iterdir())
            args = _a(tmp, shared, data, flag, str(data / sub))
            first = _cli(args)
            return first if first.error is None else Obs(
                error=_cli(args).error, check=sorted(p.name for p in data.iterdir()) == before)

    inside("C18", "--out", ".")
    inside("C19", "--cache-dir", "cache")

    @cases.add("doc_C26", "runner config", "--data \"\" (an unset variable) in a folder of "
               "class folders", ["--data", "empty"], doc="C26")
    def _(tmp):
        data = _base(tmp / "d")
        with contextlib.chdir(data):
            return _cli(_a(tmp, shared, "", "--out", str(tmp / "out")))

    @cases.add("doc_C27", "runner config", "--out=~/rt_tilde_eq (the shell leaves ~ after =)",
               [], ok_expected=True, doc="C27")
    def _(tmp):
        args = [a for a in _a(tmp, shared, _shared_base(shared)) if a != str(tmp / "out")]
        args.remove("--out")
        home = tmp / "home"
        home.mkdir()
        with contextlib.chdir(tmp):
            return _cli([*args, "--out=~/rt_tilde_eq"], lambda: (
                (home / "rt_tilde_eq" / "results.csv").exists() and not (tmp / "~").exists()),
                env={"HOME": str(home)})


def _config_device_and_names(cases: _Cases) -> None:
    """C21-C25, C28: devices, seeds, arms, typos."""
    cuda = torch.cuda.is_available()
    if cuda:  # the rows are about a CPU-only machine
        for doc in ("C21",):
            cases.add(f"doc_{doc}", "runner config", "--device cuda on a CPU-only machine "
                      "(skipped: CUDA is here)", [], ok_expected=True, doc=doc)(
                lambda tmp: Obs(check=True))
    else:
        _errors(cases, "C21", "--device cuda and cuda:1 on a CPU-only machine", [
            (["--device", "cuda"], ["--device cuda"]), (["--device", "cuda:1"],
                                                        ["--device cuda"])])
    _errors(cases, "C22", "--device mps", [(["--device", "mps"], ["mps"])])
    _errors(cases, "C23", "--seeds ',', ' ', -3", [
        (["--seeds", ","], ["seeds"]), (["--seeds", " "], ["seeds"]),
        (["--seeds=-3"], ["seeds"])])
    _errors(cases, "C24", "--arms all-minus-nosuch, gain+nosuch, all-minus-mixup", [
        (["--arms", "all-minus-nosuch"], ["nosuch"]), (["--arms", "gain+nosuch"], ["nosuch"]),
        (["--arms", "all-minus-mixup"], ["mixup"])])
    shared = cases.shared

    @cases.add("doc_C25", "runner config", "--seeds 18446744073709551616 (2**64): refused "
               "before any work", ["seeds", "2**64"], doc="C25")
    def _(tmp):
        obs = _cli(_a(tmp, shared, _shared_base(shared), "--seeds", "18446744073709551616"))
        obs.check = not (tmp / "out").exists() if obs.error else obs.check
        return obs

    _errors(cases, "C28", "--set augment.gian.gain_db=3, --set batchsize=4", [
        (["--set", "augment.gian.gain_db=3"], ["gian", "did you mean gain"]),
        (["--set", "batchsize=4"], ["batchsize", "did you mean batch_size"])])


def _resume(cases: _Cases) -> None:
    """C29-C34: a results folder used again after changes."""
    shared = cases.shared

    def first_then(doc, what, between, then_extra=(), tokens=(), check=None, arms="baseline"):
        @cases.add(f"doc_{doc}", "runner config", what, tokens, ok_expected=not tokens,
                   doc=doc)
        def _(tmp):
            base = _shared_base(shared)
            first = _cli(_a(tmp, shared, base, "--arms", arms))
            if first.error or first.exc:
                return first
            state = between(tmp / "out")
            again = _cli(_a(tmp, shared, base, "--arms", arms, *then_extra),
                         None if check is None else (lambda: check(tmp / "out", state)))
            if not tokens and again.stdout and check is None:
                again.check = True
            return again

    first_then("C29", "resume after changing augment.noise.snr_db (an arm not run)",
               lambda out: None, ["--set", "augment.noise.snr_db=[5,10]"], ["differs in"])
    first_then("C30", "resume after deleting runs/gain/seed0.json",
               lambda out: (out / "runs" / "gain" / "seed0.json").unlink() or _rows(out),
               arms="baseline,gain",
               check=lambda out, before: _rows(out).iloc[:, :12].equals(before.iloc[:, :12]))

    def edit(out):
        df = _rows(out)
        df.loc[0, "val_acc"] = 0.9999
        df.to_csv(out / "results.csv", index=False)
        return float(pd.read_csv(out / "results.csv").val_acc[0])

    first_then("C31", "results.csv edited by hand, then a re-run", edit,
               check=lambda out, edited: float(_rows(out).val_acc[0]) != edited)

    def cut(out):
        f = out / "runs" / "baseline" / "seed0.json"
        f.write_bytes(f.read_bytes()[:300])

    first_then("C32", "a run file truncated to 300 bytes", cut,
               tokens=["ignoring unreadable run file", "seed0.json"],
               check=lambda out, _: len(_rows(out)) == 1)
    first_then("C33", "config.json deleted, runs kept",
               lambda out: (out / "config.json").unlink(), tokens=["no readable config.json"])
    first_then("C34", "dataset.json deleted", lambda out: (out / "dataset.json").unlink(),
               check=lambda out, _: (out / "dataset.json").exists())


def _concurrency(cases: _Cases) -> None:
    """C35-C38: two commands on one --out; a killed driver."""
    shared = cases.shared

    def held(doc, what, first_arms, second_arms, final_check):
        @cases.add(f"doc_{doc}", "runner config", what, list(TOKEN_LOCKED), doc=doc)
        def _(tmp):
            base = _shared_base(shared)
            first = _cli(_a(tmp, shared, base, "--arms", first_arms))
            if first.error or first.exc:
                return first
            lock = OutLock(tmp / "out").acquire("the other command")  # another holder
            try:
                refused = _cli(_a(tmp, shared, base, "--arms", second_arms))
            finally:
                lock.release()
            after = _cli(_a(tmp, shared, base, "--arms", second_arms),
                         lambda: final_check(tmp / "out"))
            return Obs(error=refused.error, exc=refused.exc or after.exc,
                       check=after.check if refused.error else False, warned=refused.warned)

    held("C35", "a command on an --out another command holds (baseline, then gain)",
         "baseline", "gain", lambda out: sorted(set(_rows(out).arm)) == ["baseline", "gain"])
    held("C36", "the same command twice at once", "baseline", "baseline",
         lambda out: len(_rows(out)) == 1)

    @cases.add("doc_C37", "runner config", "two processes on one empty --out (baseline 2 "
               "epochs, gain 1 epoch), then baseline,gain 2 epochs", list(TOKEN_LOCKED),
               doc="C37")
    def _(tmp):
        base = _shared_base(shared)
        out = tmp / "out"
        a = _spawn(_a(tmp, shared, base, "--seeds", "0,1", "--epochs", "2"))
        try:
            _wait_for(lambda: (out / ".lock").exists() and (out / ".lock").stat().st_size > 0,
                      a)
            second = _cli(_a(tmp, shared, base, "--arms", "gain", "--seeds", "0,1"))
        finally:
            _, err = a.communicate(timeout=170)
        if a.returncode != 0:
            return Obs(exc=err, rc=a.returncode)
        final = _cli(_a(tmp, shared, base, "--arms", "baseline,gain", "--seeds", "0,1",
                        "--epochs", "2"))
        epochs = {len(json.loads(f.read_text())["history"]) for f in out.glob("runs/*/*.json")}
        mixed = epochs != {2} or (final.error is None and "2 done, 2 to run" not in final.stdout)
        return Obs(error=second.error, warned=second.warned, exc=second.exc or final.exc,
                   check=final.error is None, lost=mixed)

    @cases.add("doc_C38", "runner config", "the driver SIGKILLed during training, then the same "
               "command (sequential; the lock goes with the process)", [], ok_expected=True,
               doc="C38")
    def _(tmp):
        base = _shared_base(shared)
        args = _a(tmp, shared, base, "--seeds", "0,1,2", "--epochs", "2")
        a = _spawn(args)
        _wait_for(lambda: any((tmp / "out").glob("runs/*/*.json")), a)
        a.send_signal(signal.SIGKILL)
        a.communicate(timeout=60)
        return _cli(args, lambda: sorted(_rows(tmp / "out").seed) == [0, 1, 2])


def _ray(cases: _Cases) -> None:
    """C39, C40: the Ray grid's own flags."""
    shared = cases.shared
    if torch.cuda.is_available():
        cases.add("doc_C39", "runner config", "--gpus-per-run on a CPU-only machine (skipped: "
                  "CUDA is here)", [], ok_expected=True, doc="C39")(lambda tmp: Obs(check=True))
    else:
        _errors(cases, "C39", "--workers 1 --gpus-per-run 0.5 on a CPU-only machine", [
            (["--workers", "1", "--gpus-per-run", "0.5"], ["--gpus-per-run"])])

    @cases.add("doc_C40", "runner config", "--ray-address 127.0.0.1:1 (nothing listens): "
               "refused in seconds, before decoding", ["--ray-address", "127.0.0.1:1"],
               doc="C40")
    def _(tmp):
        t0 = time.time()
        obs = _cli(_a(tmp, shared, _shared_base(shared), "--ray-address", "127.0.0.1:1"))
        if obs.error is not None:
            obs.check = time.time() - t0 < 20 and not (tmp / "out").exists()
        return obs


# ---------------------------------------------------------------------------
# 4. Disk and process faults


def _signals(cases: _Cases) -> None:
    """P01, P02: SIGTERM during training, with and without SwanLab."""
    shared = cases.shared

    def sigterm(doc, what, mode, check_after):
        @cases.add(f"doc_{doc}", "faults", what, ["terminated (SIGTERM)", "pairs done"],
                   doc=doc)
        def _(tmp):
            base = _shared_base(shared)
            args = _a(tmp, shared, base, "--arms", "baseline,gain", "--seeds", "0,1",
                      "--epochs", "2", "--swanlab-mode", mode)
            a = _spawn(args)
            _wait_for(lambda: any((tmp / "out").glob("runs/*/*.json")), a)
            a.send_signal(signal.SIGTERM)
            _, err = a.communicate(timeout=120)
            if "Traceback" in err:
                return Obs(exc=err, rc=a.returncode)
            lines = _stderr_lines(err)
            if a.returncode != 143 or len(lines) != 1:
                return Obs(verdict=("cryptic error" if lines else "silent change",
                                    f"exit status {a.returncode}, {len(lines)} line(s): "
                                    + " / ".join(lines)[-160:]), rc=a.returncode)
            return Obs(error=lines[0], rc=143, check=check_after(tmp, args))

        return _

    def resumes(tmp, args):
        again = _cli([*args[:-2], "--swanlab-mode", "disabled"])
        return again.error is None and len(_rows(tmp / "out")) == 4

    def aborted(tmp, args):
        db = tmp / "out" / "swanlog" / "runs.swanlab"
        if not db.exists():
            return False
        with contextlib.closing(sqlite3.connect(db)) as c:
            status = [s for (s,) in c.execute("select status from experiment")]
        return bool(status) and 0 not in status  # 0: running (forever)

    sigterm("P01", "SIGTERM during training (2 arms x 2 seeds x 2 epochs), then the same "
            "command", "disabled", resumes)
    try:
        import swanlab  # noqa: F401
        sigterm("P02", "SIGTERM with --swanlab-mode local: the SwanLab run is closed",
                "local", aborted)
    except ImportError:
        cases.add("doc_P02", "faults", "SIGTERM with SwanLab (skipped: swanlab is not "
                  "installed)", [], ok_expected=True, doc="P02")(lambda tmp: Obs(check=True))


def _disk(cases: _Cases) -> None:
    """P03-P06: a full disk and a file-size limit; the next run resumes."""
    shared = cases.shared

    def no_temp(folder: Path) -> bool:
        return not list(folder.rglob("*.tmp"))

    def plots_full(tmp):
        args = _a(tmp, shared, _shared_base(shared), "--arms", "baseline,gain")
        with _file_size_limit(20_000):  # run files and the report fit, the PNG plots do not
            obs = _cli(args)
        return obs, args

    def run_file_full(tmp):
        args = _a(tmp, shared, _shared_base(shared), "--arms", "baseline,gain")
        with _disk_full_for("seed0.json"):
            obs = _cli(args)
        return obs, args

    @cases.add("doc_P03", "faults", "the disk fills while the plots are written",
               ["no space left", ".png"], doc="P03")
    def _(tmp):
        obs, _ = plots_full(tmp)
        obs.check = no_temp(tmp / "out") and len(_rows(tmp / "out")) == 2
        return obs

    @cases.add("doc_P04", "faults", "the disk fills while the first run file is written",
               ["no space left", "seed0.json"], doc="P04")
    def _(tmp):
        obs, _ = run_file_full(tmp)
        obs.check = no_temp(tmp / "out") and not list((tmp / "out").glob("runs/*/*.json"))
        return obs

    @cases.add("doc_P05", "faults", "after P03 and P04, with room again: the same command "
               "resumes", [], ok_expected=True, doc="P05")
    def _(tmp):
        outs = []
        for fault in (plots_full, run_file_full):
            sub = tmp / fault.__name__
            sub.mkdir()
            obs, args = fault(sub)
            if obs.error is None:
                return Obs(check=False, warned="the fault was not hit")
            outs.append(_cli(args, lambda sub=sub: len(_rows(sub / "out")) == 2
                             and (sub / "out" / "curves.png").exists()))
        return next((o for o in outs if not o.check), outs[-1])

    @cases.add("doc_P06", "faults", "the decode cache cannot be written (ulimit -f 64)",
               ["decode cache", "no space left"], doc="P06")
    def _(tmp):
        data = _base(tmp / "d")
        with _file_size_limit(64 * 1024):
            obs = _data(data, tmp / "cache", lambda ids: len(ids) == 12)
        if obs.check and not no_temp(tmp / "cache"):
            obs.check = False
        return obs


def _environment(cases: _Cases) -> None:
    """P07-P09: HOME and TMPDIR faults with SwanLab logging locally."""
    shared = cases.shared
    try:
        import swanlab  # noqa: F401
        mode = "local"
    except ImportError:
        mode = "disabled"

    def env_case(doc, what, *envs_of):
        @cases.add(f"doc_{doc}", "faults", what, [], ok_expected=True, doc=doc)
        def _(tmp):
            obs = Obs()
            for k, env_of in enumerate(envs_of):
                sub = tmp / str(k)
                sub.mkdir()
                saved = tempfile.tempdir
                tempfile.tempdir = None  # gettempdir() reads TMPDIR again
                try:
                    obs = _cli(_a(sub, shared, _shared_base(shared), "--swanlab-mode", mode),
                               lambda sub=sub: len(_rows(sub / "out")) == 1, env=env_of(sub))
                finally:
                    tempfile.tempdir = saved
                if obs.error or obs.exc or not obs.check:
                    return obs
            return obs

    def read_only(tmp, name):
        folder = tmp / name
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder)

    env_case("P07", "HOME unset, --swanlab-mode local", lambda tmp: {"HOME": None})
    env_case("P08", "HOME on a read-only folder, --swanlab-mode local",
             lambda tmp: {"HOME": read_only(tmp, "home")})
    env_case("P09", "TMPDIR read-only, or a missing folder, --swanlab-mode local",
             lambda tmp: {"TMPDIR": read_only(tmp, "tmp")},
             lambda tmp: {"TMPDIR": str(tmp / "missing")})


GROUPS = (_data_layouts, _data_duplicates_and_labels, _data_files, _data_refused,
          _data_cache_and_banks, _config_values, _config_sizes, _config_files, _config_paths,
          _config_device_and_names, _resume, _concurrency, _ray, _signals, _disk, _environment)
