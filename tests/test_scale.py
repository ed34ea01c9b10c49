"""Scale out: the grid on Ray equals the sequential runner, a killed worker's pair lands
exactly once, torchrun runs a pair on 2 processes, and a DDP step equals one process's."""

from __future__ import annotations

import json
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
from experiments.arms import build_arm
from experiments.data.audioset import AudioSet
from experiments.scale.ray_grid import HOLD_ENV
from experiments.training.trainer import Recipe, evaluate, make_trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": 8000, "seed": 0}
#: Columns that measure time, not results.
TIMES = ["time_s", "wall_s", "train_clips_per_s"]


def tiny_args(out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--cache-dir", str(cache), "--sample-rate", "8000",
            "--crop-seconds", "1.0", "--epochs", "2", "--swanlab-mode", "disabled",
            "--no-progress", "--set", "n_fft=256", "--set", "hop_length=128", "--set",
            "n_mels=32", "--set", "batch_size=8", "--set", f"synthetic={json.dumps(TINY)}",
            *extra]


def results_without_times(out: Path) -> dict:
    """Every run file, less what measures time or names the process."""
    runs = {}
    for path in sorted((out / "runs").glob("*/*.json")):
        d = json.loads(path.read_text())
        for k in (*TIMES, "extra"):
            d.pop(k)
        for h in d["history"]:
            h.pop("clips_per_s")
        runs[path.relative_to(out).as_posix()] = d
    return runs


