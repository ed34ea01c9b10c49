"""Reverberation from shoebox rooms simulated per example (image-source method)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import functional as F
from ..functional import room as R
from ._base import Params, RandomTransform, check_int, check_number, check_range


class RoomSimulator(RandomTransform):
    """Convolve each example with the impulse response of its own simulated shoebox room.

    Per example, on the device: the room's dimensions (each axis uniform in
    its range), one energy absorption coefficient for all six walls, and a
    source and a microphone position, uniform inside the room at least
    ``margin`` from every wall. The impulse response is built by the
    image-source method (Allen & Berkley 1979) from every image up to
    ``max_order`` reflections, each at the sample nearest its delay (batched:
    one ``scatter_add``; :func:`augkit.functional.room.room_impulse_response`).
    With ``late_tail``, Gaussian noise continues it where the images thin out,
    decaying at Eyring's reverberation time
    ``RT60 = 24 ln(10) V / (c S (-ln(1 - alpha)))`` from the images' level there,
    so a low order (fast) still reverberates for the room's full ``RT60``: its
    measured decay is Eyring's. Higher orders follow the image model further,
    which in a shoebox with uniform walls decays slower than Eyring's formula
    at late times (grazing paths meet few walls; pyroomacoustics' does too).

    The response (``rir_seconds`` long) is normalised to unit energy and applied
    by one batched FFT convolution (:func:`augkit.functional.fft_convolve`) read
    from its direct path, so the dry signal keeps its timing and level on
    average; the tail past ``T`` is cut. With ``lengths``, the samples past each
    example's length stay as they are. Examples not drawn get the input back.
    ``sample_rate`` has no default: delays are in seconds.

    Args:
        sample_rate: Rate of the input in Hz.
        room_size: ``(low, high)`` in m for each of the three axes.
            (Default: ``((3, 10), (3, 8), (2.5, 4))``)
        absorption: Range of the walls' energy absorption, in ``(0, 1)``.
            (Default: ``(0.15, 0.6)``: RT60 about 0.1 to 1 s in mid-sized rooms)
        max_order: Most reflections of an image source. (Default: ``8``)
        late_tail: Add the stochastic tail past the order's reach. (Default: ``True``)
        rir_seconds: Length of the impulse responses. (Default: ``0.5``)
        margin: Least distance in m of the source and microphone from the walls.
            (Default: ``0.5``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One room for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged; one room per example, shared by its channels.

    Example:
        >>> rooms = RoomSimulator(sample_rate=16000, p=1.0)
        >>> y = rooms(torch.randn(4, 1, 16000), generator=torch.Generator().manual_seed(0))
        >>> tuple(y.shape), tuple(rooms.last_params["room"].shape)
        ((4, 1, 16000), (4, 3))
    """

    ndims = (3,)
    expects = "waveforms (B, C, T)"
    gate = "output"
    uses_lengths = True
    cases = (dict(kwargs=dict(sample_rate=8000, room_size=((2.0, 4.0), (2.0, 4.0), (2.0, 3.0)),
                              max_order=3, rir_seconds=0.1), input="wave", changes="always"),)

    def __init__(self, room_size: tuple[tuple[float, float], ...] = ((3.0, 10.0), (3.0, 8.0),
                                                                     (2.5, 4.0)),
                 absorption: tuple[float, float] = (0.15, 0.6), max_order: int = 8,
                 late_tail: bool = True, rir_seconds: float = 0.5, margin: float = 0.5, *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        if not isinstance(room_size, (tuple, list)) or len(room_size) != 3:
            raise ValueError(f"room_size must be three (low, high) ranges in m, got "
                             f"{room_size!r}")
        self.margin = check_number("margin", margin, 0.0)
        self.room_size = tuple(check_range(f"room_size[{i}]", r, 2 * self.margin + 1e-3)
                               for i, r in enumerate(room_size))
        self.absorption = check_range("absorption", absorption, 1e-3)
        if self.absorption[1] >= 1.0:
            raise ValueError(f"absorption must be below 1, got {absorption!r}")
        self.max_order = check_int("max_order", max_order, 0)
        self.late_tail = bool(late_tail)
        self.rir_seconds = check_number("rir_seconds", rir_seconds, 0.0, low_open=True)
        self.rir_length = max(1, math.ceil(self.rir_seconds * self.sample_rate))
        diagonal = math.sqrt(sum(hi**2 for _, hi in self.room_size))
        if self.rir_seconds <= diagonal / R.SPEED_OF_SOUND:
            raise ValueError(f"rir_seconds={rir_seconds} is shorter than the direct path "
                             f"across the largest room ({diagonal / R.SPEED_OF_SOUND:.3f} s)")
        images, shell = R.image_table(self.max_order)
        self.register_buffer("images", images, persistent=False)
        self.register_buffer("shell", shell, persistent=False)

    def sample(self, shape, n, device, generator) -> Params:
        lo = torch.tensor([r[0] for r in self.room_size], device=device)
        hi = torch.tensor([r[1] for r in self.room_size], device=device)
        room = F.uniform((n, 3), lo, hi, device, generator)
        inner = room - 2 * self.margin
        params = {
            "room": room,
            "absorption": F.uniform((n,), *self.absorption, device, generator),
            "source": self.margin + inner * torch.rand((n, 3), device=device,
                                                       generator=generator),
            "mic": self.margin + inner * torch.rand((n, 3), device=device,
                                                    generator=generator),
        }
        if self.late_tail:
            params["noise"] = torch.randn((n, self.rir_length), device=device,
                                          generator=generator)
        return params

    def impulse_responses(self, params: Params) -> Tensor:
        """The rooms' impulse responses ``(B, rir_length)`` float32, unit energy."""
        if self.images.device != params["room"].device:
            raise ValueError(f"RoomSimulator's image table is on {self.images.device} but the "
                             f"input is on {params['room'].device}; move it with .to(device)")
        rir = R.room_impulse_response(
            params["room"], params["source"], params["mic"], params["absorption"],
            self.sample_rate, self.rir_length, self.images,
            self.shell if self.late_tail else None, params.get("noise"))
        return rir / torch.linalg.vector_norm(rir, dim=-1, keepdim=True).clamp_min(1e-12)

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        distance = torch.linalg.vector_norm(params["source"] - params["mic"], dim=-1)
        direct = torch.round(distance * (self.sample_rate / R.SPEED_OF_SOUND)).long()
        y = F.fft_convolve(x, self.impulse_responses(params), direct).to(x.dtype)
        mask = F.valid_mask(x, lengths)
        return y if mask is None else torch.where(mask, y, x)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate:g}, room_size={self.room_size}, "
                f"absorption={self.absorption}, max_order={self.max_order}, "
                f"late_tail={self.late_tail}, rir_seconds={self.rir_seconds}, "
                + super().extra_repr())
