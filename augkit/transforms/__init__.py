# ruff: noqa: F401  (the imports below are the public name list; __all__ is derived)
"""Transform modules, one file each: thin shells over :mod:`augkit.functional`.

To add a transform: write ``my_transform.py`` (a :class:`RandomTransform` with
``sample`` and ``apply``, its ``identity`` and ``cases``) and import it here.
"""

from torch import nn

from ._base import RandomTransform, record_arguments
from .air_absorption import AirAbsorption
from .aliasing import Aliasing
from .amplitude_to_db import AmplitudeToDB
from .background_noise import BackgroundNoise
from .band_limit import BandLimit
from .colored_noise import ColoredNoise
from .compose import Compose, load_compose, save_compose
from .cutmix import CutMix
from .distortion import Clipping, TanhDistortion
from .drop_chunk import DropChunk
from .drop_freq import DropFreq
from .eq import HighShelfFilter, LowShelfFilter, ParametricEQ, PeakingFilter
from .filter_augment import FilterAugment
from .filters import BandPassFilter, BandStopFilter, HighPassFilter, LowPassFilter
from .frequency_standardize import FrequencyStandardize
from .gain import Gain
from .gaussian_noise import GaussianNoise
from .impulse_response import ImpulseResponse
from .loudness_normalize import LoudnessNormalize
from .masking import FrequencyMasking, TimeMasking
from .max_normalize import MaxNormalize
from .mel_frontend import MelFrontend
from .mixup import Mixup
from .peak_normalize import PeakNormalize
from .pitch_shift import PitchShift
from .polarity_inversion import PolarityInversion
from .quantize import BitCrush, MuLaw
from .random_crop import RandomCrop
from .random_resized_crop import RandomResizedCrop
from .repeat import Repeat
from .room_simulator import RoomSimulator
from .specmix import SpecMix
from .speed import Speed
from .standardize import Standardize
from .time_reversal import TimeReversal
from .time_shift import TimeShift
from .time_stretch import TimeStretch
from .time_warp import TimeWarp
from .trivial_augment import TrivialAugment

#: Every public module class imported above; the package's name list, written once.
__all__ = sorted(name for name, obj in dict(globals()).items()
                 if isinstance(obj, type) and issubclass(obj, nn.Module) and name[0] != "_")

# Every public module keeps its constructor arguments, and only these classes are what
# Compose.from_config builds by name (see Compose.to_config).
record_arguments(*(globals()[name] for name in __all__))


def random_transforms() -> dict[str, type[RandomTransform]]:
    """Every exported random transform class by name (what the contract tests cover)."""
    return {n: globals()[n] for n in __all__
            if issubclass(globals()[n], RandomTransform) and globals()[n] is not RandomTransform}
