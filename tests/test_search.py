"""Augmentation search: the magnitude space over the registry, and the search on Ray Tune
(train and validation only: a decoder wrapper sees no test file)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch

from experiments.arms import build_arm
from experiments.augmentations import AUGMENTATIONS
from experiments.config import AblationConfig, FrontendConfig
from experiments.search import space as S

SAMPLE_RATES = (8000, 16000)


def _signal(sample_rate: int, batch: int = 16, seconds: float = 1.0) -> torch.Tensor:
    """Harmonic tones with a gliding pitch, bursts and a little noise: ``(B, 1, T)``."""
    g = torch.Generator().manual_seed(0)
    n = int(sample_rate * seconds)
    t = torch.arange(n) / sample_rate
    f0 = 150 + 400 * torch.rand(batch, 1, 1, generator=g)
    phase = 2 * math.pi * torch.cumsum(f0 * (1 + 0.5 * t.view(1, 1, -1)), -1) / sample_rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 8))
    envelope = torch.exp(-3 * ((t * 4) % 1)).view(1, 1, -1)
    return 0.3 * x * envelope + 0.01 * torch.randn(batch, 1, n, generator=g)


def _chain_change(name: str, m: float, sample_rate: int) -> float:
    """Mean |model input (and soft targets) with ``name`` at magnitude ``m``, p = 1, minus
    the baseline's|, on :func:`_signal` with a fixed generator."""
    frontend = FrontendConfig(sample_rate=sample_rate, n_fft=512, hop_length=160, n_mels=32)
    rec = S.recipe({name: (m, 1.0)}, sample_rate)
    ablation = AblationConfig(augmentations=rec["augmentations"], augment=rec["augment"])
    arm = build_arm(S.arm_name(rec), frontend, ablation, 4)
    base = build_arm("baseline", frontend, AblationConfig(augmentations=[]), 4).chain.eval()
    x, y = _signal(sample_rate), torch.arange(16) % 4
    a, ta = arm.chain.train()(x, target=y, generator=torch.Generator().manual_seed(1))
    b, tb = base(x, target=y)
    return float((a - b).abs().mean() + (ta - tb).abs().mean())


def test_every_registered_augmentation_is_mapped_or_excluded_with_a_reason():
    assert S.check_registry() == []
    assert not set(S.MAGNITUDES) & set(S.EXCLUDED)
    assert set(S.MAGNITUDES) | set(S.EXCLUDED) == set(AUGMENTATIONS)
    assert all(len(why) > 20 for why in S.EXCLUDED.values())


@pytest.mark.parametrize("name", sorted(S.MAGNITUDES))
def test_magnitude_zero_is_identity_and_strength_rises_strictly(name):
    """m = 0 leaves the model input exactly as the baseline's; the change rises strictly
    over m = 0.25, 0.5, 1 (p = 1); at m = 1 the arm builds and runs at 8 and 16 kHz."""
    for sr in SAMPLE_RATES:
        assert _chain_change(name, 0.0, sr) == 0.0
        change = [_chain_change(name, m, sr) for m in (0.25, 0.5, 1.0)]
        assert 0 < change[0] < change[1] < change[2], (sr, change)
        assert all(math.isfinite(c) for c in change)


def test_magnitude_settings_reject_out_of_range_and_excluded():
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        S.magnitude_settings("gain", 1.5, 16000)
    with pytest.raises(ValueError, match="polarity.*no magnitude: a sign flip"):
        S.magnitude_settings("polarity", 0.5, 16000)


def test_parse_space_from_a_comma_list_and_a_json_file(tmp_path):
    assert S.parse_space("gain, colored_noise,gain") == ["gain", "colored_noise"]
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"families": ["time_mask", "band_limit"]}))
    assert S.parse_space(str(f)) == ["time_mask", "band_limit"]
    with pytest.raises(ValueError, match="no magnitude for mixup: lam"):
        S.parse_space("gain,mixup")
    with pytest.raises(ValueError, match="nope: not a registered augmentation"):
        S.parse_space("nope")
    with pytest.raises(ValueError, match="does not exist"):
        S.parse_space(str(tmp_path / "missing.json"))


