"""Per-example pitch shift by any number of semitones, tempo and length kept."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ..functional.phase_vocoder import pitch_shift, pitch_shift_n_fft
from ._base import Params, RandomTransform, check_number, check_range


class PitchShift(RandomTransform):
    """Shift each example's pitch by ``semitones``, keeping its tempo and length.

    Any real number of semitones (no restriction to "fast" ratios): a phase
    vocoder stretches the example by ``1 / ratio`` (``ratio = 2 ** (semitones /
    12)``), then band-limited resampling reads it ``ratio`` times as fast,
    which restores the duration and scales every frequency by ``ratio``
    (:func:`augkit.functional.phase_vocoder.pitch_shift`, as librosa and
    torchaudio do it, batched with one shift per example). The vocoder locks
    phases to spectral peaks (identity phase locking), so partials keep their
    level and onsets stay in place (a tone burst shifted by up to 12 semitones
    keeps 98% of its energy and its onset within 2.5 ms; the plain phase
    vocoder of torchaudio and librosa keeps 12-98% and moves it up to 16 ms).
    Transients are still smeared over about one window.

    ``sample_rate`` has no default: it sets the STFT size, ``n_fft`` the power of
    two of 32-64 ms (512 at 16 kHz, 1024 at 22.05 kHz, 2048 at 44.1 or 48 kHz)
    with a hop of ``n_fft // 4``; the same sizes in samples at another rate would
    be a different time resolution. Inputs shorter than ``n_fft`` work (frames
    are zero-padded).

    Shifts are drawn per example uniformly in ``semitones``, one per example
    shared by its channels. The identity is only approximate, so examples not
    drawn are passed through unchanged. Cost grows with the largest ratio: the
    stretched intermediate is ``2 ** (max(semitones) / 12)`` times as long.

    Args:
        semitones: Range of the shift in semitones (negative is lower); a number
            means ``(v, v)``. (Default: ``(-4, 4)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One shift for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = PitchShift(semitones=(-4, 4), sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # STFT resynthesis and resampling are only approximately the identity
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),
             dict(kwargs=dict(semitones=(-12, 12), sample_rate=8000), input="wave",
                  changes="always"))

    def __init__(self, semitones: tuple[float, float] | float = (-4.0, 4.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.semitones = check_range("semitones", semitones)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        self.n_fft = pitch_shift_n_fft(self.sample_rate)

    def sample(self, shape, n, device, generator) -> Params:
        return {"semitones": F.uniform((n,), *self.semitones, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        y = pitch_shift(x, params["semitones"], self.semitones[1], self.n_fft)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"semitones={self.semitones}, sample_rate={self.sample_rate:g}, "
                + super().extra_repr())
