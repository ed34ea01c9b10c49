"""Bad inputs to the runner (issue 21): the lock on --out, the content-keyed decode cache,
duplicates across splits and labels, paths, Ray, full disks, seeds and sizes, SIGTERM,
the grouped warning; and the sweep that holds every case of the 2026-12-06 report."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from experiments import ablate
from experiments import config as C
from experiments.data import AudioSet, load_dataset
from experiments.io import WriteError, atomic_write_bytes
from experiments.lock import OutLock
from experiments.plan import find_duplicates
from experiments.scale import ray_grid
from tools import sweep_bad_inputs as sweep
from tools.sweep_doc_runner import _disk_full_for, _file_size_limit

SR = 8000


def tone(k: int, n: int = SR, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * (150 + 40 * k) * np.arange(n) / SR)).astype(np.float32)


def base(root: Path, classes=("a", "b"), n: int = 6) -> Path:
    """The report's data/base: 2 classes x 6 one-second clips, a tone each."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            sf.write(root / name / f"{k}_{i:02d}.wav", tone(6 * k + i), SR)
    return root


def args(tmp: Path, data: Path | str | None, *extra: str) -> list[str]:
    """The report's ``$A``: a one-epoch baseline run at 8 kHz."""
    a = ["--sample-rate", "8000", "--crop-seconds", "1", "--epochs", "1", "--arms", "baseline",
         "--seeds", "0", "--swanlab-mode", "disabled", "--no-progress", "--set", "n_fft=256",
         "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=4",
         "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "out")]
    return a + (["--data", str(data)] if data is not None else []) + list(extra)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------------------
# 1. One exclusive lock per --out (C35, C36, C37)


def test_a_second_command_on_a_held_out_fails_at_once_naming_the_holder(tmp_path, capsys):
    data = base(tmp_path / "d")
    holder = OutLock(tmp_path / "out").acquire("python -m experiments.ablate --arms gain")
    try:
        t0 = time.time()
        assert ablate.main(args(tmp_path, data)) == 2
        assert time.time() - t0 < 30
        line = one_error_line(capsys.readouterr().err)
        assert "in use by another run" in line and f"PID {os.getpid()}" in line
        assert f"host {socket.gethostname()}" in line and "started 20" in line
        assert "--arms gain" in line
        assert not (tmp_path / "out" / "config.json").exists()  # nothing read or written
    finally:
        holder.release()
    assert ablate.main(args(tmp_path, data)) == 0  # released: the same command runs
    assert (tmp_path / "out" / ".lock").read_text() == ""  # emptied by its last holder


def test_the_lock_is_held_for_the_whole_command(tmp_path, monkeypatch):
    seen = []
    real = ablate.run

    def run(p, *a, **k):
        with pytest.raises(ValueError, match="in use by another run"):
            OutLock(p.out).acquire()
        seen.append(True)
        return real(p, *a, **k)

    monkeypatch.setattr(ablate, "run", run)
    assert ablate.main(args(tmp_path, base(tmp_path / "d"))) == 0 and seen


def test_a_folder_made_only_for_the_lock_is_removed_when_the_command_is_refused(tmp_path):
    assert ablate.main(args(tmp_path, tmp_path / "no-such-data")) == 2
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# 2. The decode cache is keyed by content (D29)


def test_the_decode_cache_is_keyed_by_content_not_names_sizes_and_mtimes(tmp_path):
    roots = [tmp_path / "K1" / "ds", tmp_path / "K2" / "ds"]
    for k, root in enumerate(roots):
        for c in "ab":
            (root / c).mkdir(parents=True)
            for i in range(3):
                f = root / c / f"{i}.wav"
                sf.write(f, tone(10 * k + 3 * "ab".index(c) + i), SR)
                os.utime(f, (1577836800, 1577836800))
    own = load_dataset(roots[1], SR, tmp_path / "own-cache", progress=False)
    first = load_dataset(roots[0], SR, tmp_path / "cache", progress=False)
    second = load_dataset(roots[1], SR, tmp_path / "cache", progress=False)
    assert second.digests == own.digests != first.digests
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


# ---------------------------------------------------------------------------
# 3. Duplicates across splits or labels (D05, D09)


def test_the_same_audio_under_two_labels_is_a_named_warning_and_listed(tmp_path, capsys):
    data = base(tmp_path / "d")
    os.symlink("a", data / "c")
    assert ablate.main(args(tmp_path, data)) == 0
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "same audio" in ln)
    assert "a/0_00.wav (" in line and "c/0_00.wav (" in line and "label c" in line
    assert "--strict-duplicates" in line
    listed = json.loads((tmp_path / "out" / "config.json").read_text())["dataset"]["duplicates"]
    assert len(listed) == 6 and all(len(g) == 2 for g in listed)
    # --strict-duplicates refuses such data (another --out: the folder's runs are kept)
    strict = args(tmp_path, data, "--strict-duplicates", "--out", str(tmp_path / "o2"))
    assert ablate.main(strict) == 2
    assert "same audio" in one_error_line(capsys.readouterr().err)


