"""Repeat(chain, n) in one call vs the chain called n times: time and peak memory.

``python benchmarks/repeat_views.py [--chain full|wave|spec] [--batch 32] [--views 4]``

Each variant runs in its own subprocess. Peak memory of the first call: on CUDA
``torch.cuda.max_memory_allocated`` minus what was allocated before it; on CPU the
process's peak resident set (``ru_maxrss``) minus its resident set just before
(one-time costs such as FFT plans are the same for both variants). Time: median
and minimum of ``--reps`` further calls.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

import augkit as ak


def chain(sample_rate: int, kind: str = "full") -> ak.Compose:
    """``full``: waveform steps, log-mel, spectrogram steps, Mixup; ``wave``: the
    waveform steps; ``spec``: the spectrogram steps and CutMix, on log-mels."""
    wave = [ak.Gain(gain_db=(-12, 12), p=0.5), ak.GaussianNoise(snr_db=(10, 40), p=0.5)]
    spec = [ak.TimeMasking(20, num_masks=2, value="mean"),
            ak.FrequencyMasking(12, num_masks=2, value="mean")]
    if kind == "wave":
        return ak.Compose(wave, num_classes=10)
    if kind == "spec":
        return ak.Compose([*spec, ak.CutMix(mode="box", num_classes=10)])
    return ak.Compose([*wave, ak.MelFrontend(sample_rate, n_fft=512, hop_length=160,
                                             n_mels=64), *spec, ak.Mixup(num_classes=10)])


def run(variant: str, batch: int, views: int, seconds: float, device: str, reps: int,
        kind: str) -> dict:
    torch.manual_seed(0)
    sr = 16000
    c = chain(sr, kind).to(device)
    frames = int(seconds * sr) // 160 + 1
    shape = (batch, 1, 64, frames) if kind == "spec" else (batch, 1, int(seconds * sr))
    x = torch.randn(shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    g = torch.Generator(device=device).manual_seed(0)
    rep = ak.Repeat(c, n_views=views)

    def call():
        if variant == "repeat":
            return rep(x, target=y, generator=g)
        outs = [c(x, target=y, generator=g) for _ in range(views)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = call()
        sync()
        peak = torch.cuda.max_memory_allocated() - before
    else:  # the first call in a fresh process: resident set now -> its peak
        with open("/proc/self/statm") as f:
            before = int(f.read().split()[1]) * resource.getpagesize()
        out = call()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    shape = tuple(out[0].shape)
    del out
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t0)
    return dict(variant=variant, shape=shape, median_ms=1000 * statistics.median(times),
                min_ms=1000 * min(times), peak_mib=peak / 2**20,
                input_mib=x.numel() * x.element_size() / 2**20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chain", choices=("full", "wave", "spec"), default="full")
    ap.add_argument("--variant", choices=("repeat", "loop"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.variant:
        print(json.dumps(run(a.variant, a.batch, a.views, a.seconds, a.device, a.reps, a.chain)))
        return
    for variant in ("loop", "repeat"):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{variant:6s} out {r['shape']}: median {r['median_ms']:.1f} ms "
              f"(min {r['min_ms']:.1f}), peak +{r['peak_mib']:.1f} MiB "
              f"(input {r['input_mib']:.1f} MiB)")
    print(f"chain={a.chain} batch={a.batch} views={a.views} device={a.device} "
          f"threads={a.threads} torch={torch.__version__}")


if __name__ == "__main__":
    main()