def test_a_recipe_loads_with_config_and_builds_its_chain(tmp_path):
    """The recipe JSON is a --config file: the runner's ``all`` arm is the recipe."""
    from experiments import config as C

    rec = S.recipe({"gain": (0.5, 0.7), "time_mask": (1.0, 1.0), "noise": (0.0, 1.0)}, 8000,
                   {"gain": {"where": "waveform"}})
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(rec))
    cfg = C.resolve("quick", str(path), {"sample_rate": 8000})
    assert cfg.ablation.augmentations == ["gain", "time_mask"]
    assert cfg.ablation.augment["gain"] == {"where": "waveform", "gain_db": [-6.0, 6.0],
                                            "p": 0.7}
    arm = build_arm("all", cfg.frontend, cfg.ablation, 10)
    assert arm.chain["gain"].p == 0.7
    assert Path(path).read_text() == json.dumps(rec)


# ---------------------------------------------------------------------------
# The search on Ray Tune

TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}
RUNNER = ["--set", "sample_rate=8000", "--set", "crop_seconds=1.0", "--set", "n_fft=256",
          "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=8",
          "--set", f"synthetic={json.dumps(TINY)}"]


#: Re-rank the two trials with one seed each, and stop there (test is not read).
NO_CONFIRM = ("--rerank-top", "2", "--rerank-seeds", "1", "--no-confirm")


