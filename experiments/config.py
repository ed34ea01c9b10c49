"""Run configuration: seven groups of typed settings, JSON presets, flat overrides.

A :class:`Config` is seven groups, each a dataclass whose fields carry a comment::

    data      which clips, how they are split and cut       DataConfig
    frontend  waveform -> model input (the chain's frontend)  FrontendConfig
    model     the backbone                                  ModelConfig
    optim     the optimiser and how long each arm trains    OptimConfig
    ablation  the augmentations and their settings          AblationConfig
    runtime   what this command runs, where, what it logs   RuntimeConfig
    scale     how the grid is spread over Ray               ScaleConfig

Each stage of the runner receives only its group: the chain is built from
``frontend`` and ``ablation``, the model from ``model``, the optimiser from
``optim``, the Ray grid from ``scale``.

Resolution order: dataclass defaults < preset file (``experiments/configs/``) <
``--config FILE`` < explicit flags and ``--set key=value``. Keys are flat: every
field name is unique over the groups and resolves to its group (``lr`` is
``optim.lr``; ``data`` names ``data.path``); grouped keys (``optim.lr``, or
``{"optim": {"lr": ...}}`` in a file) are accepted too. A value is coerced to its
field's annotation, so ``--set lr=1e-3`` is a float and ``--set seeds=0,1`` a list of
integers. ``augment.<augmentation>.<argument>`` sets one augmentation's argument.

The resolved config is saved beside the results (``config.json``, grouped). Its
identity, what must match to resume a results folder, is every group but
``runtime`` and ``scale`` (:func:`identity`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import augkit as ak

from .augmentations import AUGMENTATIONS, Context, build_augmentation
from .data.splits import SPLIT_KINDS

CONFIG_DIR = Path(__file__).parent / "configs"

PRESETS = ("quick", "tutorial", "tutorial-advanced", "augkit", "fsdd")

#: Level normalisations (``frontend.normalize``, arms ``norm:<mode>``), in words.
NORMALIZE_MODES = {
    "none": "no level normalisation",
    "max": "decibels relative to each example's maximum (librosa's ref=np.max)",
    "standardize": "each example's features standardised (zero mean, unit std)",
    "freq": "each mel band standardised with statistics fitted on the training split",
    "lufs": "each waveform normalised to a target loudness (ITU-R BS.1770 LUFS)",
}
#: How long each arm trains: until it converges (within ``max_epochs``) or a fixed budget.
PROTOCOLS = ("converge", "fixed")
SCHEDULES = ("cosine", "constant", "step")
OPTIMIZERS = ("adamw", "adam")
SWANLAB_MODES = ("cloud", "online", "local", "offline", "disabled")

#: Keys of augkit 0.1's flat ``augment`` section -> what replaced them (0.2).
RENAMED_AUGMENT_KEYS = {
    "time_mask_width": "time_mask.max_width", "time_mask_num": "time_mask.num_masks",
    "freq_mask_width": "freq_mask.max_width", "freq_mask_num": "freq_mask.num_masks",
    "mask_p": "time_mask.p and freq_mask.p", "mask_value": "time_mask.value and freq_mask.value",
    "noise_domain": "noise.where (waveform or spectrogram)", "noise_snr_db": "noise.snr_db",
    "noise_std": "noise.std (with noise.snr_db=null)", "noise_p": "noise.p",
    "gain_domain": "gain.where (waveform or spectrogram)", "gain_db": "gain.gain_db",
    "gain_factor": "gain.factor (with gain.gain_db=null)", "gain_p": "gain.p",
    "shift_max": "shift.max_shift", "shift_p": "shift.p", "polarity_p": "polarity.p",
    "mixup_alpha": "mixup.alpha", "mixup_p": "mixup.p",
}

#: Fields the ablation protocol added after augkit 0.2: a results folder whose config
#: lacks them was trained unnormalised, for a fixed budget, with test read at the last epoch.
PROTOCOL_FIELDS = ("normalize", "target_lufs", "protocol", "max_epochs", "patience")


def default_cache_dir() -> str:
    """The platform cache folder: ``$XDG_CACHE_HOME/augkit``, else ``~/.cache/augkit``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return str(Path(base).expanduser() / "augkit" if base else Path.home() / ".cache" / "augkit")


