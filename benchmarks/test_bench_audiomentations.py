"""augkit vs audiomentations, transform by transform, in one run.

audiomentations is the NumPy/SciPy library most projects use (CPU only, one
clip per call): its users call ``transform(samples=clip, sample_rate=sr)`` for
each clip, in the data loader. The benchmark does exactly that for B=32 clips
of 5 s at 16 kHz, mono, against one batched augkit call on the same clips on
the CPU, with 1 and 2 threads (torch's, and numpy/scipy's BLAS and OpenMP pools
through threadpoolctl). ``p=0.5`` in both, the same ranges where the two
parameterise a transform the same way (see the comment on each pair).
``python -m benchmarks.report`` prints clips/s and augkit's ratio to
audiomentations in each group.

For a quick check that every case still runs: ``AUGKIT_BENCH_AM_BATCH=2
AUGKIT_BENCH_AM_SECONDS=0.5 pytest benchmarks/test_bench_audiomentations.py
--benchmark-disable``.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
import torch

import augkit as ak

A = pytest.importorskip("audiomentations")

SR = 16000
B = int(os.environ.get("AUGKIT_BENCH_AM_BATCH", 32))
SECONDS = float(os.environ.get("AUGKIT_BENCH_AM_SECONDS", 5))


def _am(cls, p=0.5, **kw):
    return getattr(A, cls)(p=p, **kw)


# name -> (augkit factory(banks), audiomentations factory(banks)).
PAIRS = {
    "gain": (lambda b: ak.Gain(gain_db=(-18, 6)),
             lambda b: _am("Gain", min_gain_db=-18, max_gain_db=6)),
    "polarity": (lambda b: ak.PolarityInversion(), lambda b: _am("PolarityInversion")),
    "shift": (lambda b: ak.TimeShift(0.5),  # rollover, no fade in either
              lambda b: _am("Shift", min_shift=-0.5, max_shift=0.5, fade_duration=0.0)),
    "time_reversal": (lambda b: ak.TimeReversal(), lambda b: _am("Reverse")),
    "peak_normalize": (lambda b: ak.PeakNormalize(), lambda b: _am("Normalize")),
    # augkit's is a deterministic normaliser (always on): audiomentations' at p=1, -23 LUFS
    "loudness_normalize": (lambda b: ak.LoudnessNormalize(sample_rate=SR),
                           lambda b: _am("LoudnessNormalization", p=1.0, min_lufs=-23.0,
                                         max_lufs=-23.0)),
    "white_noise": (lambda b: ak.GaussianNoise(snr_db=(3, 30)),
                    lambda b: _am("AddGaussianSNR", min_snr_db=3, max_snr_db=30)),
    # colour ranges differ in units (augkit: spectral exponent, audiomentations: dB/octave)
    "colored_noise": (lambda b: ak.ColoredNoise(snr_db=(3, 30)),
                      lambda b: _am("AddColorNoise", min_snr_db=3, max_snr_db=30)),
    "background_noise": (lambda b: ak.BackgroundNoise(b["noise"], sample_rate=SR),
                         lambda b: _am("AddBackgroundNoise", sounds_path=b["noise"],
                                       min_snr_db=3, max_snr_db=30)),
    "reverb": (lambda b: ak.ImpulseResponse(b["ir"], sample_rate=SR),
               lambda b: _am("ApplyImpulseResponse", ir_path=b["ir"])),
    # different room models (augkit: image sources + late tail; audiomentations: pyroomacoustics)
    "room_simulator": (lambda b: ak.RoomSimulator(sample_rate=SR),
                       lambda b: _am("RoomSimulator")),
    # Butterworth ranges as audiomentations' defaults; its filters are IIR (12-24 dB/octave)
    "lowpass": (lambda b: ak.LowPassFilter(sample_rate=SR), lambda b: _am("LowPassFilter")),
    "highpass": (lambda b: ak.HighPassFilter(sample_rate=SR), lambda b: _am("HighPassFilter")),
    "bandpass": (lambda b: ak.BandPassFilter(sample_rate=SR), lambda b: _am("BandPassFilter")),
    "bandstop": (lambda b: ak.BandStopFilter(sample_rate=SR), lambda b: _am("BandStopFilter")),
    "peaking": (lambda b: ak.PeakingFilter(center_hz=(50, 7500), gain_db=(-24, 24), q=(0.5, 5),
                                           sample_rate=SR),
                lambda b: _am("PeakingFilter")),
    "low_shelf": (lambda b: ak.LowShelfFilter(cutoff_hz=(50, 4000), gain_db=(-18, 18),
                                              q=(0.1, 0.999), sample_rate=SR),
                  lambda b: _am("LowShelfFilter")),
    "high_shelf": (lambda b: ak.HighShelfFilter(cutoff_hz=(300, 7500), gain_db=(-18, 18),
                                                q=(0.1, 0.999), sample_rate=SR),
                   lambda b: _am("HighShelfFilter")),
    # 5 peaking bands and two shelves, +-12 dB, as SevenBandParametricEQ's seven sections
    "parametric_eq": (lambda b: ak.ParametricEQ(n_bands=(5, 5), gain_db=(-12, 12),
                                                shelf_gain_db=(-12, 12), sample_rate=SR),
                      lambda b: _am("SevenBandParametricEQ")),
    "air_absorption": (lambda b: ak.AirAbsorption(sample_rate=SR),
                       lambda b: _am("AirAbsorption")),
    "clipping": (lambda b: ak.Clipping(percentile=(0, 40)),
                 lambda b: _am("ClippingDistortion", min_percentile_threshold=0,
                               max_percentile_threshold=40)),
    # drive ranges differ in units (augkit: dB of drive, audiomentations: 0..1 "distortion")
    "tanh_distortion": (lambda b: ak.TanhDistortion(), lambda b: _am("TanhDistortion")),
    "bit_crush": (lambda b: ak.BitCrush(bit_depth=(5, 10)),
                  lambda b: _am("BitCrush", min_bit_depth=5, max_bit_depth=10)),
    "aliasing": (lambda b: ak.Aliasing(rate_hz=(2000, 8000), sample_rate=SR),
                 lambda b: _am("Aliasing", min_sample_rate=2000, max_sample_rate=8000)),
    # one masked segment of 1-20 % of the clip, filled with zeros
    "time_mask": (lambda b: ak.DropChunk(n_chunks=(1, 1), chunk_length=(
                      int(0.01 * SR * SECONDS), int(0.2 * SR * SECONDS))),
                  lambda b: _am("TimeMask", min_band_part=0.01, max_band_part=0.2,
                                fade_duration=0.0)),
    "pitch_shift": (lambda b: ak.PitchShift(sample_rate=SR),
                    lambda b: _am("PitchShift", min_semitones=-4, max_semitones=4)),
    "time_stretch": (lambda b: ak.TimeStretch(),
                     lambda b: _am("TimeStretch", min_rate=0.8, max_rate=1.25,
                                   leave_length_unchanged=True)),
}


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}t")
def threads(request, device):
    if device.type != "cpu":
        pytest.skip("audiomentations runs on the CPU, one clip per call")
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(request.param)
    except ImportError:  # numpy and scipy then use their own defaults
        limits = contextlib.nullcontext()
    with limits:
        yield request.param
    torch.set_num_threads(old)


@pytest.mark.parametrize("impl", ["augkit", "audiomentations"])
@pytest.mark.parametrize("name", list(PAIRS))
def test_peer(run, device, threads, banks, name, impl):
    ours, theirs = PAIRS[name]
    try:
        t = (ours if impl == "augkit" else theirs)(banks)
    except (AttributeError, ImportError) as e:  # not in this checkout, or a missing extra
        pytest.skip(str(e))
    x = torch.randn(B, 1, int(SR * SECONDS), generator=torch.Generator().manual_seed(0)) * 0.1
    if impl == "augkit":
        g = torch.Generator().manual_seed(0)
        fn = (lambda: t(x, generator=g)) if isinstance(t, ak.RandomTransform) else (  # noqa: E731
            lambda: t(x))
    else:
        np.random.seed(0)
        clips = [c for c in x[:, 0].numpy()]  # (T,) float32 each, as audiomentations takes them
        try:  # some transforms import an optional extra on first use (e.g. loudness)
            t(samples=clips[0], sample_rate=SR)
        except ImportError as e:
            pytest.skip(f"audiomentations {name}: {e}")
        fn = lambda: [t(samples=c, sample_rate=SR) for c in clips]  # noqa: E731
    group = f"audiomentations {name} B={B} {SECONDS:g}s cpu {threads}t"
    run(fn, group=group, clips=B, impl=impl, batch=B, seconds=SECONDS, threads=threads)


@pytest.mark.parametrize("impl", ["augkit", "audiomentations"])
def test_copy_floor(run, device, threads, impl):
    """What a pass over the data costs each side, in the same run: the floor of the cheap
    transforms. augkit's batch is one 10 MB tensor that a new output must be written
    for (``x.clone()``); audiomentations' user copies one 320 kB clip at a time, which
    stays in the cache (``np.copy`` per clip). Its in-place and view-returning
    transforms (gain, polarity, reverse) cost less than this copy."""
    x = torch.randn(B, 1, int(SR * SECONDS), generator=torch.Generator().manual_seed(0)) * 0.1
    if impl == "augkit":
        fn = x.clone
    else:
        clips = [c for c in x[:, 0].numpy()]
        fn = lambda: [np.copy(c) for c in clips]  # noqa: E731
    group = f"audiomentations copy_floor B={B} {SECONDS:g}s cpu {threads}t"
    run(fn, group=group, clips=B, impl=impl, batch=B, seconds=SECONDS, threads=threads)