def test_ray_grid_equals_the_sequential_runner(tmp_path, capsys):
    """Same seeds, --cpus-per-run 1: identical results.csv (less time columns) and run
    files; the sequential path never imports Ray; a second command resumes, Ray-free."""
    pytest.importorskip("ray")
    grid = ["--arms", "baseline,gain", "--seeds", "0,1", "--cpus-per-run", "1"]
    cache = tmp_path / "cache"
    code = ("import sys; from experiments import ablate; rc = ablate.main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules, 'the sequential path imported ray'; "
            "raise SystemExit(rc)")
    seq = subprocess.run([sys.executable, "-c", code,
                          *tiny_args(tmp_path / "seq", cache, *grid)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert seq.returncode == 0, seq.stdout[-2000:] + seq.stderr[-2000:]

    assert ablate.main(tiny_args(tmp_path / "ray", cache, *grid, "--workers", "2")) == 0
    printed = capsys.readouterr().out
    assert "2 at a time on Ray;" in printed and "0 done, 4 to run" in printed
    import ray

    assert not ray.is_initialized()  # the runner shut its runtime down

    a = pd.read_csv(tmp_path / "seq" / "results.csv")
    b = pd.read_csv(tmp_path / "ray" / "results.csv")
    assert len(a) == 4 and set(b.device) == {"cpu"} and set(b.threads) == {1}
    pd.testing.assert_frame_equal(a.drop(columns=TIMES), b.drop(columns=TIMES))
    assert results_without_times(tmp_path / "seq") == results_without_times(tmp_path / "ray")
    assert (b.wall_s > 0).all()
    # Resume: nothing left to run, so no Ray runtime is started.
    assert ablate.main(tiny_args(tmp_path / "ray", cache, *grid, "--workers", "2")) == 0
    assert "4 done, 0 to run" in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_pair_is_retried_and_lands_exactly_once(tmp_path):
    """SIGKILL the worker training gain-seed0 after its first epoch: Ray runs the pair
    again, and every (arm, seed) has exactly one result (and one SwanLab run, logged by
    the driver), equal to an unkilled run's."""
    pytest.importorskip("ray")
    marker = tmp_path / "held"
    out = tmp_path / "out"
    args = tiny_args(out, tmp_path / "cache", "--arms", "baseline,gain", "--seeds", "0,1",
                     "--cpus-per-run", "1", "--workers", "2", "--swanlab-mode", "local")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", HOLD_ENV: f"gain-seed0:{marker}"}
    proc = subprocess.Popen([sys.executable, "-m", "experiments.ablate", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.time() + 240
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the held unit never started"
        pid = int(marker.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"ray::" in cmdline and pid != proc.pid, cmdline  # a Ray worker, not the driver
        os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    files = sorted(p.relative_to(out).as_posix() for p in (out / "runs").glob("*/*.json"))
    assert files == ["runs/baseline/seed0.json", "runs/baseline/seed1.json",
                     "runs/gain/seed0.json", "runs/gain/seed1.json"]
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 4 and not df.duplicated(["arm", "seed"]).any()
    again = json.loads((out / "runs" / "gain" / "seed0.json").read_text())
    assert again["extra"]["worker"].rsplit(":", 1)[1] != str(pid)  # another process did it
    import sqlite3

    with sqlite3.connect(out / "swanlog" / "runs.swanlab") as db:
        names = sorted(n for (n,) in db.execute("select name from experiment"))
    assert names == ["baseline-seed0", "baseline-seed1", "gain-seed0", "gain-seed1"]
    # The retried pair's numbers are those of a run nobody killed.
    ref = tmp_path / "ref"
    assert ablate.main(tiny_args(ref, tmp_path / "cache", "--arms", "gain", "--seeds", "0",
                                 "--cpus-per-run", "1")) == 0
    assert (results_without_times(ref)["runs/gain/seed0.json"]
            == results_without_times(out)["runs/gain/seed0.json"])


def test_torchrun_two_processes_run_a_pair_end_to_end(tmp_path):
    """torchrun --nproc-per-node 2 on gloo: one pair trained data-parallel, rank 0 writes."""
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "experiments.ablate",
         *tiny_args(out, tmp_path / "cache", "--arms", "baseline", "--seeds", "0",
                    "--cpus-per-run", "1")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.count("augkit ablation: 1 arms x 1 seeds on cpu on 2 processes") == 1
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 1 and df.device[0] == "2 x cpu" and df.status[0] == "ok"
    assert df.test_acc.between(0, 1).all()
    assert [p.name for p in (out / "runs").glob("*/*.json")] == ["seed0.json"]


def _tiny_set(n: int = 12, classes: int = 3) -> AudioSet:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(6000, 12000, (n,), generator=g)
    starts = torch.cumsum(lengths, 0) - lengths
    samples = (torch.randn(int(lengths.sum()), generator=g) * 3000).to(torch.int16)
    return AudioSet(samples, starts, lengths, torch.arange(n) % classes,
                    [f"c/{i}.wav" for i in range(n)], [f"c{k}" for k in range(classes)],
                    8000, [])


def _first_step(cfg: C.Config) -> dict:
    """One step on the global batch with augmentation off, centre crops, BatchNorm in eval
    mode; then the multi-crop evaluation. Gradients, weights and metrics."""
    data = _tiny_set()
    baseline = build_arm("baseline", cfg.frontend, cfg.ablation, len(data.classes))
    trainer = make_trainer(baseline.chain, Recipe.of(cfg), 0, data, torch.arange(9))
    trainer.fixed_position = 0.5
    trainer.model.eval()
    _, x, target = trainer.batch(0, torch.arange(9))
    trainer.train_step(x, target)
    metrics = evaluate(trainer.model, trainer.chain, data, torch.arange(12), trainer.crop_len,
                       batch_size=3, autocast=False)
    return {"grads": {k: p.grad.clone() for k, p in trainer.model.named_parameters()},
            "params": {k: p.detach().clone() for k, p in trainer.model.named_parameters()},
            "metrics": metrics}


def _ddp_rank(rank: int, world: int, store: str, out: str, cfg: C.Config) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                            world_size=world)
    try:
        torch.save(_first_step(cfg), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_first_step_equals_one_process_on_the_global_batch(tmp_path):
    """2 gloo ranks (shares of 3 and 4 clips of a global batch of 7): DDP's averaged
    gradients and the first AdamW step equal one process's on all 7; the gathered
    evaluation gives one process's metrics."""
    import torch.multiprocessing as mp

    cfg = C.resolve("quick", overrides={"sample_rate": 8000, "crop_seconds": 1.0,
                                        "n_fft": 256, "hop_length": 128, "n_mels": 32,
                                        "batch_size": 7, "protocol": "fixed",
                                        "epochs": 1})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = _first_step(cfg)
    finally:
        torch.set_num_threads(threads)
    mp.spawn(_ddp_rank, args=(2, str(tmp_path / "store"), str(tmp_path), cfg), nprocs=2)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for k, g in one["grads"].items():
            torch.testing.assert_close(got["grads"][k], g, rtol=1e-4, atol=1e-6, msg=k)
        for k, p in one["params"].items():  # AdamW's first step is ~lr * g / (|g| + eps):
            # float noise in a gradient near eps moves a weight by ~1e-6 (lr is 3e-3)
            torch.testing.assert_close(got["params"][k], p, rtol=1e-5, atol=1e-5, msg=k)
        m, ref = got["metrics"], one["metrics"]
        assert (m.acc, m.acc_centre, m.f1, m.confusion) == (
            ref.acc, ref.acc_centre, ref.f1, ref.confusion)
        assert m.loss == pytest.approx(ref.loss, rel=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--workers", "-1"], "workers must be >= 0"),
    (["--cpus-per-run", "-2"], "cpus_per_run must be >= 0"),
    (["--gpus-per-run", "2"], "gpus_per_run must be in [0, 1]"),
    (["--gpus-per-run", "0.5", "--device", "cpu"], "use --gpus-per-run 0 on the CPU"),
])
def test_bad_scale_out_options_get_a_clear_error(argv, message, tmp_path, capsys):
    assert ablate.main(["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                        "--no-progress", "--swanlab-mode", "disabled", *argv]) == 2
    assert message in capsys.readouterr().err
