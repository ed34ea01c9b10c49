"""augkit vs torch-audiomentations 0.12, transform by transform, in one run.

B=32 clips of 5 s at 16 kHz, ``p=0.5``, per-example parameters in both
libraries; on CPU with 1 and 2 threads. ``python -m benchmarks.report`` prints
clips/s and augkit's ratio to torch-audiomentations in each group.
"""

from __future__ import annotations

import pytest
import torch

import augkit as ak

ta = pytest.importorskip("torch_audiomentations")

SR, B, SECONDS = 16000, 32, 5


def _ta(cls, **kw):
    return getattr(ta, cls)(mode="per_example", p=0.5, sample_rate=SR, output_type="tensor", **kw)


def _ta_files(cls, **kw):
    import torchaudio

    if not hasattr(torchaudio, "info"):
        pytest.skip("torch-audiomentations 0.12 reads its files with torchaudio.info, which "
                    f"torchaudio {torchaudio.__version__} no longer has")
    return _ta(cls, **kw)


# name -> (augkit factory(banks), torch-audiomentations factory(banks)); the same settings.
PAIRS = {
    "gain": (lambda b: ak.Gain(gain_db=(-18, 6)),
             lambda b: _ta("Gain", min_gain_in_db=-18, max_gain_in_db=6)),
    "polarity": (lambda b: ak.PolarityInversion(), lambda b: _ta("PolarityInversion")),
    "shift": (lambda b: ak.TimeShift(0.5), lambda b: _ta("Shift")),
    "white_noise": (lambda b: ak.GaussianNoise(snr_db=(3, 30)),
                    lambda b: _ta("AddColoredNoise", min_f_decay=0.0, max_f_decay=0.0)),
    "colored_noise": (lambda b: ak.ColoredNoise(), lambda b: _ta("AddColoredNoise")),
    "lowpass": (lambda b: ak.LowPassFilter(sample_rate=SR), lambda b: _ta("LowPassFilter")),
    "highpass": (lambda b: ak.HighPassFilter(sample_rate=SR), lambda b: _ta("HighPassFilter")),
    "bandpass": (lambda b: ak.BandPassFilter(sample_rate=SR), lambda b: _ta("BandPassFilter")),
    "bandstop": (lambda b: ak.BandStopFilter(sample_rate=SR), lambda b: _ta("BandStopFilter")),
    "pitch_shift": (lambda b: ak.PitchShift(sample_rate=SR), lambda b: _ta("PitchShift")),
    "peak_normalize": (lambda b: ak.PeakNormalize(), lambda b: _ta("PeakNormalization")),
    "time_reversal": (lambda b: ak.TimeReversal(), lambda b: _ta("TimeInversion")),
    "background_noise": (lambda b: ak.BackgroundNoise(b["noise"], sample_rate=SR),
                         lambda b: _ta_files("AddBackgroundNoise", background_paths=b["noise"])),
    "reverb": (lambda b: ak.ImpulseResponse(b["ir"], sample_rate=SR),
               lambda b: _ta_files("ApplyImpulseResponse", ir_paths=b["ir"],
                             compensate_for_propagation_delay=True, convolve_mode="full")),
}


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}t")
def threads(request, device):
    if device.type == "cuda" and request.param != 2:
        pytest.skip("thread count is a CPU setting")
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


@pytest.mark.parametrize("impl", ["augkit", "torch_audiomentations"])
@pytest.mark.parametrize("name", list(PAIRS))
def test_peer(run, device, threads, banks, name, impl):
    ours, theirs = PAIRS[name]
    try:
        t = (ours if impl == "augkit" else theirs)(banks).to(device)
    except AttributeError as e:  # a transform this checkout does not have yet
        pytest.skip(str(e))
    x = torch.randn(B, 1, SR * SECONDS, generator=torch.Generator().manual_seed(0)) * 0.1
    x = x.to(device)
    if impl == "augkit":
        g = torch.Generator(device=device).manual_seed(0)
        fn = lambda: t(x, generator=g)  # noqa: E731
    else:
        fn = lambda: t(x)  # noqa: E731
    group = f"peers {name} B={B} {SECONDS}s {device.type}" + (
        f" {threads}t" if device.type == "cpu" else "")
    run(fn, group=group, clips=B, impl=impl, batch=B, seconds=SECONDS, threads=threads)