def _pretrained(value: Any) -> bool | str:
    """``pretrained``: true (timm's hub), false, or a local weights file."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        word = value.strip().lower()
        return word == "true" if word in ("true", "false") else value.strip()
    raise ValueError(f"pretrained must be true, false or a weights file path, got {value!r}")


def _fold(value: Any) -> str:
    """``fold``: ``"all"`` or an index, as text or a number."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"fold must be 'all' or an integer, got {value!r}")
    return str(value).strip()


#: Seeds go to ``torch.manual_seed``, which takes integers below 2**64.
MAX_SEED = 2**64 - 1


def _path(flag: str, value: str | None) -> str | None:
    """A path option as given: ``None`` stays ``None``; ``~`` is expanded (also after
    ``--out=``, where the shell leaves it); an empty path is refused (an unset shell
    variable, ``--data "$DATA"``, would otherwise mean the working folder)."""
    if value is None:
        return None
    if not str(value).strip():
        raise ValueError(f"{flag} is empty ({value!r}); give a path (an unset shell variable "
                         f"in {flag} \"$VAR\"?)")
    return os.path.expanduser(str(value))


def _one_of(name: str, value: Any, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _positive(group: Any, *names: str) -> None:
    for name in names:
        if not getattr(group, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(group, name)!r}")


def _at_least_zero(group: Any, *names: str) -> None:
    for name in names:
        if getattr(group, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(group, name)}")


def _dedupe(name: str, values: list) -> list:
    out, dup = [], []
    for v in values:
        (dup if v in out else out).append(v)
    if dup:
        shown = ", ".join(str(v) for v in dict.fromkeys(dup))
        warnings.warn(f"duplicate {name}(s) {shown} removed: running {name}s "
                      f"{', '.join(str(v) for v in out)} (a repeated {name} would count the "
                      "same run twice)", stacklevel=5)
    return out


# ---------------------------------------------------------------------------
# The groups


class _Group:
    """A config group: typed fields with a comment each, and ``check()`` beside them."""

    def identity(self) -> dict[str, Any]:
        """This group's part of the resume identity (:func:`identity`)."""
        return dataclasses.asdict(self)


@dataclass
class DataConfig(_Group):
    """Which clips, how they are split, and how a clip is cut into examples."""

    path: str | None = None  # --data: a dataset folder or CSV manifest; None: the synthetic set
    split: str = "holdout"  # one of SPLIT_KINDS (experiments.data.splits)
    folds: int = 5  # k of split "kfold"
    max_seconds: float | None = None  # keep at most this much of each clip; None: all of it
    crop_seconds: float = 3.0  # the length of every training and evaluation crop
    # The embedded synthetic set, used when path is None (experiments.data.synthetic).
    synthetic: dict[str, Any] = field(default_factory=lambda: dict(
        n_per_class=30, seconds=6.0, sample_rate=16000, seed=0))

    def check(self) -> None:
        self.path = _path("--data", self.path)
        if self.split not in SPLIT_KINDS:
            raise ValueError(f"split must be {', '.join(SPLIT_KINDS[:-1])} or "
                             f"{SPLIT_KINDS[-1]}, got {self.split!r}")
        if self.split == "kfold" and self.folds < 2:
            raise ValueError(f"folds must be an integer >= 2 for split kfold, got {self.folds}")
        if self.split == "manifest" and self.path is not None and not str(
                self.path).lower().endswith(".csv"):
            raise ValueError("split 'manifest' needs --data pointing to a CSV manifest with a "
                             "'split' column (or no --data: the synthetic set's own), got "
                             f"data={self.path!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or null, got {self.max_seconds!r}")
        _positive(self, "crop_seconds")


@dataclass
class FrontendConfig(_Group):
    """Waveform -> model input: the mel frontend, its scale and the level normalisation.

    The fields are :func:`experiments.arms.build_chain`'s frontend arguments.
    """

    sample_rate: int = 16000  # Hz: the data is decoded at this rate, the chain runs at it
    n_fft: int = 512  # STFT size (samples)
    hop_length: int = 320  # STFT hop (samples)
    n_mels: int = 64  # mel bands
    f_min: float = 0.0  # lowest mel frequency (Hz)
    f_max: float | None = None  # highest mel frequency (Hz); None: Nyquist
    # "db": per-example decibels (top_db floor); "clamp": the tutorial's clamped power mel.
    scale: str = "db"
    top_db: float = 80.0  # "db": the floor below each example's maximum
    # Level normalisation of every arm's input, in training and evaluation alike: one of
    # NORMALIZE_MODES. norm:<mode> arms train with another mode (experiments.arms).
    normalize: str = "none"
    target_lufs: float = -23.0  # "lufs": the integrated loudness every clip is brought to

    def check(self) -> None:
        _positive(self, "sample_rate", "n_fft", "hop_length", "n_mels")
        if self.hop_length > self.n_fft:
            warnings.warn(f"hop_length={self.hop_length} is larger than n_fft={self.n_fft}: "
                          f"{1 - self.n_fft / self.hop_length:.0%} of the samples fall in no "
                          "STFT window and are never seen by the model; use hop_length <= "
                          "n_fft", stacklevel=4)
        _one_of("scale", self.scale, ("db", "clamp"))
        _one_of("normalize", self.normalize, NORMALIZE_MODES)
        if self.scale == "clamp" and self.normalize in ("max", "standardize", "freq"):
            raise ValueError(f"normalize {self.normalize!r} works on decibel features; scale "
                             "'clamp' gives power (use scale 'db', or normalize 'lufs' or 'none')")
        if not -70.0 <= self.target_lufs <= 0.0:
            raise ValueError(f"target_lufs must be in [-70, 0] LUFS, got {self.target_lufs!r}")
        if self.top_db < 0:
            raise ValueError(f"top_db must be >= 0, got {self.top_db!r}")
        with warnings.catch_warnings(record=True) as caught:  # the frontend's own checks
            warnings.simplefilter("always")
            ak.MelFrontend(self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                           n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max, log=None)
        if any("all-zero" in str(w.message) for w in caught):
            raise ValueError(f"n_mels={self.n_mels} is too many for n_fft={self.n_fft} "
                             f"({self.n_fft // 2 + 1} FFT bins) at {self.sample_rate} Hz: some "
                             "mel bands would be all zero; use fewer mels or a larger n_fft")


@dataclass
class ModelConfig(_Group):
    """The backbone (:func:`augkit.create_backbone`)."""

    backbone: str = "cnn_small"  # a registered backbone: ak.list_backbones()
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the backbone
    # true (timm's hub), false, or a local weights file (.safetensors, .pth)
    pretrained: bool | str = field(default=False, metadata={"parse": _pretrained})
    tutorial_input: bool = False  # resize and repeat the mel into a 3-channel square image
    input_size: int = 224  # tutorial_input: its side (224: tutorial, 512: tutorial-advanced)

    def check(self) -> None:
        if self.backbone not in ak.list_backbones():
            close = difflib.get_close_matches(str(self.backbone), ak.list_backbones(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"backbone {self.backbone!r} is not registered{hint} (registered: "
                             f"{', '.join(ak.list_backbones())})")
        if isinstance(self.pretrained, str):
            self.pretrained = os.path.expanduser(self.pretrained)  # also after --pretrained=
            weights = Path(self.pretrained)
            if not weights.is_file():
                raise ValueError(f"pretrained: weights file {weights} "
                                 + ("is a folder" if weights.is_dir() else "does not exist"))
        _positive(self, "input_size")


@dataclass
class OptimConfig(_Group):
    """The optimiser, the learning-rate schedule, and how long each arm trains."""

    optimizer: str = "adamw"  # "adamw" or "adam"
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 0.05
    batch_size: int = 32  # the global training batch
    eval_batch_size: int = 64  # crops per evaluation batch
    label_smoothing: float = 0.0
    # "converge": train until validation stops improving, within max_epochs, then decay the
    # lr to 0 (experiments.training.schedule.Convergence); "fixed": `epochs` epochs for every
    # arm on `schedule` (budget parity; the tutorial replicas).
    protocol: str = "converge"
    epochs: int = 15  # "fixed": the budget of every arm
    max_epochs: int = 60  # "converge": the cap on epochs, the final decay included
    # "converge": epochs without a rise of the 3-epoch mean validation accuracy by one
    # validation clip's worth before the lr decays.
    patience: int = 5
    # "fixed": "cosine" (linear warmup then cosine decay, per step), "constant", or "step"
    # (torch's SequentialLR([LinearLR, StepLR]) per epoch: lr_lambda in
    # experiments.training.schedule).
    schedule: str = "cosine"
    warmup_epochs: float = 1.0  # linear warmup ("step": per epoch, a whole number)
    warmup_start_factor: float = 0.1  # "step": the first warmup epoch's lr factor
    step_size: int = 10  # "step": epochs between decays, after the warmup
    gamma: float = 0.1  # "step": the factor of each decay

    def check(self) -> None:
        _positive(self, "lr", "batch_size", "eval_batch_size", "epochs", "max_epochs")
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("protocol", self.protocol, PROTOCOLS)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be 'cosine', 'constant' or 'step', got "
                             f"{self.schedule!r}")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"need weight_decay >= 0 and 0 <= label_smoothing < 1, got "
                             f"{self.weight_decay}, {self.label_smoothing}")
        for name in ("patience", "step_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1 (epochs), got "
                                 f"{getattr(self, name)!r}")
        for name in ("warmup_start_factor", "gamma"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        self._check_warmup()

    def _check_warmup(self) -> None:
        fixed = self.protocol == "fixed"
        budget = self.epochs if fixed else self.max_epochs
        if not 0 <= self.warmup_epochs <= budget:
            raise ValueError(f"warmup_epochs must be in [0, {'epochs' if fixed else 'max_epochs'}]"
                             f", got {self.warmup_epochs}")
        least = math.ceil(self.warmup_epochs) + 4
        if not fixed and self.max_epochs < least:
            raise ValueError(f"max_epochs={self.max_epochs} leaves no room for the warmup "
                             f"({self.warmup_epochs:g} epochs), a 3-epoch validation mean and "
                             f"the final decay; use at least {least}")
        if self.schedule == "step" and self.warmup_epochs != int(self.warmup_epochs):
            raise ValueError(f"warmup_epochs must be a whole number of epochs with schedule "
                             f"'step', got {self.warmup_epochs:g}")

    def identity(self) -> dict[str, Any]:
        """The fields this protocol uses: a setting it ignores does not block a resume."""
        unused = (("max_epochs", "patience") if self.protocol == "fixed" else
                  ("epochs", "schedule", "step_size", "gamma", "warmup_start_factor"))
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in unused}


