"""``make gpu-check``'s script on the CPU at tiny sizes (``--allow-cpu``), as CI runs it.

The first GPU run must not be a debugging run: every section runs here end to end, the
files it leaves are checked, a section cut by its time box says so, and the docs'
tables render from the files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import augkit as ak
from augkit.transforms import random_transforms
from benchmarks import gpu_ablation, gpu_bench, gpu_cases, gpu_check, gpu_report

ROOT = Path(__file__).resolve().parents[1]
FILES = {"gpu-check.json", "gpu-check.md", "logs.tar.gz"}


def run_script(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--out", str(out),
                          "--allow-cpu", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=400)
    summary = json.loads((out / "gpu-check.json").read_text())
    return res, summary


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    res, summary = run_script(out)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return out, summary, res.stdout


def test_every_section_runs_on_cpu_within_three_minutes(full_run):
    out, s, stdout = full_run
    assert {p.name for p in out.iterdir()} == FILES  # <= 6 files come back from the GPU
    assert list(s["sections"]) == list(gpu_check.SECTIONS)
    assert {k: v["status"] for k, v in s["sections"].items()} == dict.fromkeys(
        gpu_check.SECTIONS, "ok")
    assert s["ok"] and s["sizes"] == "tiny" and s["seconds"] < 180
    assert all(v["wall_s"] <= v["budget_s"] + gpu_check.BACKSTOP_S
               for v in s["sections"].values())
    assert s["device"]["cpu_count"] >= 1 and "CPU cores" in stdout
    with tarfile.open(out / "logs.tar.gz") as t:
        names = set(t.getnames())
    assert {"logs/gpu-check.log", "logs/sync.log", "logs/sync.xml", "logs/compile.log",
            "logs/ablation/sequential0.log"} <= names


def test_matrix_records_every_transform_the_chain_and_the_copy_bandwidth(full_run):
    m = full_run[1]["sections"]["matrix"]
    assert m["copy"]["large_gbs"] > 0
    rows = m["transforms"]
    assert not [r for r in rows if "error" in r]
    want = set(random_transforms()) | {"MelFrontend", "AmplitudeToDB"}
    for b in gpu_bench.TINY.matrix_batches:
        assert {r["name"] for r in rows if r["batch"] == b} == want
    for r in rows:
        assert r["clips_per_s"] > 0 and r["gbs"] > 0 and r["copy_fraction"] > 0
    chains = m["chain"]
    assert [r["batch"] for r in chains] == list(gpu_bench.TINY.chain_batches)
    for r in chains:
        assert r["floor_clips_per_s"] > 0 and 0 < r["floor_fraction"]
        assert r["bytes"] == r["batch"] * sum(r["bytes_per_clip"].values())


def test_peers_torchaudio_and_the_reasons_for_what_is_missing(full_run):
    p = full_run[1]["sections"]["peers"]
    impls = {(r["name"], r["impl"]) for r in p["rows"]}
    assert {("lowpass", "torchaudio"), ("reverb", "torchaudio"), ("pitch_shift", "torchaudio"),
            ("speed", "torchaudio"), ("mel", "torchaudio")} <= impls
    assert {n for n, i in impls if i == "augkit"} == set(gpu_bench.PEERS)
    for name, (_, theirs) in gpu_bench.PEERS.items():
        if theirs is not None:  # measured, or the reason why not
            assert ((name, "torch_audiomentations") in impls
                    or f"{name}/torch_audiomentations" in p["skipped"]), name
    assert p["ratios"]["gain"]["torch_audiomentations"] > 0


def test_sync_compile_ablation_and_cpu_case(full_run):
    s = full_run[1]["sections"]
    y = s["sync"]  # no CUDA here: the cuda tests are collected and skip
    assert "tests/test_cuda.py" in y["files"] and y["junit"]
    assert y["counts"]["skipped"] > 100 and y["counts"]["failed"] == y["counts"]["errors"] == 0
    c = s["compile"]
    assert c["backend"] == "eager" and c["eager_ms"] > 0 and c["compiled_ms"] > 0
    assert c["max_abs_diff"] < 1e-3
    a = s["ablation"]
    assert a["extrapolated"]["extrapolated"] and a["extrapolated"]["total_s"] > 0
    assert a["packing"]["processes"] == 2  # 4 on a GPU
    assert all(r["rc"] == 0 and r["result"]["arms"] for r in a["packing"]["runs"])
    assert a["packing_speedup"]["by_wall"] > 0
    cpu = s["cpu"]
    assert cpu["threads"] == cpu["cores_usable"] and cpu["ratio"] > 0


def test_the_docs_tables_render_from_the_result_file(full_run):
    out, s, _ = full_run
    md = gpu_report.render(s)
    assert (out / "gpu-check.md").read_text().strip() == md.strip()
    for name in [*random_transforms(), "Full chain", "Extrapolated", "Packing 2 processes",
                 "Sync check", "torch.compile", "CPU case", "| matrix | ok |"]:
        assert name in md, name
    assert [g["met"] for g in s["goals"]] == [None] * len(s["goals"])  # tiny: no verdicts
    only = gpu_report.render(s, ["chain", "peers"], level=3)
    assert only.startswith("### Full chain") and "### Peers" in only and "Transforms" not in only
    cli = subprocess.run([sys.executable, "-m", "benchmarks.gpu_report", str(out), "--tables",
                          "goals"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout.startswith("## Goals"), cli.stderr


def test_a_section_cut_by_its_time_box_is_recorded_as_cut(tmp_path):
    res, s = run_script(tmp_path, "--sections", "matrix,compile", "--budget", "matrix=0.5",
                        "--budget", "compile=0.5")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert {p.name for p in tmp_path.iterdir()} == FILES
    m, c = s["sections"]["matrix"], s["sections"]["compile"]
    assert m["status"] == "cut" and "time box" in m["reason"] and m["remaining"]
    # every planned case is either kept (measured before the cut) or listed as remaining
    tiny = gpu_bench.TINY
    planned = 1 + len(tiny.chain_batches) + len(tiny.matrix_batches) * (
        len(gpu_cases.CASES) + len(gpu_cases.MODULES))
    done = ("large_gbs" in m["copy"]) + len(m["chain"]) + len(m["transforms"])
    assert done + len(m["remaining"]) == planned
    assert c["status"] == "cut" and c["child"]["timed_out"]
    assert s["sections"]["peers"] == {"status": "skipped", "budget_s": 20,
                                      "reason": "not selected (--sections)"}
    assert "| matrix | cut |" in (tmp_path / "gpu-check.md").read_text()


def test_without_cuda_it_refuses_unless_allowed(tmp_path):
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--allow-cpu" in res.stdout
    assert not list(tmp_path.iterdir())


def test_every_random_transform_has_a_matrix_case():
    assert set(gpu_cases.CASES) == set(random_transforms())


def test_the_chain_is_the_augkit_preset_plus_filter_noise_and_reverb():
    config = json.loads((ROOT / "experiments/configs/augkit.json").read_text())

    def find(d):  # flat or grouped configs alike
        if isinstance(d, dict):
            return d["augmentations"] if "augmentations" in d else next(
                (v for v in map(find, d.values()) if v is not None), None)
        return None

    assert tuple(find(config)) == gpu_cases.PRESET_AUGMENTATIONS
    chain = gpu_cases.full_chain(22050, gpu_cases.banks(22050))
    assert set(gpu_cases.PRESET_AUGMENTATIONS) | {"lowpass", "colored_noise", "reverb", "mel",
                                                  "scale", "normalize"} == set(chain.names)
    assert isinstance(chain["reverb"], ak.ImpulseResponse)


def test_the_byte_model_gives_the_issues_mel_path_figure():
    # B=256 x 30 s at 22.05 kHz: an unfused STFT -> power -> mel moves about 15 GB
    t = 30 * 22050
    assert 14e9 < 256 * gpu_cases.stft_bytes(t, 2048, 512, 128) < 15.5e9
    model = gpu_cases.chain_bytes(t, 22050, 13230)
    assert model["mel"] == gpu_cases.stft_bytes(t, **gpu_cases.PRESET_MEL)
    assert model["shift"] == 2 * 4 * t and sum(model.values()) > 2 * model["mel"]


@pytest.mark.parametrize("name, power, want", [
    ("NVIDIA H100 80GB HBM3", None, "SXM"), ("NVIDIA H100 PCIe", None, "PCIe"),
    ("NVIDIA H100 NVL", None, "NVL"), ("NVIDIA H200", None, "SXM"),
    ("NVIDIA H100", 700.0, "SXM"), ("NVIDIA H100", 350.0, "PCIe"), ("NVIDIA A10", None, None)])
def test_form_factor(name, power, want):
    assert gpu_check.form_factor(name, power) == want


def test_extrapolation_is_linear_in_epochs_arms_and_seeds():
    r = {"epochs": 3, "data_s": 10.0,
         "arms": {"baseline": {"time_s": 30.0}, "all": {"time_s": 60.0}}}
    x = gpu_ablation.extrapolate(r)
    assert x["extrapolated"] and x["per_epoch_s"] == {"baseline": 10.0, "all": 20.0}
    assert x["total_s"] == 3 * (30 * 10.0 + 5 * 30 * 20.0) + 10.0


def test_goals_judge_a_gpu_run_by_the_issues_bars():
    row = dict(seconds=30, sample_rate=22050, gbs=1.0, floor_clips_per_s=50000.0, steps=[])
    s = {"schema": gpu_report.SCHEMA, "sizes": "full",
         "device": {"device": "cuda", "name": "NVIDIA H100 80GB HBM3", "form_factor": "SXM"},
         "sections": {
             "matrix": {"chain": [{**row, "batch": 16, "clips_per_s": 9000.0,
                                   "floor_fraction": 0.18},
                                  {**row, "batch": 256, "clips_per_s": 31000.0,
                                   "floor_fraction": 0.62}],
                        "transforms": [
                            {"name": "Gain", "kind": "elementwise", "batch": 256,
                             "copy_fraction": 0.7},
                            {"name": "TimeShift", "kind": "elementwise", "batch": 256,
                             "copy_fraction": 0.4},
                            {"name": "TimeShift", "kind": "elementwise", "batch": 16,
                             "copy_fraction": 0.1},
                            {"name": "LowPassFilter", "kind": "fft", "batch": 256,
                             "copy_fraction": 0.1}]},
             "peers": {"ratios": {"gain": {"torch_audiomentations": 3.0, "copy_fraction": 0.9},
                                  "lowpass": {"torch_audiomentations": 12.0},
                                  "pitch_shift": {"torch_audiomentations": 4.0,
                                                  "copy_fraction": 0.01}}},
             "ablation": {"packing_speedup": {"by_process_total": 2.4, "by_wall": 2.9}}}}
    met = {g["goal"]: g["met"] for g in gpu_report.goals(s)}
    assert met == {"full chain at B=256 >= 50% of its memory floor": True,
                   "full chain >= 30,000 clips/s on this device": True,
                   "elementwise transforms at B=256 >= 50% of copy bandwidth": False,
                   "every shared transform >= 10x torch-audiomentations or >= 80% of copy "
                   "bandwidth": False,
                   "packing >= 2x sequential throughput (cnn_small-sized runs)": True}
    table = "\n".join(gpu_report.goals_table(s))
    assert "TimeShift 40%" in table and "pitch_shift 4.0x" in table and "gain" not in table