def search_args(out: Path, cache: Path, *extra: str) -> list[str]:
    """A tiny search: 2 trials of 2 epochs, one at a time, on the tiny synthetic set (a
    grace period of 2 epochs: ASHA stops none, see the resume test)."""
    return ["--out", str(out), "--cache-dir", str(cache), "--space", "gain,colored_noise",
            "--budget-trials", "2", "--budget-minutes", "5", "--grace-period", "2",
            "--max-concurrent", "1", "--no-progress", *RUNNER, "--set", "protocol=fixed",
            "--set", "epochs=2", *extra]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One uninterrupted search, in this process, under a decoder wrapper that records
    every file opened: ``(out, cache, files opened)``."""
    pytest.importorskip("ray.tune")
    from experiments.data import decode
    from experiments.search import run

    tmp = tmp_path_factory.mktemp("search")
    opened: list[str] = []
    real = decode._decode

    def recording(path, *args, **kwargs):
        opened.append(str(Path(path).resolve()))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode, "_decode", recording)
        assert run.main(search_args(tmp / "whole", tmp / "cache", *NO_CONFIRM)) == 0
    return tmp / "whole", tmp / "cache", set(opened)


def _test_files(cache: Path) -> set[str]:
    """The synthetic set's test files (its manifest's split column)."""
    from experiments import config as C
    from experiments.data.scan import scan_clips
    from experiments.plan import dataset_path

    cfg = C.resolve("quick", None, {"synthetic": TINY, "cache_dir": str(cache)})
    scan = scan_clips(dataset_path(cfg.data, str(cache), False))
    return {str(f.resolve()) for f, s in zip(scan.files, scan.splits, strict=True)
            if s == "test"}


def test_a_search_reads_no_test_file_and_an_ablation_does(searched, monkeypatch):
    """The search opens training and validation files only; as a negative control, an
    ordinary ablation under the same decoder wrapper opens the test files."""
    from experiments import ablate
    from experiments.data import decode
    from experiments.search import run

    out, cache, opened = searched
    test = _test_files(cache)
    assert test and opened
    assert not test & opened, "the search decoded test files"
    summary = json.loads((out / "search.json").read_text())
    assert len(summary["table"]) == 2 and summary["compute"]["core-hours"] > 0
    assert not set(run.CONFIRM_SEEDS) & {run.TRIAL_SEED, 0, 1, 2}
    assert not list((out / "search").rglob("checkpoint_*"))
    assert (out / "search_trajectory.png").stat().st_size > 0
    md = (out / "search.md").read_text()
    assert "| 1 |" in md and "| 2 |" in md and "test has not been read" in md
    recipe = json.loads((out / "recipe.json").read_text())
    assert {k: recipe[k] for k in ("augmentations", "augment")} == summary["recipe"]
    assert summary["chosen"] == summary["reranked"][0]["recipe"]
    assert "test has not been read" in (out / "summary.md").read_text()
    assert not (out / "confirm").exists()
    control: list[str] = []
    real = decode._decode

    def recording(path, *args, **kwargs):
        control.append(str(Path(path).resolve()))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode, "_decode", recording)
    assert ablate.main(["--out", str(out.parent / "ablation"), "--cache-dir", str(cache),
                        "--arms", "baseline", "--seeds", "0", "--epochs", "1",
                        "--swanlab-mode", "disabled", "--no-progress", *RUNNER]) == 0
    assert test <= set(control), "the negative control: an ablation decodes test"
    assert opened < set(control)


def _trials(out: Path) -> list[tuple]:
    """Each trial's recipe, best validation accuracy and epochs, in the search's order."""
    table = json.loads((out / "search.json").read_text())["table"]
    return [(t["recipe"], t["val_acc"], t["epochs"]) for t in table]


def test_a_killed_search_resumes_to_the_uninterrupted_result(searched, tmp_path, capsys):
    """One trial at a time: the search's processes are killed during the second trial;
    the same command again restores it (same trial ids, not a fresh search) and gives
    the same trials, scores and choice as the search never interrupted; a changed
    --space is refused in one line.

    ASHA stops no trial here (grace period = the budget): a restored scheduler starts its
    rungs again, so its stopping decisions after a resume may differ."""
    import signal
    import subprocess
    import sys
    import time

    from experiments.search import run

    whole, cache, _ = searched
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "cut"
    command = [sys.executable, "-m", "experiments.search", *search_args(out, cache, *NO_CONFIRM)]
    marker = tmp_path / "held"
    env = {**os.environ, run.HOLD_ENV: f"1:{marker}"}
    proc = subprocess.Popen(command, cwd=root, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 90
        while not marker.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), proc.communicate()[0][-2000:] if proc.poll() is not None else ""
    finally:  # the driver's process group, then what Ray started in its session, by pid
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
        for pid in left.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not (out / "recipe.json").exists()
    trials = out / "search" / "search"
    first = trials / f"trial_{sorted(p.name for p in trials.glob('trial_*'))[0][6:]}"
    again = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _trials(out) == _trials(whole)
    assert (out / "recipe.json").read_text() == (whole / "recipe.json").read_text()
    table = json.loads((out / "search.json").read_text())["table"]
    assert f"trial_{table[0]['trial']}" == first.name, "restored, not started afresh"
    capsys.readouterr()
    assert run.main(search_args(out, cache, *NO_CONFIRM, "--space", "gain")) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--space changed" in err


def test_a_killed_trial_worker_does_not_lose_the_search(searched, tmp_path):
    """SIGKILL of the worker running a trial (not the driver): Ray Tune retries the trial
    and the search ends as the uninterrupted one did."""
    import signal
    import subprocess
    import sys
    import time

    from experiments.search import run

    whole, cache, _ = searched
    root = Path(__file__).resolve().parents[1]
    marker = tmp_path / "held"
    env = {**os.environ, run.HOLD_ENV: f"1:{marker}"}
    out = tmp_path / "worker"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.search",
                             *search_args(out, cache, *NO_CONFIRM)], cwd=root, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[0][-2000:] if proc.poll() is not None else ""
    time.sleep(0.2)  # the pid is written before the worker sleeps
    os.kill(int(marker.read_text()), signal.SIGKILL)
    log = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, log[-2000:]
    assert _trials(out) == _trials(whole)


def test_candidates_are_distinct_recipes_best_first():
    from experiments.search import confirm as K

    def row(trial, recipe, acc, epochs, on):
        config = {"gain/on": on, "gain/m": 0.5, "gain/p": 0.5}
        return {"trial": trial, "recipe": recipe, "val_acc": acc, "epochs": epochs,
                "config": config}

    rows = [row("a", "gain", 0.5, 3, True), row("b", "baseline", 0.7, 9, False),
            row("c", "gain", 0.8, 9, True), row("d", "gain", 0.8, 4, True),
            row("e", "x", math.nan, 1, True)]
    got = K.candidates(rows, 3)
    assert [(c["trial"], c["rank"]) for c in got] == [("d", 1), ("b", 2)]
    assert got[0]["families"] == {"gain": [0.5, 0.5]} and got[1]["families"] == {}


def test_the_confirmation_keeps_trivial_at_the_preset_settings(tmp_path):
    """The recipe changes colored_noise; arm ``all`` takes the recipe's strength, arm
    ``trivial`` (its colored_noise op) keeps the preset's; ``compose`` is not read."""
    from experiments import config as C
    from experiments.search import confirm as K

    cfg = C.resolve("quick", None, {})
    rec = S.recipe({"colored_noise": (0.5, 0.9)}, 16000, cfg.ablation.augment)
    path = tmp_path / "confirm.json"
    path.write_text(json.dumps({**K.confirm_config(cfg, rec), "compose": {"steps": []}}))
    conf = C.resolve("quick", str(path), {})
    assert C.identity_diff(conf, cfg) == ["augment", "augmentations"]
    recipe_op = build_arm("all", conf.frontend, conf.ablation, 10).chain["colored_noise"]
    trivial = build_arm("trivial", conf.frontend, conf.ablation, 10).chain["trivial"]
    preset_op = build_arm("trivial", cfg.frontend, cfg.ablation, 10).chain["trivial"]
    snr = {n: m.snr_db for n, m in trivial.named_modules() if n.endswith("colored_noise")}
    ref = {n: m.snr_db for n, m in preset_op.named_modules() if n.endswith("colored_noise")}
    assert snr == ref and snr
    assert recipe_op.snr_db != next(iter(snr.values()))
    assert recipe_op.p == 0.9


