"""Run configuration: dataclasses, JSON presets in ``experiments/configs/``, CLI overrides.

Resolution order: dataclass defaults < preset file < ``--config FILE`` < explicit
flags and ``--set key=value`` overrides. The resolved config is saved beside
the results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"


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


@dataclass
class Config:
    """Everything one ablation needs. The README's "The ablation runner" explains the fields."""

    preset: str = "quick"
    data: str | None = None
    out: str | None = None
    split: str = "holdout"
    folds: int = 5
    fold: str = "0"
    # Audio and frontend.
    sample_rate: int = 16000
    max_seconds: float | None = None
    crop_seconds: float = 3.0
    n_fft: int = 512
    hop_length: int = 320
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    #: "db": per-example decibels (top_db floor); "clamp": the tutorial's clamped power mel.
    scale: str = "db"
    top_db: float = 80.0
    #: Level normalisation of every arm's input, in training and evaluation alike:
    #: "none"; "max" (dB relative to each example's maximum, librosa's ref=np.max);
    #: "standardize" (each example's features to zero mean, unit std); "freq" (per-mel-band
    #: mean and std fitted on the training split); "lufs" (each waveform to ``target_lufs``,
    #: ITU-R BS.1770). ``norm:<mode>`` arms train with another mode (``experiments.arms``).
    normalize: str = "none"
    #: "lufs" only: the integrated loudness every clip is brought to.
    target_lufs: float = -23.0
    # Model and optimisation.
    backbone: str = "cnn_small"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: Any = False
    tutorial_input: bool = False
    #: With ``tutorial_input``: the side of the square the adapter resizes to (224: the
    #: ``tutorial`` preset, 512: ``tutorial-advanced``).
    input_size: int = 224
    optimizer: str = "adamw"
    #: "cosine": linear warmup then cosine decay per step; "constant": fixed lr;
    #: "step": torch's SequentialLR([LinearLR(warmup_start_factor, total_iters=
    #: warmup_epochs), StepLR(step_size, gamma)], milestones=[warmup_epochs]) stepped once
    #: per epoch: lr changes at epoch boundaries only, and StepLR counts its epochs from
    #: the end of the warmup (``experiments.train.lr_lambda``).
    schedule: str = "cosine"
    lr: float = 3e-3
    weight_decay: float = 0.05
    #: Epochs of linear warmup ("cosine": per step; "step": per epoch, a whole number).
    warmup_epochs: float = 1.0
    #: "step" only: the lr factor of the first warmup epoch (LinearLR's start_factor).
    warmup_start_factor: float = 0.1
    #: "step" only: epochs between decays (StepLR's step_size), after the warmup.
    step_size: int = 10
    #: "step" only: the factor of each decay (StepLR's gamma).
    gamma: float = 0.1
    #: "converge" (the default): train until validation stops improving, within a cap,
    #: then decay the lr to 0 (``experiments.train.Convergence``); "fixed": ``epochs``
    #: epochs for every arm on ``schedule`` (budget parity; the tutorial replicas).
    protocol: str = "converge"
    #: "fixed" only: the budget of every arm.
    epochs: int = 15
    #: "converge" only: the hard cap on epochs, the final decay included.
    max_epochs: int = 60
    #: "converge" only: epochs without a rise of the 3-epoch mean validation accuracy
    #: by one validation clip's worth before the lr decays.
    patience: int = 5
    batch_size: int = 32
    eval_batch_size: int = 64
    label_smoothing: float = 0.0
    # Ablation.
    augmentations: list[str] = field(
        default_factory=lambda: ["time_mask", "freq_mask", "noise", "gain"])
    arms: list[str] = field(default_factory=lambda: ["default"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    #: Run even when a class has no clip in train or in an evaluated split (warned).
    allow_missing_classes: bool = False
    #: Per-augmentation settings over the defaults in ``experiments.arms.AUGMENTATIONS``:
    #: ``{"noise": {"snr_db": [5, 30]}, "time_mask": {"max_width": 40}}``.
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Banks for the background_noise and reverb arms (None: generated banks).
    noise_dir: str | None = None
    ir_dir: str | None = None
    # Runtime.
    device: str = "auto"
    compile: bool = False
    swanlab_mode: str = "local"
    swanlab_project: str = "augkit-ablate"
    cache_dir: str = ".cache/augkit"
    log_examples: int = 4
    # Scale out (README "Scale out"); none of these changes the results' identity.
    #: Units run at a time on Ray (0: one after another in this process, no Ray).
    workers: int = 0
    #: Join an existing Ray cluster ("auto" or HOST:PORT) instead of starting one.
    ray_address: str | None = None
    #: GPUs Ray reserves per unit (0.25 packs four per GPU); None: 1 on CUDA, 0 on CPU.
    gpus_per_run: float | None = None
    #: CPUs Ray reserves per unit and torch's thread count in it (0: torch's default;
    #: 1 under Ray).
    cpus_per_run: int = 0
    #: Times Ray runs a unit again when its worker dies.
    max_retries: int = 3
    # The embedded synthetic set (used when data is None).
    synthetic: dict[str, Any] = field(default_factory=lambda: dict(
        n_per_class=30, seconds=6.0, sample_rate=16000, seed=0))


#: How long each arm trains: until it converges (within ``max_epochs``) or a fixed budget.
PROTOCOLS = ("converge", "fixed")

PRESETS = ("quick", "tutorial", "tutorial-advanced", "augkit", "fsdd")

#: Fields whose default is ``None``: a finite number or null, or a string or null.
OPTIONAL_NUMBERS = ("max_seconds", "f_max", "gpus_per_run")
OPTIONAL_STRINGS = ("data", "out", "noise_dir", "ir_dir", "ray_address")


def _pretrained(value: Any) -> bool | str:
    """``pretrained``: true (timm's hub), false, or a local weights file."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        word = value.strip().lower()
        if word in ("true", "false"):
            return word == "true"
        return value.strip()
    raise ValueError(f"pretrained must be true, false or a weights file path, got {value!r}")


def _finite(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Coerce ``value`` (maybe a string from the CLI) to the type of ``default``."""
    if name == "pretrained":
        return _pretrained(value)
    if name == "fold":  # "all" or an index, as text or a number
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"fold must be 'all' or an integer, got {value!r}")
        return str(value)
    if name in OPTIONAL_STRINGS:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a path, got {value!r}")
        return value
    if name in OPTIONAL_NUMBERS:
        if isinstance(value, str):
            if value.strip().lower() in ("null", "none", ""):
                return None
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number or null, got {value!r}") from None
        return None if value is None else _finite(name, value)
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            if default is not None and not isinstance(default, (list, dict)):
                raise ValueError(f"{name}: cannot parse {value!r}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    elif isinstance(default, float):
        value = _finite(name, value)
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ValueError(f"{name} must be a list of {len(default)} numbers, got {value!r}")
        value = tuple(float(v) for v in value)
    elif isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a JSON object, got {value!r}")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
    elif isinstance(default, list):
        if not isinstance(value, list):
            value = [v.strip() for v in value.split(",") if v.strip()] if isinstance(
                value, str) else [value]
        if default and all(isinstance(v, int) for v in default):
            try:
                value = [int(v) for v in value]
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a list of integers, got {value!r}") from None
    return value


def _set_augment(cfg: Config, key: str, value: Any) -> None:
    """``augment.<name>.<argument> = value`` (``value`` parsed as JSON when it can be)."""
    from .arms import AUGMENTATIONS

    parts = key.split(".")
    if len(parts) == 2 and parts[1] in RENAMED_AUGMENT_KEYS:
        raise ValueError(f"config key {key!r} was replaced by "
                         f"augment.{RENAMED_AUGMENT_KEYS[parts[1]]} in augkit 0.2")
    if len(parts) != 3 or not parts[2]:
        raise ValueError(f"config key {key!r}: use augment.<augmentation>.<argument>, "
                         "e.g. augment.noise.snr_db=[5,30]")
    name, arg = parts[1], parts[2]
    if name not in AUGMENTATIONS:
        import difflib

        close = difflib.get_close_matches(name, sorted(AUGMENTATIONS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown augmentation {name!r} in config key {key!r}{hint}")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a plain string, e.g. "mean" or "spectrogram"
    cfg.augment.setdefault(name, {})[arg] = value


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Set fields from ``{"lr": 1e-3, "augment.time_mask.max_width": 30, ...}``."""
    for key, value in overrides.items():
        if key.startswith("_"):  # comments in config files
            continue
        if key == "augment" and isinstance(value, dict):
            for name, args in value.items():
                if not isinstance(args, dict):
                    _set_augment(cfg, f"augment.{name}", args)  # explains the new layout
                for arg, v in args.items():
                    _set_augment(cfg, f"augment.{name}.{arg}", v)
            continue
        if key.startswith("augment."):
            _set_augment(cfg, key, value)
            continue
        fields = {f.name for f in dataclasses.fields(cfg)}
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, sorted(fields), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown config key {key!r}{hint}")
        setattr(cfg, key, _coerce(key, value, getattr(cfg, key)))
    return cfg


def load_preset(name: str) -> dict[str, Any]:
    path = CONFIG_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}; presets are {list(PRESETS)}")
    return json.loads(path.read_text())


def resolve(preset: str = "quick", config_file: str | None = None,
            overrides: dict[str, Any] | None = None) -> Config:
    """Build a :class:`Config` from a preset, an optional JSON file and overrides."""
    cfg = Config(preset=preset)
    apply_overrides(cfg, load_preset(preset))
    if config_file:
        path = Path(config_file)
        if not path.exists():
            raise FileNotFoundError(f"--config file not found: {path}")
        try:
            apply_overrides(cfg, json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"--config {path} is not valid JSON: {e}") from None
    apply_overrides(cfg, overrides or {})
    validate(cfg)
    return cfg


def _dedupe(name: str, values: list) -> list:
    out, dup = [], []
    for v in values:
        (dup if v in out else out).append(v)
    if dup:
        shown = ", ".join(str(v) for v in dict.fromkeys(dup))
        warnings.warn(f"duplicate {name}(s) {shown} removed: running {name}s "
                      f"{', '.join(str(v) for v in out)} (a repeated {name} would count the "
                      "same run twice)", stacklevel=4)
    return out


def _check_frontend(cfg: Config) -> None:
    """The mel frontend's own checks, plus crop vs n_fft and all-zero mel bands."""
    import augkit as ak

    crop = int(round(cfg.crop_seconds * cfg.sample_rate))
    if crop < cfg.n_fft:
        raise ValueError(f"crop_seconds={cfg.crop_seconds:g} is {crop} samples at "
                         f"{cfg.sample_rate} Hz, shorter than n_fft={cfg.n_fft}; use a longer "
                         "crop or a smaller n_fft")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ak.MelFrontend(cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                       n_mels=cfg.n_mels, f_min=cfg.f_min, f_max=cfg.f_max, log=None)
    if any("all-zero" in str(w.message) for w in caught):
        raise ValueError(f"n_mels={cfg.n_mels} is too many for n_fft={cfg.n_fft} "
                         f"({cfg.n_fft // 2 + 1} FFT bins) at {cfg.sample_rate} Hz: some mel "
                         "bands would be all zero; use fewer mels or a larger n_fft")


def validate(cfg: Config) -> None:
    """Check every value before any work; raise ValueError naming the field.

    Also removes duplicate seeds and arms with a warning.
    """
    positive = dict(sample_rate=cfg.sample_rate, crop_seconds=cfg.crop_seconds, n_fft=cfg.n_fft,
                    hop_length=cfg.hop_length, n_mels=cfg.n_mels, lr=cfg.lr, epochs=cfg.epochs,
                    max_epochs=cfg.max_epochs, batch_size=cfg.batch_size,
                    eval_batch_size=cfg.eval_batch_size, input_size=cfg.input_size)
    for name, v in positive.items():
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v!r}")
    if cfg.scale not in ("db", "clamp"):
        raise ValueError(f"scale must be 'db' or 'clamp', got {cfg.scale!r}")
    from .arms import NORMALIZE_MODES

    if cfg.normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got "
                         f"{cfg.normalize!r}")
    if cfg.scale == "clamp" and cfg.normalize in ("max", "standardize", "freq"):
        raise ValueError(f"normalize {cfg.normalize!r} works on decibel features; scale "
                         "'clamp' gives power (use scale 'db', or normalize 'lufs' or 'none')")
    if not -70.0 <= cfg.target_lufs <= 0.0:
        raise ValueError(f"target_lufs must be in [-70, 0] LUFS, got {cfg.target_lufs!r}")
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got "
                         f"{cfg.protocol!r}")
    if cfg.patience < 1:
        raise ValueError(f"patience must be an integer >= 1 (epochs), got {cfg.patience!r}")
    if cfg.optimizer not in ("adamw", "adam"):
        raise ValueError(f"optimizer must be 'adamw' or 'adam', got {cfg.optimizer!r}")
    if cfg.schedule not in ("cosine", "constant", "step"):
        raise ValueError(f"schedule must be 'cosine', 'constant' or 'step', got "
                         f"{cfg.schedule!r}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {cfg.device!r}")
    modes = ("cloud", "online", "local", "offline", "disabled")
    if cfg.swanlab_mode not in modes:
        raise ValueError(f"swanlab_mode must be one of {modes}, got {cfg.swanlab_mode!r}")
    if not cfg.seeds:
        raise ValueError("seeds must name at least one seed")
    bad = [s for s in cfg.seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ValueError(f"seeds must be integers >= 0, got {bad}")
    cfg.seeds = _dedupe("seed", list(cfg.seeds))
    if not cfg.arms or not all(isinstance(a, str) and a for a in cfg.arms):
        raise ValueError(f"arms must be a non-empty list of arm names, got {cfg.arms!r}")
    cfg.arms = _dedupe("arm", list(cfg.arms))
    import augkit as ak

    if cfg.backbone not in ak.list_backbones():
        import difflib

        close = difflib.get_close_matches(str(cfg.backbone), ak.list_backbones(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"backbone {cfg.backbone!r} is not registered{hint} (registered: "
                         f"{', '.join(ak.list_backbones())})")
    if isinstance(cfg.pretrained, str):
        weights = Path(cfg.pretrained).expanduser()
        if not weights.is_file():
            raise ValueError(f"pretrained: weights file {weights} "
                             + ("is a folder" if weights.is_dir() else "does not exist"))
    from .splits import SPLIT_KINDS

    if cfg.split not in SPLIT_KINDS:
        raise ValueError(f"split must be {', '.join(SPLIT_KINDS[:-1])} or {SPLIT_KINDS[-1]}, "
                         f"got {cfg.split!r}")
    if cfg.split == "kfold":
        if cfg.folds < 2:
            raise ValueError(f"folds must be an integer >= 2 for split kfold, got {cfg.folds}")
        fold = str(cfg.fold).strip()
        if fold != "all" and not (fold.isdigit() and int(fold) < cfg.folds):
            raise ValueError(f"fold must be 'all' or an integer in [0, folds) = "
                             f"[0, {cfg.folds}), got {cfg.fold!r}")
        cfg.fold = fold
    if cfg.split == "manifest" and cfg.data is not None and not str(cfg.data).lower().endswith(
            ".csv"):
        raise ValueError("split 'manifest' needs --data pointing to a CSV manifest with a "
                         f"'split' column (or no --data: the synthetic set's own), got "
                         f"data={cfg.data!r}")
    if cfg.max_seconds is not None and not cfg.max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0 or null, got {cfg.max_seconds!r}")
    if cfg.top_db < 0:
        raise ValueError(f"top_db must be >= 0, got {cfg.top_db!r}")
    if cfg.weight_decay < 0 or not 0 <= cfg.label_smoothing < 1:
        raise ValueError(f"need weight_decay >= 0 and 0 <= label_smoothing < 1, got "
                         f"{cfg.weight_decay}, {cfg.label_smoothing}")
    if cfg.log_examples < 0:
        raise ValueError(f"log_examples must be >= 0, got {cfg.log_examples}")
    for name in ("workers", "cpus_per_run", "max_retries"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.gpus_per_run is not None:
        if not 0 <= cfg.gpus_per_run <= 1:
            raise ValueError(f"gpus_per_run must be in [0, 1] (a unit trains on one device; "
                             f"0.25 packs four per GPU), got {cfg.gpus_per_run:g}")
        if cfg.gpus_per_run > 0 and cfg.device == "cpu":
            raise ValueError(f"gpus_per_run={cfg.gpus_per_run:g} with device cpu: use "
                             "--gpus-per-run 0 on the CPU")
    _check_frontend(cfg)
    budget = cfg.epochs if cfg.protocol == "fixed" else cfg.max_epochs
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs > budget:
        name = "epochs" if cfg.protocol == "fixed" else "max_epochs"
        raise ValueError(f"warmup_epochs must be in [0, {name}], got {cfg.warmup_epochs}")
    if cfg.protocol == "converge" and cfg.max_epochs < math.ceil(cfg.warmup_epochs) + 4:
        raise ValueError(f"max_epochs={cfg.max_epochs} leaves no room for the warmup "
                         f"({cfg.warmup_epochs:g} epochs), a 3-epoch validation mean and the "
                         f"final decay; use at least {math.ceil(cfg.warmup_epochs) + 4}")
    if cfg.schedule == "step" and cfg.warmup_epochs != int(cfg.warmup_epochs):
        raise ValueError(f"warmup_epochs must be a whole number of epochs with schedule "
                         f"'step', got {cfg.warmup_epochs:g}")
    if not 0 < cfg.warmup_start_factor <= 1:
        raise ValueError(f"warmup_start_factor must be in (0, 1], got "
                         f"{cfg.warmup_start_factor!r}")
    if not cfg.step_size >= 1:
        raise ValueError(f"step_size must be an integer >= 1 (epochs), got {cfg.step_size!r}")
    if not 0 < cfg.gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {cfg.gamma!r}")
    from .arms import AUGMENTATIONS, build_augmentation, context_for

    unknown = [a for a in cfg.augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                         f"registered: {sorted(AUGMENTATIONS)}")
    for name in ("noise_dir", "ir_dir"):
        folder = getattr(cfg, name)
        if folder is not None and not Path(folder).is_dir():
            raise ValueError(f"--{name.replace('_', '-')}: {folder} is not a folder")
    ctx = context_for(cfg, cfg.sample_rate, num_classes=2)
    for name in AUGMENTATIONS:  # every setting is checked now, not after decoding
        build_augmentation(name, cfg.augment.get(name), ctx)


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def identity(cfg: Config) -> dict[str, Any]:
    """The part of the config that must match for results to be comparable on resume."""
    d = to_dict(cfg)
    for k in ("arms", "seeds", "out", "swanlab_mode", "swanlab_project", "device", "cache_dir",
              "log_examples", "compile", "fold", "allow_missing_classes", "workers",
              "ray_address", "gpus_per_run", "cpus_per_run", "max_retries"):
        d.pop(k)
    # Fields newer than some results folders: left out at their defaults, so that a
    # folder written before they existed still resumes (they did not change its runs).
    # Settings the protocol does not use are left out, so that changing them does not
    # block a resume; a fixed-budget identity is the one written before protocols existed.
    unused = (("protocol", "max_epochs", "patience") if cfg.protocol == "fixed" else
              ("epochs", "schedule", "step_size", "gamma", "warmup_start_factor"))
    for k in unused:
        d.pop(k)
    defaults = Config()
    for k in ("input_size", "warmup_start_factor", "step_size", "gamma", "normalize",
              "target_lufs"):
        if k in d and d[k] == getattr(defaults, k):
            d.pop(k)
    return d
