"""Mel spectrogram frontend as an ``nn.Module``."""

from __future__ import annotations

import warnings

import torch
import torchaudio
from torch import Tensor, nn

from .. import functional as F
from ._base import check_int, check_number

LOG_MODES = (None, "db", "log")


class MelFrontend(nn.Module):
    """Batched mel spectrogram with an optional log, in float32.

    Matches ``torchaudio.transforms.MelSpectrogram`` with the same arguments
    (``log=None``), and ``MelSpectrogram`` + ``AmplitudeToDB`` applied to each
    example alone (``log="db"``): the ``top_db`` floor is per example, with no
    host sync. The STFT and log run in float32 even under bf16/fp16 autocast.
    The filterbank is ``torchaudio.functional.melscale_fbanks``'s; the window and
    the filterbank are buffers, so ``.to(device)`` moves them.

    Args:
        sample_rate: Sample rate of the input in Hz.
        n_fft: FFT size. (Default: ``400``, as torchaudio)
        hop_length: Hop between frames. (Default: ``win_length // 2``, as torchaudio)
        n_mels: Number of mel bands. (Default: ``128``)
        f_min: Lowest frequency in Hz. (Default: ``0.0``)
        f_max: Highest frequency in Hz. (Default: ``sample_rate / 2``)
        power: 2 for power, 1 for magnitude. (Default: ``2.0``)
        log: ``"db"`` (decibels with ``top_db``), ``"log"`` (``log(x + log_offset)``)
            or ``None`` (linear). (Default: ``"db"``)
        top_db: Dynamic range kept below each example's maximum in dB; ``None``
            keeps all. (Default: ``80.0``)
        win_length: Window length, zero-padded to ``n_fft``. (Default: ``n_fft``)
        center: Centre frames on their hop positions. (Default: ``True``)
        pad_mode: Padding at the edges when ``center``. (Default: ``"reflect"``)
        norm: Filterbank normalisation, ``None`` or ``"slaney"``. (Default: ``None``)
        mel_scale: ``"htk"`` or ``"slaney"``. (Default: ``"htk"``)
        log_offset: Offset for ``log="log"``. (Default: ``1e-6``)

    Raises:
        ValueError: In ``__init__``, an argument out of range or not finite (the
            message names it); in ``forward``, an empty batch, empty clips or clips
            shorter than ``n_fft``.
        TypeError: In ``forward``, a tensor that is not floating point (convert
            int16 audio with ``x.float() / 32768``).

    Warns:
        UserWarning: Some mel filters are all zero (``n_mels`` too high for the FFT
            bins, as torchaudio warns).

    Shape:
        - Input: ``(B, T)`` or ``(B, C, T)``, floating point.
        - Output: ``(B, C, n_mels, frames)`` with ``C = 1`` for ``(B, T)`` input and
          ``frames = 1 + T // hop_length`` when ``center``; float32.

    Example:
        >>> fe = MelFrontend(22050, n_fft=2048, hop_length=640, n_mels=128)
        >>> fe(torch.randn(4, 1, 22050 * 3)).shape
        torch.Size([4, 1, 128, 104])
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 400,
        hop_length: int | None = None,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 2.0,
        log: str | None = "db",
        top_db: float | None = 80.0,
        win_length: int | None = None,
        center: bool = True,
        pad_mode: str = "reflect",
        norm: str | None = None,
        mel_scale: str = "htk",
        log_offset: float = 1e-6,
    ) -> None:
        super().__init__()
        self.sample_rate = check_int("sample_rate", sample_rate, 1)
        self.n_fft = check_int("n_fft", n_fft, 2)
        self.win_length = check_int("win_length", n_fft if win_length is None else win_length, 1)
        self.hop_length = check_int("hop_length", self.win_length // 2 if hop_length is None
                                    else hop_length, 1)
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({win_length}) must be <= n_fft ({n_fft})")
        self.n_mels = check_int("n_mels", n_mels, 1)
        self.f_min = check_number("f_min", f_min, 0.0)
        self.f_max = check_number("f_max", sample_rate / 2 if f_max is None else f_max, 0.0)
        if not 0.0 <= self.f_min < self.f_max <= sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
                f"sample_rate={sample_rate}"
            )
        self.power = check_number("power", power, 0.0, low_open=True)
        if log not in LOG_MODES:
            raise ValueError(f"log must be one of {LOG_MODES}, got {log!r}")
        self.log = log
        self.top_db = None if top_db is None else check_number("top_db", top_db, 0.0)
        if norm not in (None, "slaney"):
            raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
        if mel_scale not in ("htk", "slaney"):
            raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
        if pad_mode not in ("reflect", "constant", "replicate", "circular"):
            raise ValueError(f"pad_mode must be reflect/constant/replicate/circular, "
                             f"got {pad_mode!r}")
        self.center, self.pad_mode = bool(center), pad_mode
        self.log_offset = check_number("log_offset", log_offset, 0.0, low_open=True)

        window = torch.hann_window(self.win_length)
        left = (self.n_fft - self.win_length) // 2
        window = nn.functional.pad(window, (left, self.n_fft - self.win_length - left))
        self.register_buffer("window", window, persistent=False)
        with warnings.catch_warnings():  # torchaudio's zero-filter warning; ours says more
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero")
            fb = torchaudio.functional.melscale_fbanks(self.n_fft // 2 + 1, self.f_min,
                                                       self.f_max, self.n_mels,
                                                       self.sample_rate, norm, mel_scale)
        self.register_buffer("fb", fb, persistent=False)  # (n_fft // 2 + 1, n_mels)
        zero = int((fb.amax(dim=0) == 0).sum())
        if zero:
            warnings.warn(
                f"MelFrontend: {zero} of the {self.n_mels} mel filters are all-zero: n_mels "
                f"({self.n_mels}) may be set too high for n_fft={self.n_fft} "
                f"({self.n_fft // 2 + 1} FFT bins), or f_min/f_max too close", stacklevel=2)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a clip of ``num_samples``."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def frames(self, lengths: Tensor) -> Tensor:
        """Valid frames ``(B,)`` for valid samples ``lengths`` ``(B,)``, on the device.

        The frames this frontend outputs for a clip of ``lengths`` samples:
        ``1 + lengths // hop_length`` when ``center`` (frame ``t`` is centred at
        ``t * hop_length``), ``1 + (lengths - n_fft) // hop_length`` (at least 0)
        otherwise. The last valid frames' windows reach into the padding where an
        unpadded clip's reach into its reflected edge. :class:`Compose` uses it
        to carry ``lengths`` past the frontend.
        """
        if self.center:
            return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1
        return (torch.div(lengths - self.n_fft, self.hop_length, rounding_mode="floor") + 1
                ).clamp_min(0)

    def forward(self, waveform: Tensor) -> Tensor:
        """Waveform ``(B, T)`` or ``(B, C, T)`` -> ``(B, C, n_mels, frames)``, float32.

        An empty batch (B=0) gives an empty output of the right shape. The power is
        computed in float32: waveforms above about 1e17 overflow it, and their
        frames come out ``inf`` or NaN (scale such input down first).
        """
        if not isinstance(waveform, Tensor) or waveform.ndim not in (2, 3):
            shape = tuple(waveform.shape) if isinstance(waveform, Tensor) else type(waveform)
            raise ValueError(f"MelFrontend expects a waveform (B, T) or (B, C, T), got {shape}")
        if not waveform.is_floating_point():
            raise TypeError(f"MelFrontend expects a floating-point waveform, got "
                            f"{waveform.dtype}; convert first, e.g. x.float() / 32768 for int16 "
                            "audio")
        if waveform.shape[-1] == 0:
            raise ValueError(f"MelFrontend got empty clips (T=0), shape {tuple(waveform.shape)}")
        if waveform.shape[-1] < self.n_fft:
            raise ValueError(f"MelFrontend: clips of {waveform.shape[-1]} samples are too short, "
                             f"shorter than n_fft={self.n_fft}; pad or crop them to at least "
                             "n_fft samples")
        if waveform.ndim == 2:
            waveform = waveform.unsqueeze(1)
        if waveform.shape[0] == 0:  # an empty batch gives an empty batch, as every transform
            frames = int(self.frames(torch.tensor([waveform.shape[-1]]))[0])
            return waveform.new_zeros(0, waveform.shape[1], self.n_mels, frames,
                                      dtype=torch.float32)
        with torch.autocast(waveform.device.type, enabled=False):
            mel = F.melspectrogram(waveform.float(), self.window, self.fb, self.hop_length,
                                   self.center, self.pad_mode, self.power)
            if self.log == "db":
                # |X|^power in dB: 10 for power, 20 for magnitude.
                mel = F.amplitude_to_db(mel, 20.0 / self.power, top_db=self.top_db)
            elif self.log == "log":
                mel = torch.log(mel + self.log_offset)
        return mel

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, "
                f"f_max={self.f_max}, power={self.power}, log={self.log!r}, top_db={self.top_db}")