#: Augmentation settings (and sample rate, bank folders) that built in this process.
_SETTINGS_BUILT: set[str] = set()


@dataclass
class AblationConfig(_Group):
    """The augmentations the arms are made of, and their settings."""

    # What `all`, `alone`, `loo` and `all-minus-X` arms are made of (AUGMENTATIONS' names).
    augmentations: list[str] = field(
        default_factory=lambda: ["time_mask", "freq_mask", "noise", "gain"])
    # Per-augmentation settings over the defaults of experiments.augmentations.AUGMENTATIONS:
    # {"noise": {"snr_db": [5, 30]}, "time_mask": {"max_width": 40}}.
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)
    noise_dir: str | None = None  # recordings for background_noise (None: a generated bank)
    ir_dir: str | None = None  # impulse responses for reverb (None: generated rooms)

    def check(self) -> None:
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                             f"registered: {sorted(AUGMENTATIONS)}")
        for name in ("noise_dir", "ir_dir"):
            flag = f"--{name.replace('_', '-')}"
            folder = _path(flag, getattr(self, name))
            setattr(self, name, folder)
            if folder is not None and not Path(folder).is_dir():
                raise ValueError(f"{flag}: {folder} is not a folder")

    def check_settings(self, sample_rate: int) -> None:
        """Every registered augmentation builds with its settings at ``sample_rate`` (all of
        them, before any audio is decoded); errors name ``augment.<name>``. Settings that
        built once are not built again in this process (building takes about a second)."""
        key = json.dumps([sample_rate, self.augment, self.noise_dir, self.ir_dir],
                         sort_keys=True, default=str)
        if key in _SETTINGS_BUILT:
            return
        ctx = Context(sample_rate, 2, self.augment, self.noise_dir, self.ir_dir)
        for name in AUGMENTATIONS:
            build_augmentation(name, self.augment.get(name), ctx)
        _SETTINGS_BUILT.add(key)