def test_a_manifest_alias_through_a_symlink_is_a_duplicate_across_splits(tmp_path, capsys):
    data = base(tmp_path / "d")
    os.symlink("a", data / "alias")
    rows = [f"{c}/{'ab'.index(c)}_{i:02d}.wav,{c},{s}" for c in "ab" for i, s in
            enumerate(["train", "train", "train", "train", "val", "test"])]
    (data / "m.csv").write_text("path,label,split\n" + "\n".join(rows)
                                + "\nalias/0_00.wav,a,test\n")
    assert ablate.main(args(tmp_path, data / "m.csv")) == 0
    line = next(ln for ln in capsys.readouterr().err.splitlines() if "same audio" in ln)
    assert "a/0_00.wav (train, label a)" in line and "alias/0_00.wav (test, label a)" in line


def test_copies_within_one_split_and_label_are_no_leak():
    ds = AudioSet(torch.zeros(4, dtype=torch.int16), torch.arange(4), torch.ones(4,
                  dtype=torch.int64), torch.tensor([0, 0, 1, 1]), ["a/1", "a/2", "b/1", "b/2"],
                  ["a", "b"], SR, [], digests=["x", "x", "y", "y"])
    assert find_duplicates(ds, ["train", "train", "train", "test"]) == [
        ["b/1 (train, label b)", "b/2 (test, label b)"]]
    assert find_duplicates(ds, ["train", "", "val", "val"]) == []  # "" : in no split


# ---------------------------------------------------------------------------
# 4. Paths (C26, C27, C18, C19, D20)


