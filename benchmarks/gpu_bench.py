"""The timed sections of ``make gpu-check``: matrix, peers, compile and the CPU case.

Each section function takes a :class:`Box` (its time budget) and a record ``dict``
that it fills case by case, calling ``box.save()`` after each, so whatever was
measured is on disk when the box cuts the section. Timing: CUDA events after
warm-up (``time.perf_counter`` on CPU), one block of repetitions sized to
``Sizes.target_s``; clips/s is ``batch / seconds per call``.

The compile case runs in a child process (``python -m benchmarks.gpu_bench compile``)
so that its time box can end it even inside a compiler.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import augkit as ak

from . import gpu_cases as gc


class Cut(Exception):
    """A section's time box ran out."""


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one gpu-check run: ``full`` on a GPU, ``tiny`` for ``--allow-cpu``."""

    matrix_batches: tuple[int, ...] = (256, 16)
    matrix_seconds: float = 5.0
    matrix_rate: int = 16000
    chain_batches: tuple[int, ...] = (256, 64, 16)
    chain_seconds: float = 30.0
    chain_rate: int = 22050
    peer_batch: int = 64
    compile_batch: int = 16
    cpu_seconds: float = 30.0
    copy_mib: int = 1024  # the large copy that gives the device's copy bandwidth
    target_s: float = 0.15  # timed time per case
    min_reps: int = 3
    warmup: int = 2  # calls before timing (lazy init, cuFFT plans, the allocator)


FULL = Sizes()
TINY = Sizes(matrix_batches=(4, 2), matrix_seconds=0.5, chain_batches=(4, 2, 1),
             chain_seconds=1.0, peer_batch=4, compile_batch=2, cpu_seconds=2.0, copy_mib=16,
             target_s=0.005, min_reps=1, warmup=1)


class Box:
    """A time budget: ``left()`` seconds remain; ``check(need)`` raises :class:`Cut`."""

    def __init__(self, budget_s: float, save: Callable[[], None] = lambda: None) -> None:
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s
        self.save = save

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, need: float = 0.0) -> None:
        if self.left() <= need:
            raise Cut(f"time box of {self.budget_s:g} s ran out")


def run_plan(box: Box, rec: dict, plan: list[tuple[str, Callable[[], None]]]) -> None:
    """Run ``plan`` (label, step) in order; on :class:`Cut` list the labels not run."""
    for i, (_, step) in enumerate(plan):
        try:
            box.check()
            step()
        except Cut:
            rec["remaining"] = [lbl for lbl, _ in plan[i:]]
            raise
        box.save()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn: Callable[[], object], device: torch.device, box: Box, sizes: Sizes,
           warmup: int | None = None) -> dict:
    """Seconds per call of ``fn`` after ``warmup`` calls (default ``sizes.warmup``): one
    block of repetitions sized to ``sizes.target_s`` (at least ``sizes.min_reps`` calls,
    fewer if the box is short)."""
    cuda = device.type == "cuda"
    warmup = sizes.warmup if warmup is None else warmup

    def block(n: int) -> float:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / n
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync(device)
    first = (time.perf_counter() - t0) / max(warmup, 1)
    box.check()
    est = block(1)
    reps = int(min(max(sizes.target_s / max(est, 1e-7), sizes.min_reps), 2000))
    reps = min(reps, max(1, int(0.8 * box.left() / max(est, 1e-7))))
    box.check(est)
    s = block(reps) if reps > 1 or est > sizes.target_s else est
    return {"s": s, "reps": reps, "warmup_s": round(first, 4)}


def copy_bandwidth(nbytes: int, device: torch.device, box: Box, sizes: Sizes) -> float:
    """GB/s of ``dst.copy_(src)`` on ``nbytes`` float32 bytes, counting read + write."""
    src = torch.randn(max(nbytes // gc.FLOAT, 1), device=device)
    dst = torch.empty_like(src)
    t = timeit(lambda: dst.copy_(src), device, box, sizes)
    return sig(2 * src.numel() * gc.FLOAT / t["s"] / 1e9)


def sig(v: float, digits: int = 4) -> float:
    """``v`` rounded to ``digits`` significant digits (GB/s spans 1e-3 on CPU to 1e3)."""
    return float(f"{v:.{digits}g}")


def _row(s: float, batch: int, nbytes: int | None = None, **info) -> dict:
    row = {**info, "batch": batch, "ms": sig(s * 1e3), "clips_per_s": sig(batch / s)}
    if nbytes is not None:
        row["bytes"] = int(nbytes)
        row["gbs"] = sig(nbytes / s / 1e9)
    return row


# --- (1) the matrix ---------------------------------------------------------------------


def matrix(box: Box, rec: dict, device: torch.device, sizes: Sizes) -> None:
    """Copy bandwidth; the full chain; every transform, MelFrontend and AmplitudeToDB.

    Fills ``rec["copy"]`` (``large_gbs`` and ``by_bytes``: the copy of each input size),
    ``rec["chain"]`` and ``rec["transforms"]`` (rows with clips/s, GB/s by the minimal
    byte model, and ``copy_fraction``: GB/s over the copy bandwidth of the same size).
    """
    copy = rec.setdefault("copy", {"by_bytes": {}})
    chains, rows = rec.setdefault("chain", []), rec.setdefault("transforms", [])
    rec["byte_model"] = {
        "transforms": "read the input once per `reads` (2 for a partner or a bank segment) "
                      "and write the output once, float32: the least any transform that "
                      "returns a new tensor moves",
        "MelFrontend": gc.stft_bytes.__doc__.split("\n")[0] + " ...",
        "chain": " ".join(gc.chain_bytes.__doc__.split()),
    }
    mbank = gc.banks(sizes.matrix_rate, device)
    cbank = gc.banks(sizes.chain_rate, device)

    def same_size_copy(nbytes: int) -> float:
        key = str(nbytes)
        if key not in copy["by_bytes"]:
            copy["by_bytes"][key] = copy_bandwidth(nbytes, device, box, sizes)
        return copy["by_bytes"][key]

    def large() -> None:
        copy["large_bytes"] = sizes.copy_mib * 2**20
        copy["large_gbs"] = copy_bandwidth(copy["large_bytes"], device, box, sizes)

    def chain_case(b: int) -> Callable[[], None]:
        def step() -> None:
            t = int(round(sizes.chain_seconds * sizes.chain_rate))
            chain = gc.full_chain(sizes.chain_rate, cbank).to(device)
            g = torch.Generator(device=device).manual_seed(0)
            x = 0.1 * torch.randn(b, 1, t, device=device, generator=g)
            y = torch.randint(0, 10, (b,), device=device, generator=g)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                with torch.inference_mode():
                    r = timeit(lambda: chain(x, target=y), device, box, sizes)
            except Cut:
                raise
            except Exception as e:  # e.g. out of memory: the smaller batches still run
                chains.append({"batch": b, "seconds": sizes.chain_seconds,
                               "error": f"{type(e).__name__}: {e}"[:300]})
                return
            model = gc.chain_bytes(t, sizes.chain_rate, cbank["ir"].shape[-1])
            nbytes = b * sum(model.values())
            row = _row(r["s"], b, nbytes, seconds=sizes.chain_seconds,
                       sample_rate=sizes.chain_rate, reps=r["reps"], steps=chain.names,
                       bytes_per_clip=model)
            bw = copy["large_gbs"]
            row["floor_clips_per_s"] = round(b * bw * 1e9 / nbytes, 1)
            row["floor_fraction"] = sig(row["gbs"] / bw, 3)
            if device.type == "cuda":
                row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            chains.append(row)
        return step

    def transform_case(name: str, case: gc.Case, b: int) -> Callable[[], None]:
        def step() -> None:
            t0 = time.perf_counter()
            info = dict(name=name, input=case.input, kind=case.kind,
                        seconds=sizes.matrix_seconds, sample_rate=sizes.matrix_rate)
            try:
                m = case.factory(sizes.matrix_rate, mbank).to(device)
                x = gc.matrix_input(case, b, sizes.matrix_seconds, sizes.matrix_rate, device)
                with torch.inference_mode():
                    y = m(x)
                    r = timeit(lambda: m(x), device, box, sizes)
            except Cut:
                raise
            except Exception as e:  # one case failing must not end the matrix
                rows.append({**info, "batch": b, "error": f"{type(e).__name__}: {e}"[:300]})
                return
            if name == "MelFrontend":
                nbytes = b * gc.stft_bytes(x.shape[-1], **gc.MATRIX_MEL)
            else:
                nbytes = case.reads * x.numel() * x.element_size() + y.numel() * y.element_size()
            row = _row(r["s"], b, nbytes, **info, reps=r["reps"],
                       step_s=round(time.perf_counter() - t0, 2))
            ref = same_size_copy(x.numel() * x.element_size())
            row["copy_gbs"] = ref
            row["copy_fraction"] = sig(row["gbs"] / ref, 3)
            rows.append(row)
        return step

    everything = {**gc.CASES, **gc.MODULES}
    first = sorted(everything, key=lambda n: everything[n].kind != "elementwise")
    plan = [("copy bandwidth", large)]
    plan += [(f"chain B={b}", chain_case(b)) for b in sizes.chain_batches]
    plan += [(f"{n} B={b}", transform_case(n, everything[n], b))
             for b in sizes.matrix_batches for n in first]
    run_plan(box, rec, plan)


# --- (2) peers --------------------------------------------------------------------------


def _ta(cls: str, sr: int, **kw):
    import torch_audiomentations as ta

    return getattr(ta, cls)(mode="per_example", p=0.5, sample_rate=sr, output_type="tensor",
                            **kw)


def _rbj(kind: str, freq: torch.Tensor, sr: int, q: float = 0.707):
    """Per-example RBJ-cookbook biquads (torchaudio's ``*_biquad`` formulas) as
    ``lfilter`` coefficients ``(a, b)``, each ``(B, 3)``."""
    w0 = 2 * math.pi * freq / sr
    cos, alpha = torch.cos(w0), torch.sin(w0) / (2 * q)
    one = torch.ones_like(w0)
    b = {"lowpass": ((1 - cos) / 2, 1 - cos, (1 - cos) / 2),
         "highpass": ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2),
         "bandpass": (alpha, 0 * w0, -alpha),
         "bandstop": (one, -2 * cos, one)}[kind]
    return torch.stack((1 + alpha, -2 * cos, 1 - alpha), -1), torch.stack(b, -1)


def _torchaudio_peers(sr: int, bank: dict, b: int, device: torch.device) -> dict:
    """name -> (callable on x (B, 1, T), note) for torchaudio's equivalents."""
    import torchaudio.functional as taf
    import torchaudio.transforms as tat

    g = torch.Generator(device=device).manual_seed(1)
    out = {}
    ranges = {"lowpass": (150.0, 7500.0), "highpass": (20.0, 2400.0),
              "bandpass": (200.0, 4000.0), "bandstop": (200.0, 4000.0)}
    for kind, (lo, hi) in ranges.items():
        f = lo * (hi / lo) ** torch.rand(b, device=device, generator=g)
        a_c, b_c = _rbj(kind, f, sr)
        out[kind] = (lambda x, a_c=a_c, b_c=b_c: taf.lfilter(x.reshape(x.shape[0], -1), a_c, b_c,
                                                             clamp=False, batching=True),
                     "lfilter, one 2nd-order biquad per example (augkit: 4th order)")
    irs = bank["ir"][torch.randint(0, bank["ir"].shape[0], (b,), device=device, generator=g)]
    out["reverb"] = (lambda x: taf.fftconvolve(x, irs[:, None])[..., : x.shape[-1]],
                     "fftconvolve with a gathered response per example")
    # torchaudio resamples by gcd(sr, sr / 2 ** (n / 12)): +2 semitones at 16 kHz would build
    # a 7127 -> 8000 polyphase kernel (GBs); an octave is its one cheap shift
    out["pitch_shift"] = (lambda x: taf.pitch_shift(x, sr, 12),
                          "pitch_shift, one shift for the whole batch: +12 semitones, its only "
                          "cheap ratio")
    out["speed"] = (lambda x: taf.speed(x, sr, 1.1)[0],
                    "speed, one factor (1.1) for the whole batch")
    mel = tat.MelSpectrogram(sr, **gc.MATRIX_MEL).to(device)
    out["mel"] = (mel, "MelSpectrogram")
    return out


#: name -> (augkit factory(sr, bank), torch-audiomentations factory(sr, files) or None).
PEERS: dict[str, tuple[Callable, Callable | None]] = {
    "gain": (lambda sr, b: ak.Gain(gain_db=(-18, 6)),
             lambda sr, f: _ta("Gain", sr, min_gain_in_db=-18, max_gain_in_db=6)),
    "polarity": (lambda sr, b: ak.PolarityInversion(), lambda sr, f: _ta("PolarityInversion", sr)),
    "shift": (lambda sr, b: ak.TimeShift(0.5), lambda sr, f: _ta("Shift", sr)),
    "time_reversal": (lambda sr, b: ak.TimeReversal(), lambda sr, f: _ta("TimeInversion", sr)),
    "peak_normalize": (lambda sr, b: ak.PeakNormalize(),
                       lambda sr, f: _ta("PeakNormalization", sr)),
    "white_noise": (lambda sr, b: ak.GaussianNoise(snr_db=(3, 30)),
                    lambda sr, f: _ta("AddColoredNoise", sr, min_f_decay=0.0, max_f_decay=0.0)),
    "colored_noise": (lambda sr, b: ak.ColoredNoise(), lambda sr, f: _ta("AddColoredNoise", sr)),
    "lowpass": (lambda sr, b: ak.LowPassFilter(sample_rate=sr),
                lambda sr, f: _ta("LowPassFilter", sr)),
    "highpass": (lambda sr, b: ak.HighPassFilter(sample_rate=sr),
                 lambda sr, f: _ta("HighPassFilter", sr)),
    "bandpass": (lambda sr, b: ak.BandPassFilter(sample_rate=sr),
                 lambda sr, f: _ta("BandPassFilter", sr)),
    "bandstop": (lambda sr, b: ak.BandStopFilter(sample_rate=sr),
                 lambda sr, f: _ta("BandStopFilter", sr)),
    "reverb": (lambda sr, b: ak.ImpulseResponse(b["ir"]),
               lambda sr, f: _ta("ApplyImpulseResponse", sr, ir_paths=f["ir"],
                                 compensate_for_propagation_delay=True, convolve_mode="full")),
    "background_noise": (lambda sr, b: ak.BackgroundNoise(b["noise"]),
                         lambda sr, f: _ta("AddBackgroundNoise", sr, background_paths=f["noise"])),
    "speed": (lambda sr, b: ak.Speed(), None),
    "mel": (lambda sr, b: ak.MelFrontend(sr, **gc.MATRIX_MEL, log=None), None),
    "pitch_shift": (lambda sr, b: ak.PitchShift(sample_rate=sr),
                    lambda sr, f: _ta("PitchShift", sr)),
}
FILE_PEERS = ("reverb", "background_noise")


def _peer_files(bank: dict, sr: int, folder: Path) -> tuple[dict | None, str | None]:
    """The banks as WAV folders for torch-audiomentations, or why it cannot read them."""
    import torchaudio

    if not hasattr(torchaudio, "info"):
        return None, ("torch-audiomentations 0.12 reads its files with torchaudio.info, which "
                      f"torchaudio {torchaudio.__version__} no longer has")
    try:
        import soundfile as sf
    except ImportError as e:
        return None, f"soundfile is needed to write the banks: {e}"
    out = {}
    for kind, clips in bank.items():
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i, clip in enumerate(clips.cpu().numpy()):
            sf.write(folder / kind / f"{kind}{i}.wav", clip, sr)
        out[kind] = str(folder / kind)
    return out, None


def peers(box: Box, rec: dict, device: torch.device, sizes: Sizes, work: Path) -> None:
    """augkit vs torch-audiomentations 0.12 (CUDA inputs) and torchaudio, B × 5 s at 16 kHz.

    Fills ``rec["rows"]`` (name, impl, clips/s, note), ``rec["ratios"]`` (augkit over
    each peer, and augkit's GB/s over the copy bandwidth of the input's size) and
    ``rec["skipped"]`` (what could not run, and why).
    """
    sr, b = sizes.matrix_rate, sizes.peer_batch
    bank = gc.banks(sr, device)
    rows, skipped = rec.setdefault("rows", []), rec.setdefault("skipped", {})
    ratios = rec.setdefault("ratios", {})
    x = 0.1 * torch.randn(b, 1, int(sizes.matrix_seconds * sr), device=device,
                          generator=torch.Generator(device=device).manual_seed(0))
    nbytes = 2 * x.numel() * x.element_size()
    rec["batch"], rec["seconds"], rec["sample_rate"] = b, sizes.matrix_seconds, sr
    try:
        import torch_audiomentations as ta

        rec["torch_audiomentations"] = ta.__version__
        ta_error = None
    except Exception as e:  # an ImportError, or one of its imports failing on this torch
        ta_error = f"torch-audiomentations cannot be imported: {type(e).__name__}: {e}"[:300]
        rec["torch_audiomentations"] = None
    files, files_error = (None, ta_error) if ta_error else _peer_files(bank, sr, work / "banks")
    audio = _torchaudio_peers(sr, bank, b, device)
    rec["copy_gbs"] = copy_bandwidth(x.numel() * x.element_size(), device, box, sizes)

    def measure(name: str, impl: str, make: Callable[[], Callable], note: str = "") -> None:
        t0 = time.perf_counter()
        try:
            fn = make()
            with torch.inference_mode():
                r = timeit(lambda: fn(x), device, box, sizes, warmup=1)  # peers: slow first
        except Cut:
            raise
        except Exception as e:
            skipped[f"{name}/{impl}"] = f"{type(e).__name__}: {e}"[:300]
            return
        row = _row(r["s"], b, nbytes if impl == "augkit" else None, name=name, impl=impl,
                   reps=r["reps"], note=note, step_s=round(time.perf_counter() - t0, 2))
        rows.append(row)
        mine = next((q for q in rows if q["name"] == name and q["impl"] == "augkit"), None)
        if mine is not None:
            entry = ratios.setdefault(name, {})
            if impl == "augkit":
                entry["copy_fraction"] = sig(row["gbs"] / rec["copy_gbs"], 3)
            else:
                entry[impl] = sig(mine["clips_per_s"] / row["clips_per_s"], 3)

    plan = []
    for name, (ours, theirs) in PEERS.items():
        plan.append((f"{name} augkit", lambda n=name, o=ours: measure(
            n, "augkit", lambda: o(sr, bank).to(device))))
        if theirs is not None:
            why = ta_error or (files_error if name in FILE_PEERS else None)
            if why:
                skipped[f"{name}/torch_audiomentations"] = why
            else:
                plan.append((f"{name} torch_audiomentations", lambda n=name, t=theirs: measure(
                    n, "torch_audiomentations", lambda: t(sr, files).to(device))))
        if name in audio:
            fn, note = audio[name]
            plan.append((f"{name} torchaudio", lambda n=name, f=fn, no=note: measure(
                n, "torchaudio", lambda: f, no)))
    run_plan(box, rec, plan)


# --- (4) compile: a child process, so that the time box can end it ------------------------


def compile_child(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.gpu_bench compile --json PATH ...``: eager vs compiled replay."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_bench compile")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", choices=("full", "tiny"), default="full")
    p.add_argument("--mode", default="reduce-overhead")
    p.add_argument("--backend", default="inductor")
    a = p.parse_args(argv)
    device, sizes = torch.device(a.device), FULL if a.sizes == "full" else TINY
    b, t = sizes.compile_batch, int(round(sizes.chain_seconds * sizes.chain_rate))
    out = {"batch": b, "seconds": sizes.chain_seconds, "sample_rate": sizes.chain_rate,
           "mode": a.mode if a.backend == "inductor" else None, "backend": a.backend}

    def save() -> None:
        write_json(a.json, out)

    box = Box(1e9)
    chain = gc.full_chain(sizes.chain_rate, gc.banks(sizes.chain_rate, device)).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    x = 0.1 * torch.randn(b, 1, t, device=device, generator=g)
    y = torch.randint(0, 10, (b,), device=device, generator=g)
    with torch.no_grad():
        chain(x, generator=g, target=y)
        params = chain.last_params

        def replay(x, y):
            return chain(x, params=params, target=y)

        eager = timeit(lambda: replay(x, y), device, box, sizes)
        out.update(eager_ms=round(eager["s"] * 1e3, 4),
                   eager_clips_per_s=round(b / eager["s"], 1))
        save()
        kw = {"mode": a.mode} if a.backend == "inductor" else {}
        compiled = torch.compile(replay, backend=a.backend, **kw)
        t0 = time.perf_counter()
        for _ in range(3):  # compile, then CUDA-graph warm-up and recording
            ref = compiled(x, y)
        sync(device)
        out["compile_s"] = round(time.perf_counter() - t0, 2)
        want = replay(x, y)
        out["max_abs_diff"] = max(float((u - v).abs().max())
                                  for u, v in zip(ref, want, strict=True))
        save()
        fast = timeit(lambda: compiled(x, y), device, box, sizes)
    out.update(compiled_ms=round(fast["s"] * 1e3, 4),
               compiled_clips_per_s=round(b / fast["s"], 1),
               speedup=round(eager["s"] / fast["s"], 2))
    try:  # torch internals: how many graphs, and why it broke (diagnostics only)
        from torch._dynamo.utils import counters

        out["graphs"] = int(counters["stats"].get("unique_graphs", 0))
        out["graph_breaks"] = {k[:120]: v for k, v in counters["graph_break"].items()}
    except Exception:
        pass
    save()
    return 0


def compile_section(box: Box, rec: dict, device: torch.device, sizes: Sizes, work: Path,
                    log: Path) -> None:
    """The full chain at B=16: replay of given params, eager vs ``torch.compile``.

    On CUDA: ``mode="reduce-overhead"`` (inductor with CUDA graphs); on CPU the
    ``"eager"`` backend, which traces with dynamo but generates no code (quick).
    """
    path = work / "compile.json"
    backend = "inductor" if device.type == "cuda" else "eager"
    cmd = [sys.executable, "-m", "benchmarks.gpu_bench", "compile", "--json", str(path),
           "--device", device.type, "--sizes", "full" if sizes is FULL else "tiny",
           "--backend", backend]
    res = run_budgeted(cmd, log, box.left(), env=child_env(), cwd=ROOT)
    if path.exists():
        rec.update(json.loads(path.read_text()))
    rec["child"] = res
    if res["timed_out"]:
        raise Cut(f"time box of {box.budget_s:g} s ran out (compile child ended)")
    if res["rc"] != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise RuntimeError(f"compile child exited {res['rc']}: {''.join(tail)[:300]}")


# --- the CPU case -----------------------------------------------------------------------


def cpu_case(box: Box, rec: dict, sizes: Sizes) -> None:
    """MelFrontend vs torchaudio's MelSpectrogram, B=1 × 30 s at 22.05 kHz, on all cores."""
    import torchaudio

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rec.update(cpu_count=os.cpu_count(), cores_usable=cores, seconds=sizes.cpu_seconds)
    mel = dict(sample_rate=22050, n_fft=2048, hop_length=640, n_mels=128)
    rec["settings"] = mel
    x = torch.randn(1, 1, int(sizes.cpu_seconds * 22050),
                    generator=torch.Generator().manual_seed(0))
    old = torch.get_num_threads()
    torch.set_num_threads(cores)
    rec["threads"] = torch.get_num_threads()
    try:
        cpu = torch.device("cpu")
        with torch.inference_mode():
            for impl, fn in (("augkit", ak.MelFrontend(**mel, log=None)),
                             ("torchaudio", torchaudio.transforms.MelSpectrogram(**mel))):
                r = timeit(lambda f=fn: f(x), cpu, box,
                           Sizes(target_s=10 * sizes.target_s, min_reps=5))
                rec[impl] = _row(r["s"], 1, reps=r["reps"])
                box.save()
    finally:
        torch.set_num_threads(old)
    rec["ratio"] = round(rec["augkit"]["clips_per_s"] / rec["torchaudio"]["clips_per_s"], 3)


# --- helpers shared with gpu_check --------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict:
    """This environment with the repository first on ``PYTHONPATH``: the GPU machine runs
    a plain checkout, where neither augkit nor the runner is installed."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def run_budgeted(cmd: list[str], log: Path, budget: float, env: dict | None = None,
                 cwd: Path | None = None) -> dict:
    """Run ``cmd`` with output to ``log``; SIGINT after ``budget`` s, SIGKILL 4 s later (and
    on any exception here, e.g. the section's backstop), so no child outlives its box."""
    start = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=max(budget, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True  # SIGINT first: pytest still writes its junit file
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=4)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {"rc": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.monotonic() - start, 1)}


def sizes_dict(sizes: Sizes) -> dict:
    return asdict(sizes)


if __name__ == "__main__":
    if sys.argv[1:2] != ["compile"]:
        sys.exit("usage: python -m benchmarks.gpu_bench compile --json PATH [...]")
    raise SystemExit(compile_child(sys.argv[2:]))
