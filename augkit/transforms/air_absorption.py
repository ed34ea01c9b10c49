"""Per-example air absorption: the high-frequency loss of a path through air (ISO 9613-1)."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_number, check_range


class AirAbsorption(RandomTransform):
    """Attenuate each example as a path of ``distance_m`` metres through air would.

    The gain at frequency ``f`` is ``10 ** (-alpha(f, T, h) * distance / 20)``
    with ``alpha`` the pure-tone attenuation coefficient of ISO 9613-1 in dB/m
    (computed from the standard's formula, :func:`augkit.functional.air_absorption_db`),
    applied with zero phase in one batched FFT
    (:func:`augkit.functional.air_absorption`). Distance, temperature and
    relative humidity are drawn **uniformly** per example, one set shared by the
    example's channels. At 20 °C and 50 % humidity ``alpha`` is 0.0047 dB/m at
    1 kHz, 0.030 dB/m at 4 kHz and 0.105 dB/m at 8 kHz: 100 m take 0.5, 3.0 and
    10.5 dB off. Dry air absorbs more in the upper octaves.

    Only the absorption: a longer path is also quieter (``1 / r``), a gain left
    to :class:`Gain`. audiomentations' ``AirAbsorption`` (same default ranges)
    interpolates a table of 9 octave bands for 10 or 20 °C and three humidity
    classes; here the formula is evaluated at every frequency for any
    temperature and humidity. The standard states ±10 % from 50 Hz to 10 kHz,
    -20 to 50 °C and 10 to 100 % humidity; above 10 kHz the formula is used as
    it stands.

    ``sample_rate`` has no default: the response is in Hz.

    Args:
        distance_m: Range of the path length in metres, ``>= 0``. (Default: ``(10, 100)``)
        temperature_c: Range of the air temperature in °C, in ``[-20, 50]``.
            (Default: ``(10, 20)``)
        humidity: Range of the relative humidity in percent, in ``(0, 100]``.
            (Default: ``(30, 90)``)
        pressure_kpa: Ambient pressure in kPa, ``> 0``. (Default: ``101.325``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One path for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged. Parameters: ``distance_m``, ``temperature_c``,
        ``humidity``, each ``(B,)``.

    Example:
        >>> t = AirAbsorption(distance_m=(50, 500), sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # an FFT filter is only approximately the identity
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),
             dict(kwargs=dict(sample_rate=8000, distance_m=(100.0, 2000.0),
                              temperature_c=(-20.0, 50.0), humidity=(10.0, 100.0)),
                  input="wave", changes="always"))

    def __init__(self, distance_m: tuple[float, float] | float = (10.0, 100.0),
                 temperature_c: tuple[float, float] | float = (10.0, 20.0),
                 humidity: tuple[float, float] | float = (30.0, 90.0),
                 pressure_kpa: float = 101.325, *, sample_rate: float, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        self.distance_m = check_range("distance_m", distance_m, low=0.0)
        self.temperature_c = check_range("temperature_c", temperature_c, low=-20.0)
        if self.temperature_c[1] > 50.0:
            raise ValueError(f"temperature_c must be in [-20, 50] °C (ISO 9613-1's range), "
                             f"got {temperature_c!r}")
        self.humidity = check_range("humidity", humidity, low=0.0)
        if self.humidity[0] <= 0.0 or self.humidity[1] > 100.0:
            raise ValueError(f"humidity must be in (0, 100] percent, got {humidity!r}")
        self.pressure_kpa = check_number("pressure_kpa", pressure_kpa, 0.0, low_open=True)

    def sample(self, shape, n, device, generator) -> Params:
        return {"distance_m": F.uniform((n,), *self.distance_m, device, generator),
                "temperature_c": F.uniform((n,), *self.temperature_c, device, generator),
                "humidity": F.uniform((n,), *self.humidity, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.air_absorption(x, params["distance_m"], params["temperature_c"],
                                params["humidity"], self.sample_rate, self.pressure_kpa)

    def extra_repr(self) -> str:
        return (f"distance_m={self.distance_m}, temperature_c={self.temperature_c}, "
                f"humidity={self.humidity}, pressure_kpa={self.pressure_kpa:g}, "
                f"sample_rate={self.sample_rate:g}, " + super().extra_repr())