@pytest.mark.parametrize("flag", ["--data", "--out", "--cache-dir", "--noise-dir", "--ir-dir"])
def test_an_empty_path_option_is_one_line(tmp_path, capsys, monkeypatch, flag):
    base(tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")  # --data "" used to scan this folder
    a = args(tmp_path, tmp_path / "cwd", flag, "")
    assert ablate.main(a) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{flag} is empty" in line
    assert not (tmp_path / "out").exists()


def test_tilde_is_expanded_in_every_path_option(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    base(tmp_path / "home" / "data")
    (tmp_path / "home" / "noise").mkdir()
    sf.write(tmp_path / "home" / "noise" / "n.wav", tone(3), SR)
    monkeypatch.chdir(tmp_path)
    cfg = C.resolve("quick", None, {"out": "~/x", "data": "~/data", "cache_dir": "~/c",
                                    "noise_dir": "~/noise"})
    home = str(tmp_path / "home")
    assert cfg.runtime.out == f"{home}/x" and cfg.data.path == f"{home}/data"
    assert cfg.runtime.cache_dir == f"{home}/c" and cfg.ablation.noise_dir == f"{home}/noise"
    a = [x for x in args(tmp_path, "~/data") if x not in ("--out", str(tmp_path / "out"))]
    assert ablate.main([*a, "--out=~/x"]) == 0
    assert (tmp_path / "home" / "x" / "results.csv").exists()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("flag, sub", [("--out", "."), ("--out", "runs"),
                                       ("--cache-dir", "cache")])
def test_out_or_cache_inside_data_is_refused_up_front(tmp_path, capsys, flag, sub):
    data = base(tmp_path / "d")
    before = sorted(p.name for p in data.rglob("*"))
    assert ablate.main(args(tmp_path, data, flag, str(data / sub))) == 2
    line = one_error_line(capsys.readouterr().err)
    assert flag in line and "inside --data" in line
    assert sorted(p.name for p in data.rglob("*")) == before  # nothing written, no .lock


def test_only_dot_names_and_macosx_are_hidden(tmp_path):
    data = base(tmp_path / "d")
    for name in ("__noise__", "__unknown__"):
        (data / name).mkdir()
        for i in range(2):
            sf.write(data / name / f"{i}.wav", tone(i), SR)
    for name in (".git", "__MACOSX", ".cache"):
        (data / name).mkdir()
        sf.write(data / name / "x.wav", tone(0), SR)
    sf.write(data / "a" / "._0_00.wav", tone(0), SR)
    (data / "a" / ".DS_Store").write_bytes(b"x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(data, SR, tmp_path / "cache", progress=False)
    assert ds.classes == ["__noise__", "__unknown__", "a", "b"] and len(ds) == 16
    assert not caught  # hidden entries are ignored silently


# ---------------------------------------------------------------------------
# 5. Ray (C40, C39)


def test_an_unreachable_ray_address_fails_in_seconds_before_any_work(tmp_path, capsys):
    pytest.importorskip("ray")
    t0 = time.time()
    assert ablate.main(args(tmp_path, base(tmp_path / "d"), "--ray-address",
                            "127.0.0.1:1")) == 2
    assert time.time() - t0 < 20
    line = one_error_line(capsys.readouterr().err)
    assert "--ray-address 127.0.0.1:1" in line and "nothing answers" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_the_ray_address_probe(monkeypatch, tmp_path):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        ray_grid.probe_ray_address(f"127.0.0.1:{port}")  # answers: no error
        ray_grid.probe_ray_address(f"ray://127.0.0.1:{port}")
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        ray_grid.probe_ray_address("auto")
    with pytest.raises(ValueError, match=rf"--ray-address 127.0.0.1:{port}: nothing answers"):
        ray_grid.probe_ray_address(f"127.0.0.1:{port}")  # closed now: nothing listens
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setattr(ray_grid, "RAY_CURRENT_CLUSTER", tmp_path / "none")
    with pytest.raises(ValueError, match="auto: found no running Ray cluster"):
        ray_grid.probe_ray_address("auto")
    with pytest.raises(ValueError, match="HOST:PORT"):
        ray_grid.probe_ray_address("somewhere")


def test_gpus_per_run_without_cuda_names_gpus_per_run(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setattr(ray_grid.torch.cuda, "is_available", lambda: False)
    scale = C.ScaleConfig(workers=1, gpus_per_run=0.5)
    with pytest.raises(ValueError, match=r"--gpus-per-run 0\.5 reserves GPUs, but torch sees "
                                         "no CUDA device"):
        ray_grid.grid_device(scale, "auto")


# ---------------------------------------------------------------------------
# 6. Disk faults (P03, P04, P06)


def test_a_write_past_a_file_size_limit_is_one_line_naming_the_file(tmp_path):
    target = tmp_path / "r" / "results.csv"
    atomic_write_bytes(target, b"old")
    with _file_size_limit(1000), pytest.raises(WriteError) as e:
        atomic_write_bytes(target, b"x" * 5000)
    assert str(e.value) == (f"cannot write {target}: no space left for it: the file-size "
                            "limit (ulimit -f) is reached")
    assert target.read_bytes() == b"old" and os.listdir(target.parent) == ["results.csv"]
    with _disk_full_for("results.csv"), pytest.raises(WriteError, match="no space left on "
                                                                         "device"):
        atomic_write_bytes(target, b"new")


def test_a_full_disk_stops_the_command_with_one_line_and_the_next_run_resumes(tmp_path, capsys):
    data = base(tmp_path / "d")
    a = args(tmp_path, data, "--arms", "baseline,gain")
    with _disk_full_for("seed0.json"):
        assert ablate.main(a) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "seed0.json: no space left on device" in line and "re-run" in line
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert ablate.main(a) == 0
    assert "0 done, 2 to run" in capsys.readouterr().out


def test_a_cache_that_cannot_be_written_is_a_warning_and_the_data_loads(tmp_path):
    data = base(tmp_path / "d")
    with _file_size_limit(64 * 1024), pytest.warns(UserWarning) as record:
        ds = load_dataset(data, SR, tmp_path / "cache", progress=False)
    (w,) = [r for r in record if "decode cache" in str(r.message)]
    assert "no space left" in str(w.message) and str(tmp_path / "cache") in str(w.message)
    assert len(ds) == 12 and not list((tmp_path / "cache").iterdir())


# ---------------------------------------------------------------------------
# 7. Seeds and sizes (C07, C25, C08, C10, C14)


def test_a_seed_beyond_torch_range_is_refused_before_any_work(tmp_path, capsys):
    assert ablate.main(args(tmp_path, base(tmp_path / "d"), "--seeds",
                            "18446744073709551616")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "seeds must be integers in [0, 2**64 - 1]" in line
    assert not (tmp_path / "out").exists()
    assert C.resolve("quick", None, {"seeds": [2**64 - 1]}).runtime.seeds == [2**64 - 1]
    with pytest.raises(ValueError, match="seeds must be a list of integers"):
        C.resolve("quick", None, {"seeds": "[1.9, 2.2]"})


def test_a_batch_larger_than_the_training_split_and_a_hop_beyond_the_window_warn(
        tmp_path, capsys):
    a = args(tmp_path, base(tmp_path / "d"), "--set", "batch_size=1000", "--set",
             "hop_length=512")
    assert ablate.main(a) == 0
    err = capsys.readouterr().err
    assert ("warning: batch_size=1000 is larger than the training split (6 clips): every "
            "step trains on the whole split, a batch of 6") in err
    assert "warning: hop_length=512 is larger than n_fft=256: 50% of the samples" in err


@pytest.mark.parametrize("text, kind", [("null", "null"), ('"quick"', "str"),
                                        ('[["epochs", 2]]', "list")])
def test_a_config_file_that_is_not_an_object_is_one_line(tmp_path, capsys, text, kind):
    (tmp_path / "c.json").write_text(text)
    assert ablate.main(args(tmp_path, None, "--config", str(tmp_path / "c.json"))) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "must hold a JSON object of settings" in line and f"got {kind}" in line


# ---------------------------------------------------------------------------
# 8. SIGTERM: the tracker's run is closed (P01, P02)


class FakeTracker:
    runs: list[FakeTracker] = []

    def __init__(self, *a, **k):
        self.ended = None
        FakeTracker.runs.append(self)

    def log(self, *a, **k):
        pass

    def log_examples(self, *a, **k):
        pass

    def log_confusion(self, *a, **k):
        pass

    def abort(self, reason):
        self.ended = f"aborted: {reason}"

    def finish(self):
        self.ended = "finished"


def test_sigterm_aborts_the_tracker_run_and_exits_143_with_one_line(tmp_path, monkeypatch,
                                                                     capsys):
    FakeTracker.runs = []
    monkeypatch.setattr(ablate, "Tracker", FakeTracker)
    real = ablate.train_run
    calls = []

    def train_run(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # the second pair: a scheduler cancels the job
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        return real(*a, **k)

    monkeypatch.setattr(ablate, "train_run", train_run)

    def not_handled(signum, frame):  # were the command not to handle it (not kill pytest)
        raise RuntimeError("SIGTERM reached the handler outside the command")

    before = signal.signal(signal.SIGTERM, not_handled)
    try:
        rc = ablate.main(args(tmp_path, base(tmp_path / "d"), "--seeds", "0,1"))
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert rc == 143
    assert one_error_line_any(capsys.readouterr().err) == (
        "terminated (SIGTERM); 1 of 2 pairs done; re-run the same command to resume")
    assert [t.ended for t in FakeTracker.runs] == ["finished", "aborted: terminated (SIGTERM)"]
    assert after is not_handled  # the command's handler is its own only
    assert ablate.main(args(tmp_path, base(tmp_path / "d"), "--seeds", "0,1")) == 0


def one_error_line_any(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------
# 9. The grouped warning


def test_the_grouped_warning_counts_per_reason_names_a_few_and_lists_all(tmp_path, capsys):
    data = base(tmp_path / "d")
    for i in range(8):
        (data / "a" / f"bad{i}.wav").write_bytes(b"RIFF\x00garbage" * 4)
    sf.write(data / "b" / "full.wav", np.r_[tone(1)[:-1], np.float32(1.004)], SR,
             subtype="FLOAT")  # a peak that reads 1.00 (0.03 dB): not named as clipped
    sf.write(data / "b" / "loud.wav", 2 * tone(2, amp=1.0), SR, subtype="FLOAT")
    assert ablate.main(args(tmp_path, data)) == 0
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "file(s) skipped" in ln]
    assert "9 of 22 file(s) skipped, changed or ignored: skipped 8 unreadable (" in line
    assert line.count("a/bad") == 5 and "and 3 more" in line
    assert "clipped 1 above full scale (b/loud.wav (peak 2.00, 6.0 dB" in line
    assert "full.wav" not in line
    assert f"every one is listed in {tmp_path / 'out' / 'config.json'}" in line
    problems = json.loads((tmp_path / "out" / "config.json").read_text())["dataset"]["problems"]
    assert len(problems["skipped 8 unreadable"]) == 8
    assert problems["clipped 1 above full scale"][0].startswith("b/loud.wav (peak 2.00")


def test_noise_and_ir_folders_list_their_skipped_files_in_config_json(tmp_path, capsys):
    noise, irs = tmp_path / "N", tmp_path / "I"
    noise.mkdir()
    irs.mkdir()
    sf.write(noise / "good.wav", tone(4), SR, subtype="FLOAT")
    bad = tone(5)
    bad[10:20] = np.nan
    sf.write(noise / "nan.wav", bad, SR, subtype="FLOAT")
    sf.write(irs / "a_room.wav", np.r_[np.float32(1.0), 0.1 * tone(1, 400)], SR,
             subtype="FLOAT")
    sf.write(irs / "b_silent.wav", np.zeros(400, np.float32), SR, subtype="FLOAT")
    a = args(tmp_path, base(tmp_path / "d"), "--arms", "background_noise,reverb",
             "--noise-dir", str(noise), "--ir-dir", str(irs))
    assert ablate.main(a) == 0
    err = capsys.readouterr().err
    assert "nan.wav" in err and "b_silent.wav" in err
    banks = json.loads((tmp_path / "out" / "config.json").read_text())["banks"]
    assert banks["noise_dir"] == {"folder": str(noise),
                                  "skipped": {"with NaN/inf samples": ["nan.wav"]}}
    assert list(banks["ir_dir"]["skipped"].values()) == [["b_silent.wav"]]


# ---------------------------------------------------------------------------
# 10. The sweep holds every case of the report


def test_the_sweep_holds_every_case_of_the_2026_12_06_report(tmp_path):
    cases = sweep._cases(tmp_path)
    assert sweep.doc_coverage(cases) == []
    assert len(sweep.DOC_IDS) == len(set(sweep.DOC_IDS)) == 130
    assert len({c.name for c in cases}) == len(cases)


def test_a_few_new_sweep_cases_are_good(tmp_path):
    names = ["doc_D20", "doc_D29", "doc_C14", "doc_C26", "doc_C40", "doc_L33", "doc_P06"]
    rows = sweep.run_cases(names, tmp_path)
    assert all(r.good for r in rows), [(r.name, r.outcome, r.detail) for r in rows]
    assert "0 silent change, 0 cryptic error, 0 traceback, 0 hang, 0 data loss" in (
        sweep.summary(rows))


def test_disk_full_helper_hits_only_the_named_file(tmp_path):
    with _disk_full_for("x.json"):
        atomic_write_bytes(tmp_path / "y.json", b"1")
        with pytest.raises(OSError) as e:
            atomic_write_bytes(tmp_path / "x.json", b"1")
    assert e.value.errno == errno.ENOSPC