@dataclass
class RuntimeConfig(_Group):
    """What this command runs, where, and what it writes and logs (not the identity)."""

    preset: str = "quick"  # the preset the settings started from
    out: str | None = None  # the results folder; None: runs/<preset>
    arms: list[str] = field(default_factory=lambda: ["default"])  # see experiments.arms
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    fold: str = field(default="0", metadata={"parse": _fold})  # kfold: an index, or "all"
    # Run even when a class has no clip in train or in an evaluated split (warned).
    allow_missing_classes: bool = False
    # The same audio (one content digest) in two splits or under two labels: an error, not
    # a warning (experiments.plan.check_duplicates).
    strict_duplicates: bool = False
    device: str = "auto"  # auto, cpu, cuda or cuda:<index>
    compile: bool = False  # torch.compile the model
    cache_dir: str = field(default_factory=default_cache_dir)  # decoded audio, synthetic set
    swanlab_mode: str = "local"  # one of SWANLAB_MODES
    swanlab_project: str = "augkit-ablate"
    log_examples: int = 4  # example spectrograms and audio logged per run

    def check(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.swanlab_mode not in SWANLAB_MODES:
            raise ValueError(f"swanlab_mode must be one of {SWANLAB_MODES}, got "
                             f"{self.swanlab_mode!r}")
        self.out = _path("--out", self.out)
        self.cache_dir = _path("--cache-dir", self.cache_dir)
        bad = [s for s in self.seeds if isinstance(s, bool) or not isinstance(s, int)
               or not 0 <= s <= MAX_SEED]
        if not self.seeds or bad:
            raise ValueError(f"seeds must be integers in [0, 2**64 - 1] (torch.manual_seed's "
                             f"range), at least one, got {bad or '[]'}")
        self.seeds = _dedupe("seed", list(self.seeds))
        if not self.arms or not all(isinstance(a, str) and a for a in self.arms):
            raise ValueError(f"arms must be a non-empty list of arm names, got {self.arms!r}")
        self.arms = _dedupe("arm", list(self.arms))
        _at_least_zero(self, "log_examples")


@dataclass
class ScaleConfig(_Group):
    """How the grid of units is spread (docs/scale.md); never part of the identity."""

    workers: int = 0  # units at a time on Ray (0: one after another here, no Ray)
    ray_address: str | None = None  # join a Ray cluster ("auto" or HOST:PORT)
    gpus_per_run: float | None = None  # GPUs per unit (0.25 packs four); None: 1 on CUDA
    cpus_per_run: int = 0  # CPUs per unit and torch's threads in it (0: default; 1 on Ray)
    max_retries: int = 3  # times Ray runs a unit again when its worker dies

    @property
    def on_ray(self) -> bool:
        return self.workers > 0 or self.ray_address is not None

    def check(self) -> None:
        _at_least_zero(self, "workers", "cpus_per_run", "max_retries")
        if self.gpus_per_run is not None and not 0 <= self.gpus_per_run <= 1:
            raise ValueError(f"gpus_per_run must be in [0, 1] (a unit trains on one device; "
                             f"0.25 packs four per GPU), got {self.gpus_per_run:g}")


@dataclass
class Config:
    """Everything one ablation needs, in groups; docs/runner.md explains the fields."""

    data: DataConfig = field(default_factory=DataConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)

    def validate(self) -> None:
        """Check every value before any work: each group, then what spans groups. Raises a
        one-line ValueError naming the field; removes duplicate seeds and arms (warned)."""
        for name in GROUPS:
            getattr(self, name).check()
        self.ablation.check_settings(self.frontend.sample_rate)
        crop = int(round(self.data.crop_seconds * self.frontend.sample_rate))
        if crop < self.frontend.n_fft:
            raise ValueError(f"crop_seconds={self.data.crop_seconds:g} is {crop} samples at "
                             f"{self.frontend.sample_rate} Hz, shorter than n_fft="
                             f"{self.frontend.n_fft}; use a longer crop or a smaller n_fft")
        fold = self.runtime.fold
        if self.data.split == "kfold" and fold != "all" and not (
                fold.isdigit() and int(fold) < self.data.folds):
            raise ValueError(f"fold must be 'all' or an integer in [0, folds) = "
                             f"[0, {self.data.folds}), got {fold!r}")
        if (self.scale.gpus_per_run or 0) > 0 and self.runtime.device == "cpu":
            raise ValueError(f"gpus_per_run={self.scale.gpus_per_run:g} with device cpu: use "
                             "--gpus-per-run 0 on the CPU")


#: The group names, in order, and the groups the identity is made of.
GROUPS = tuple(f.name for f in dataclasses.fields(Config))
IDENTITY_GROUPS = tuple(g for g in GROUPS if g not in ("runtime", "scale"))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _group_fields() -> dict[str, str]:
    """Every field name -> its group; names are unique over the groups."""
    owner: dict[str, str] = {}
    for group, cls in _hints(Config).items():
        for f in dataclasses.fields(cls):
            assert f.name not in owner, f"config field {f.name!r} is in two groups"
            owner[f.name] = group
    return owner


FIELD_GROUP = _group_fields()
#: Flat keys that are not a field's own name.
ALIASES = {"data": "path"}


# ---------------------------------------------------------------------------
# Setting values


_NULL_WORDS = ("null", "none", "")
_WORDS = {bool: "true or false", int: "an integer", str: "a string", dict: "a JSON object"}


def _from_text(name: str, text: str, kind: type) -> Any:
    """Text from the command line (``--set``) as JSON, a number, or a comma list."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if kind is list:
        return [v.strip() for v in text.split(",") if v.strip()]
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
    raise ValueError(f"{name}: cannot parse {text!r} (expected {_WORDS.get(kind, kind)})")


def _as_list(name: str, value: list, item: tuple) -> list:
    if item != (int,):
        return value
    try:
        ints = [int(v) for v in value if not isinstance(v, (bool, float))]
    except (TypeError, ValueError):
        ints = []
    if len(ints) != len(value):
        raise ValueError(f"{name} must be a list of integers, got {value!r}")
    return ints


def _coerce(name: str, value: Any, hint: Any, parse=None) -> Any:
    """``value`` (maybe text) as a value of ``hint``, a field's annotation; a one-line
    ValueError naming ``name`` when it is not one."""
    if parse is not None:
        return parse(value)
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        hint = next(a for a in args if a is not type(None))
        if value is None or (hint is not str and isinstance(value, str)
                             and value.strip().lower() in _NULL_WORDS):
            return None
    kind = typing.get_origin(hint) or hint
    if isinstance(value, str) and kind is not str:
        value = _from_text(name, value, kind)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if kind is list:
        return _as_list(name, value if isinstance(value, list) else [value],
                        typing.get_args(hint))
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ValueError(f"{name} must be {_WORDS.get(kind, 'a number')}, got {value!r}")
    return value


def _unknown_key(key: str) -> ValueError:
    names = sorted([*FIELD_GROUP, *ALIASES])
    close = difflib.get_close_matches(key.split(".")[-1], names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"unknown config key {key!r}{hint}")


def _locate(key: str) -> tuple[str, str, str]:
    """``"lr"`` or ``"optim.lr"`` -> ``("optim", "lr", "")``; ``"augment.noise.p"`` ->
    ``("ablation", "augment", "noise.p")``; ``"data"`` -> ``("data", "path", "")``."""
    parts = key.split(".")
    group = parts.pop(0) if len(parts) > 1 and parts[0] in GROUPS else None
    name = parts[0] if group is not None else ALIASES.get(parts[0], parts[0])
    owner = FIELD_GROUP.get(name)
    if owner is None or group not in (None, owner) or (len(parts) > 1 and name != "augment"):
        raise _unknown_key(key)
    return owner, name, ".".join(parts[1:])


#: Keys a config file may hold that the runner does not read: a search's ``recipe.json``
#: carries the recipe's library chain (``augkit.load_compose``) under ``"compose"``.
NOT_READ = ("compose",)


def _entries(settings: dict[str, Any]):
    """``(key, value)`` pairs of flat or grouped settings; ``_``-keys are comments."""
    for key, value in settings.items():
        if key.startswith("_") or key in NOT_READ:
            continue
        if key in GROUPS and isinstance(value, dict):  # {"optim": {"lr": ...}}
            yield from ((f"{key}.{k}", v) for k, v in value.items() if not k.startswith("_"))
        else:
            yield key, value


def _set_augment(augment: dict[str, dict[str, Any]], key: str, path: str, value: Any) -> None:
    """``augment[<name>][<argument>] = value`` from ``path`` = ``"<name>.<argument>"`` (or
    ``"<name>"``/``""`` with a dict); text values are parsed as JSON when they can be."""
    if isinstance(value, dict) and path.count(".") < 1:
        for k, v in value.items():
            _set_augment(augment, key, f"{path}.{k}".strip("."), v)
        return
    name, _, arg = path.partition(".")
    if name in RENAMED_AUGMENT_KEYS and not arg:
        raise ValueError(f"config key {key!r} was replaced by "
                         f"augment.{RENAMED_AUGMENT_KEYS[name]} in augkit 0.2")
    if not arg or "." in arg:
        raise ValueError(f"config key {key!r}: use augment.<augmentation>.<argument>, "
                         "e.g. augment.noise.snr_db=[5,30]")
    if name not in AUGMENTATIONS:
        close = difflib.get_close_matches(name, sorted(AUGMENTATIONS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown augmentation {name!r} in config key {key!r}{hint}")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a plain string, e.g. "mean" or "spectrogram"
    augment.setdefault(name, {})[arg] = value


def apply(cfg: Config, settings: dict[str, Any]) -> Config:
    """Set fields from flat or grouped keys: ``{"lr": 1e-3}``, ``{"optim.lr": 1e-3}``,
    ``{"optim": {"lr": 1e-3}}``, ``{"augment.time_mask.max_width": 30}``."""
    for key, value in _entries(settings):
        group_name, name, rest = _locate(key)
        group = getattr(cfg, group_name)
        if name == "augment":
            _set_augment(group.augment, key, rest, value)
            continue
        f = group.__dataclass_fields__[name]
        setattr(group, name, _coerce(name, value, _hints(type(group))[name],
                                     f.metadata.get("parse")))
    return cfg


def load_preset(name: str) -> dict[str, Any]:
    path = CONFIG_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}; presets are {list(PRESETS)}")
    return json.loads(path.read_text())


def _config_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    path = _path("--config", path)
    if not Path(path).exists():
        raise FileNotFoundError(f"--config file not found: {path}")
    try:
        settings = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--config {path} is not valid JSON: {e}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"--config {path} must hold a JSON object of settings, e.g. "
                         f'{{"epochs": 2, "optim": {{"lr": 0.001}}}}, got '
                         f"{type(settings).__name__ if settings is not None else 'null'}: "
                         f"{json.dumps(settings)[:60]}")
    return settings


def resolve(preset: str = "quick", config_file: str | None = None,
            overrides: dict[str, Any] | None = None) -> Config:
    """A validated :class:`Config` from a preset, an optional JSON file and overrides."""
    cfg = Config(runtime=RuntimeConfig(preset=preset))
    for settings in (load_preset(preset), _config_file(config_file), overrides or {}):
        apply(cfg, settings)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------
# Saving, the identity, and reading a results folder's config back


def to_dict(cfg: Config) -> dict[str, Any]:
    """The config, grouped: ``{"data": {...}, "frontend": {...}, ...}``."""
    return dataclasses.asdict(cfg)


def identity(cfg: Config) -> dict[str, dict[str, Any]]:
    """What must match for results to be comparable on resume: every group but runtime
    and scale (the optimiser's group less what its protocol does not use), as JSON."""
    d = {g: getattr(cfg, g).identity() for g in IDENTITY_GROUPS}
    return json.loads(json.dumps(d, default=str))


def identity_diff(a: Config, b: Config) -> list[str]:
    """The field names (flat) whose identity values differ between ``a`` and ``b``."""
    ia, ib = identity(a), identity(b)
    return sorted(k for g in IDENTITY_GROUPS for k in set(ia[g]) | set(ib[g])
                  if ia[g].get(k) != ib[g].get(k))


def stored(settings: dict[str, Any]) -> Config:
    """The :class:`Config` a results folder's ``config.json`` records (not validated).

    Grouped configs are this version's; flat ones (written before the groups, with
    ``normalize`` and ``protocol``) are migrated. A config of augkit 0.2, which has no
    :data:`PROTOCOL_FIELDS`, is refused: its runs trained under another protocol.
    """
    grouped = isinstance(settings.get("frontend"), dict)
    missing = [] if grouped else [k for k in PROTOCOL_FIELDS if k not in settings]
    if missing:
        raise ValueError(f"its runs were written by augkit 0.2, before the fields "
                         f"{', '.join(missing)} existed (they trained unnormalised for a fixed "
                         "budget and read test at the last epoch), so they cannot be resumed")
    try:
        return apply(Config(), settings)
    except ValueError as e:
        raise ValueError(f"its config.json does not read as this version's ({e})") from None