def _pooled_set(groups: list[str], labels: list[int]):
    """An AudioSet stand-in: ids named ``<n>_<group>_<k>.wav``, the given labels."""
    from experiments.data.audioset import AudioSet

    n = len(labels)
    ids = [f"c{labels[i]}/{labels[i]}_{groups[i]}_{i}.wav" for i in range(n)]
    return AudioSet(torch.zeros(n, dtype=torch.int16), torch.arange(n),
                    torch.ones(n, dtype=torch.int64), torch.tensor(labels), ids,
                    ["a", "b"], 1, [], None)


def test_cv_folds_pool_train_and_val_and_keep_groups_apart():
    from experiments.search.run import cv_folds

    groups = ["ann", "bob", "cat", "dan", "eve", "fay"] * 4
    labels = [0, 1] * 12
    ds = _pooled_set(groups, labels)
    splits = {"train": torch.arange(0, 16), "val": torch.arange(16, 20)}  # 20..23: test
    folds = cv_folds(ds, splits, 3, r"^\d+_(?P<group>[a-z]+)_")
    assert len(folds) == 3
    seen = torch.cat([f["val"] for f in folds]).sort().values
    assert seen.tolist() == list(range(20)), "every pooled clip validates once; test never"
    for f in folds:
        tr = {groups[i] for i in f["train"].tolist()}
        va = {groups[i] for i in f["val"].tolist()}
        assert tr and va and not tr & va
    plain = cv_folds(ds, splits, 2, None)
    for f in plain:
        assert sorted(ds.labels[f["val"]].tolist()) == [0] * 5 + [1] * 5, "stratified"
    with pytest.raises(ValueError, match="does not match the file name"):
        cv_folds(ds, splits, 2, r"^x(?P<group>\d)")
    with pytest.raises(ValueError, match="finds 6 group"):
        cv_folds(ds, splits, 7, r"^\d+_(?P<group>[a-z]+)_")


def test_cv_and_confirm_flags_are_checked_in_one_line(tmp_path):
    from experiments.search import run

    base = ["--out", str(tmp_path / "o"), "--space", "gain"]
    for extra, match in ((["--cv", "1"], "--cv must be 0"),
                         (["--cv-group", "(?P<group>x)"], "needs --cv"),
                         (["--cv", "3", "--cv-group", "x("], "not a regular expression"),
                         (["--cv", "3", "--cv-group", "x"], r"\(\?P<group>"),
                         (["--confirm-seeds", "1"], "--confirm-seeds must be >= 2"),
                         (["--rerank-top", "0"], "--rerank-top must be >= 1")):
        with pytest.raises(ValueError, match=match) as e:
            run.resolve(base + extra)
        assert "\n" not in str(e.value)


def test_a_search_by_cross_validation_reports_the_fold_mean(searched, tmp_path):
    """--cv 2: each trial reports once per fold, the mean of the folds so far."""
    from experiments.search import run

    _, cache, _ = searched
    out = tmp_path / "cv"
    assert run.main(search_args(out, cache, "--cv", "2", "--rerank-top", "1",
                                "--no-confirm")) == 0
    summary = json.loads((out / "search.json").read_text())
    assert all(0 <= t["val_acc"] <= 1 for t in summary["table"])
    results = sorted((out / "search" / "search").glob("trial_*/result.json"))
    reports = [json.loads(line) for line in results[0].read_text().splitlines()]
    assert [r["fold"] for r in reports] == [1, 2]
    assert "2-fold cross-validation" in (out / "search.md").read_text()


def test_search_confirms_the_recipe_on_fresh_seeds_with_test_read_once(searched, tmp_path):
    """The whole pipeline: search, re-ranking, then the runner on fresh seeds (baseline,
    the recipe, trivial): summary.md states the paired intervals; recipe.json loads into
    the runner (--config) and the library (ak.load_compose)."""
    import augkit as ak
    from experiments import config as C
    from experiments.search import run

    _, cache, _ = searched
    out = tmp_path / "full"
    assert run.main(search_args(out, cache, "--rerank-top", "2", "--rerank-seeds", "1",
                                "--confirm-seeds", "2")) == 0
    import pandas as pd

    recipe = json.loads((out / "recipe.json").read_text())
    df = pd.read_csv(out / "confirm" / "results.csv")
    assert sorted(set(df.arm)) == sorted(["baseline", "trivial"]
                                         + (["all"] if recipe["augmentations"] else []))
    assert sorted(set(df.seed)) == [20000, 20001] and df.test_acc.notna().all()
    md = (out / "summary.md").read_text()
    assert "Confirmed on fresh seeds" in md and "trivial - baseline: test" in md
    assert "## Re-ranking" in md and "## Seeds and compute" in md
    assert "](confirm/" in md and "](search_trajectory.png)" in md
    cfg = C.resolve("quick", str(out / "recipe.json"), {})
    assert cfg.ablation.augmentations == recipe["augmentations"]
    chain = ak.load_compose(out / "recipe.json")
    x = torch.randn(3, 1, 8000)
    feats, soft = chain.train()(x, target=torch.tensor([0, 1, 0]))
    assert feats.shape[:2] == (3, 1) and soft.shape == (3, recipe["compose"]["num_classes"])


def test_trivial_op_settings_are_checked():
    from experiments import config as C

    with pytest.raises(ValueError, match=r"augment.trivial: op_settings names \['gain'\], "
                       "which are not among the ops"):
        C.resolve("quick", None, {"augment.trivial.op_settings": {"gain": {}}})


def test_ctrl_c_during_a_trial_is_an_interruption_not_a_result(searched, tmp_path):
    """SIGINT to the driver while trial 2 trains: exit 130 with one line and no recipe
    (Ray Tune returns the stopped trial as terminated with a truncated score); the same
    command again finishes it and ends as the uninterrupted search."""
    import signal
    import subprocess
    import sys
    import time

    from experiments.search import run

    whole, cache, _ = searched
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "sigint"
    command = [sys.executable, "-m", "experiments.search", *search_args(out, cache, *NO_CONFIRM)]
    marker = tmp_path / "held"
    proc = subprocess.Popen(command, cwd=root, env={**os.environ, run.HOLD_ENV: f"1:{marker}"},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[1][-2000:] if proc.poll() is not None else ""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    # the held trial, and any other that was running beside it (one per core)
    assert re.search(r"interrupted: [1-9][0-9]* search trial\(s\) unfinished; run the same command "
                     "to resume", err), err[-2000:]
    assert not (out / "recipe.json").exists()
    again = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _trials(out) == _trials(whole)

