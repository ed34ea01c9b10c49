"""Generate the transform gallery: ``python -m docs.gallery [--quick] [--out DIR] [--seed N]``.

For every random transform in :func:`augkit.transforms.random_transforms` (so a
new transform gets its entry without an edit here, as long as it builds from
``p`` and, if it has one, ``sample_rate``), plus the frontend steps, the script
applies the transform with ``p=1`` to real recordings that ship with the
project and writes:

- ``img/<entry>-<clip>.png``: log-mel spectrograms before and after, axes in Hz
  and seconds, one colour scale for both (and the waveforms, for waveform steps);
- ``audio/<entry>-<clip>-{before,after}.wav``: 16-bit PCM, a few seconds at most;
- ``index.md``: the gallery page, one section per transform, the drawn
  parameters (``last_params`` of example 0, summarised) in each caption.

The clips are the FSDD spoken digits in ``tests/data/fsdd`` (8 kHz, CC BY-SA
4.0) and a music-like excerpt rendered by :func:`experiments.data.synthetic.render_clip`
(16 kHz). Every draw comes from a CPU ``torch.Generator`` seeded from ``--seed``
and the entry's name, so the pictures change only when a transform (or the
seed) changes, and adding a transform does not move the others.

``--quick`` (CI): one clip (2 s of the music excerpt) and smaller pictures. Either way the
pictures' text shows at 9 pt on the page (:data:`TEXT_PT`).
"""

from __future__ import annotations

import argparse
import inspect
import math
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402

import augkit as ak  # noqa: E402
from augkit.banks import synthetic_room_irs  # noqa: E402
from augkit.transforms import random_transforms  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT / "tests" / "data" / "fsdd"
DEFAULT_OUT = Path(__file__).resolve().parent / "gallery"
TOP_DB = 80.0  # the dynamic range every picture shows


# --- the clips -----------------------------------------------------------------------------

@dataclass
class Clip:
    key: str          # used in file names
    label: str        # shown in captions
    wave: torch.Tensor  # (T,) float32
    sample_rate: int
    others: list[torch.Tensor] = field(default_factory=list)  # other recordings at this rate

    @property
    def seconds(self) -> float:
        return self.wave.numel() / self.sample_rate


def _read(path: Path) -> tuple[torch.Tensor, int]:
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.mean(axis=1)).contiguous(), int(sr)


def _peak(x: torch.Tensor, peak: float = 0.5) -> torch.Tensor:
    return x * (peak / x.abs().max().clamp_min(1e-9))


def load_clips(quick: bool) -> list[Clip]:
    from experiments.data.synthetic import render_clip

    seconds = 2.0 if quick else 3.0
    # reggae clip 1: bass, chords, drums and little background noise (see render_clip)
    music = torch.from_numpy(render_clip("reggae", seed=0, clip=1, seconds=3.0,
                                         sample_rate=16000).astype(np.float32) / 32768)
    music = music[:int(seconds * 16000)]
    speech = {p.stem: _read(p) for p in sorted(FSDD.glob("*.wav"))}
    if not speech:
        raise SystemExit(f"no FSDD clips in {FSDD}")
    speech_16k = [_peak(torchaudio.functional.resample(w, sr, 16000))
                  for w, sr in speech.values()]
    clips = [Clip("music", f"music-like excerpt (synthetic reggae, {seconds:g} s, 16 kHz)",
                  _peak(music), 16000, speech_16k)]
    if not quick:
        name = "3_jackson_12"
        wave, sr = speech[name]
        others = [_peak(w) for k, (w, _) in speech.items() if k != name]
        clips.append(Clip("speech", f"spoken digit (FSDD {name}.wav, "
                                    f"{wave.numel() / sr:.2f} s, {sr // 1000} kHz)",
                          _peak(wave), sr, others))
    return clips


# --- how each transform is shown -----------------------------------------------------------

@dataclass
class Show:
    """How the gallery builds and feeds one transform."""

    kwargs: Callable[[Clip], dict] = lambda clip: {}
    domain: str | None = None  # "wave" or "spec"; None: from the class's ndims
    note: str = ""             # one sentence for the caption
    family: str = "Other"


def _nyquist_range(lo: float, hi: float) -> Callable[[Clip], tuple[float, float]]:
    return lambda clip: (lo, min(hi, 0.45 * clip.sample_rate))


def _band_range(lo: float, hi: float) -> Callable[[Clip], tuple[float, float]]:
    """Band centres whose widest band (fraction 1.99: edges at 0.005 and 1.995 x the
    centre) stays below Nyquist, as the band filters require."""
    return lambda clip: (lo, min(hi, 0.45 * clip.sample_rate / 1.995))


WAVE, FILT, NOISE, PITCH, SPEC, MIX = ("Waveform", "Filters", "Noise and reverb",
                                       "Pitch, tempo and speed", "Spectrogram", "Mixing")
FAMILIES = ("Frontend", WAVE, FILT, NOISE, PITCH, SPEC, MIX, "Other")

#: Settings that differ from the defaults, and why; everything else is the default.
SHOW: dict[str, Show] = {
    "Gain": Show(family=WAVE),
    "GaussianNoise": Show(family=WAVE),
    "RandomCrop": Show(lambda c: dict(length=c.wave.numel() // 2), family=WAVE,
                       note="length: half the clip, here."),
    "TimeShift": Show(family=WAVE),
    "PolarityInversion": Show(family=WAVE,
                              note="A sign flip leaves the spectrogram as it was: see the "
                                   "waveform."),
    "PeakNormalize": Show(family=WAVE),
    "TimeReversal": Show(family=WAVE),
    "LowPassFilter": Show(lambda c: dict(sample_rate=c.sample_rate,
                                         cutoff_hz=_nyquist_range(150, 7500)(c)), family=FILT),
    "HighPassFilter": Show(lambda c: dict(sample_rate=c.sample_rate), family=FILT),
    "BandPassFilter": Show(lambda c: dict(sample_rate=c.sample_rate,
                                          center_hz=_band_range(200, 4000)(c)), family=FILT),
    "BandStopFilter": Show(lambda c: dict(sample_rate=c.sample_rate,
                                          center_hz=_band_range(200, 4000)(c)), family=FILT),
    "PeakingFilter": Show(lambda c: dict(center_hz=_nyquist_range(50, 7500)(c)), family=FILT),
    "LowShelfFilter": Show(lambda c: dict(cutoff_hz=_nyquist_range(50, 4000)(c)), family=FILT),
    "HighShelfFilter": Show(lambda c: dict(cutoff_hz=_nyquist_range(300, 7500)(c)),
                            family=FILT),
    "ParametricEQ": Show(lambda c: dict(center_hz=_nyquist_range(50, 7500)(c),
                                        high_shelf_hz=_nyquist_range(2000, 7000)(c)),
                         family=FILT),
    "DropFreq": Show(lambda c: dict(freq_hz=_nyquist_range(50, 7500)(c)), family=FILT),
    "BandLimit": Show(lambda c: dict(bandwidth_hz=(1000.0, 2000.0, 3400.0)), family=FILT,
                      note="Bandwidths of 1, 2 and 3.4 kHz here, below Nyquist at 8 kHz too."),
    "AirAbsorption": Show(lambda c: dict(distance_m=(200.0, 1000.0)), family=FILT,
                          note="200 m to 1 km here: 100 m takes only 3 dB off at 4 kHz."),
    "DropChunk": Show(lambda c: dict(chunk_length=(c.sample_rate // 20, c.sample_rate // 5)),
                      family=WAVE, note="Chunks of 50 to 200 ms here."),
    "Clipping": Show(family=WAVE),
    "TanhDistortion": Show(family=WAVE),
    "BitCrush": Show(lambda c: dict(bit_depth=(4, 8)), family=WAVE,
                     note="4 to 8 bits here (the default goes up to 12, hard to see)."),
    "MuLaw": Show(family=WAVE),
    "Aliasing": Show(lambda c: dict(rate_hz=_nyquist_range(2000, 8000)(c)), family=WAVE,
                     note="The intermediate rate stays under 0.45 sample_rate here."),
    "ColoredNoise": Show(family=NOISE),
    "BackgroundNoise": Show(lambda c: dict(noises=c.others), family=NOISE,
                            note="Noise bank: the other FSDD recordings (babble)."),
    "ImpulseResponse": Show(lambda c: dict(irs=synthetic_room_irs(8, c.sample_rate,
                                                                  rt60=(0.3, 1.0), seed=0)),
                            family=NOISE,
                            note="Rooms: 8 synthetic_room_irs with RT60 0.3-1.0 s."),
    "RoomSimulator": Show(family=NOISE,
                          note="Shoebox rooms 3-10 x 3-8 x 2.5-4 m, absorption 0.15-0.6, "
                               "image sources to order 8 and an Eyring tail."),
    "PitchShift": Show(lambda c: dict(sample_rate=c.sample_rate), family=PITCH),
    "TimeStretch": Show(lambda c: dict(n_fft=512 * c.sample_rate // 16000), family=PITCH),
    "Speed": Show(family=PITCH),
    "TimeMasking": Show(lambda c: dict(num_masks=2, value="mean"), family=SPEC,
                        note="Two masks filled with the example's mean, as the presets do."),
    "FrequencyMasking": Show(lambda c: dict(num_masks=2, value="mean"), family=SPEC,
                             note="Two masks filled with the example's mean, as the presets "
                                  "do."),
    "TimeWarp": Show(lambda c: dict(max_warp=40), family=SPEC,
                     note="max_warp=40 frames (the default 5 is too small to see)."),
    "RandomResizedCrop": Show(family=SPEC,
                              note="On dB input the canvas around the spectrogram reads 0 dB, "
                                   "the top of this scale; BYOL-A normalises first, so there it "
                                   "is the mean."),
    "FilterAugment": Show(family=SPEC),
    "TrivialAugment": Show(lambda c: dict(transforms=[
        ("gain", ak.Gain(gain_db=(-12, 12), p=1.0)),
        ("lowpass", ak.LowPassFilter(sample_rate=c.sample_rate, p=1.0,
                                     cutoff_hz=_nyquist_range(300, 3000)(c))),
        ("colored_noise", ak.ColoredNoise(snr_db=(10, 20), p=1.0))]), family=MIX,
        note="One of gain, low-pass or coloured noise per example (num_ops=1)."),
    "Mixup": Show(lambda c: dict(alpha=1.0, num_classes=2), domain="pair", family=MIX,
                  note="Shown on a pair of clips (the partner: the longest other FSDD "
                       "recording), mixed as waveforms so that it can be heard; in a training "
                       "chain it usually runs last, on the features. alpha=1 (λ uniform) "
                       "here: the default 0.4 draws λ near 0 or 1 more often."),
    "CutMix": Show(lambda c: dict(mode="box", num_classes=2), domain="pair", family=MIX,
                   note="Shown on a pair of log-mels (the partner: the longest other FSDD "
                        "recording, looped); mode='box' here, the default 'time' pastes a segment "
                        "over every bin."),
    "SpecMix": Show(lambda c: dict(gamma=0.1, max_bands=3, num_classes=2), domain="pair",
                    family=MIX,
                    note="Shown on a pair of log-mels (the partner: the longest other FSDD "
                         "recording, looped): its time bands and frequency bands are pasted."),
}


def family_of(name: str) -> str:
    return SHOW[name].family if name in SHOW else "Other"


# --- the pictures --------------------------------------------------------------------------

class Frontend:
    """The log-mel used for every picture, sized for the clip's rate."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        n_fft = 512 * sample_rate // 16000
        self.hop = n_fft // 4
        self.n_mels = 64 if sample_rate >= 16000 else 40
        self.mel = ak.MelFrontend(sample_rate, n_fft=n_fft, hop_length=self.hop,
                                  n_mels=self.n_mels, log=None)
        self.db = ak.AmplitudeToDB(top_db=None)

    def power(self, wave: torch.Tensor) -> torch.Tensor:   # (T,) -> (F, frames)
        return self.mel(wave.view(1, 1, -1))[0, 0]

    def log(self, wave: torch.Tensor) -> torch.Tensor:
        power = self.power(wave)
        return self.db(power.view(1, 1, *power.shape))[0, 0]

    def hz_ticks(self) -> tuple[list[float], list[str]]:
        """Tick positions (in mel-band index units) and labels in Hz."""
        mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731  (htk, as MelFrontend)
        top = mel(self.sample_rate / 2)
        ticks = [f for f in (0, 500, 1000, 2000, 4000, 8000, 16000)
                 if f <= self.sample_rate / 2]
        return ([mel(f) / top * self.n_mels for f in ticks],
                [f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])


#: The pages show each picture at its pixel size (one pixel per CSS pixel, 96 per inch) while
#: it fits the text column of the theme (about 690 px wide at its default layout), so a
#: picture is at most this wide and its text is sized in the points it is displayed at.
COLUMN_PX = 680
CSS_DPI = 96
#: Text size as displayed on the page, in points: tick labels, axis labels, titles.
TEXT_PT = 9.0


@dataclass(frozen=True)
class Style:
    width: float   # inches, at `dpi`
    height: float  # inches: a row of spectrograms with their labels
    dpi: int

    def pt(self, displayed: float) -> float:
        """The matplotlib font size (points at ``dpi``) shown as ``displayed`` points."""
        return displayed * CSS_DPI / self.dpi

    def rc(self) -> dict:
        """Matplotlib settings that size every text of a picture for the page."""
        size = self.pt(TEXT_PT)
        return {"font.size": size, "axes.titlesize": self.pt(TEXT_PT + 1),
                "axes.labelsize": size, "xtick.labelsize": size, "ytick.labelsize": size,
                "savefig.dpi": self.dpi}


#: ``--quick`` (CI): small files, the same displayed text size.
QUICK = Style(width=5.0, height=1.9, dpi=80)
FULL = Style(width=7.0, height=2.3, dpi=96)


def _panel(ax, img: np.ndarray, fe: Frontend, vmin: float, vmax: float, title: str,
           cmap: str = "magma", show_y: bool = True):
    frames = img.shape[-1]
    seconds = (frames - 1) * fe.hop / fe.sample_rate
    im = ax.imshow(img, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                   extent=(0.0, seconds, 0.0, fe.n_mels), interpolation="nearest")
    pos, labels = fe.hz_ticks()
    ax.set_yticks(pos, labels if show_y else [])
    if show_y:
        ax.set_ylabel("Hz")
    ax.set_xlabel("s")
    ax.set_title(title)
    return im


def _save(fig, path: Path) -> None:
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def figure(before: np.ndarray, after: np.ndarray, fe: Frontend, style: Style, *,
           path: Path, **kwargs) -> None:
    """Two spectrograms on one colour scale (and the waveforms under them), saved to
    ``path``; see :func:`draw_pair`."""
    _save(draw_pair(before, after, fe, style, **kwargs), path)


def draw_pair(before: np.ndarray, after: np.ndarray, fe: Frontend, style: Style, *,
              waves: tuple[np.ndarray, np.ndarray] | None = None, titles=("before", "after"),
              unit: str = "dB", linear: bool = False, before_wave_only: bool = False):
    """The figure of two spectrograms on one colour scale (and the waveforms under them)."""
    with plt.rc_context(style.rc()):
        return _draw_pair(before, after, fe, style, waves, titles, unit, linear,
                          before_wave_only)


def _draw_pair(before, after, fe, style, waves, titles, unit, linear, before_wave_only):
    rows = 2 if waves is not None else 1
    fig = plt.figure(figsize=(style.width, style.height * (1.45 if rows == 2 else 1.0)),
                     dpi=style.dpi)
    # columns: left, a gap (room for the right panel's Hz axis, about 80 px, when it has
    # one), right, colour bar; a panel is about width / 2.3
    gap = 80 / (style.width * style.dpi / 2.3) if before_wave_only else 0.001
    grid = fig.add_gridspec(rows, 4, width_ratios=(1, gap, 1, 0.035),
                            height_ratios=(3, 1) if rows == 2 else (1,), hspace=0.6,
                            wspace=0.06)
    if linear:
        vmin, vmax = 0.0, float(max(before.max(), after.max()))
    else:  # one scale: 0 dB at the loudest bin of either picture
        top = float(max(before.max(), after.max()))
        before, after = before - top, after - top
        vmin, vmax = -TOP_DB, 0.0
    ax0 = fig.add_subplot(grid[0, 0])
    ax1 = fig.add_subplot(grid[0, 2])
    if before_wave_only:  # the MelFrontend entry: waveform -> mel
        t = np.arange(waves[0].size) / fe.sample_rate
        ax0.plot(t, waves[0], lw=0.5, color="#3465a4")
        ax0.set_xlim(0, t[-1])
        ax0.set_ylim(-1, 1)
        ax0.set_xlabel("s")
        ax0.set_title(titles[0])
        waves = None
        rows = 1
    else:
        _panel(ax0, before, fe, vmin, vmax, titles[0])
    im = _panel(ax1, after, fe, vmin, vmax, titles[1], show_y=before_wave_only)
    cax = fig.add_subplot(grid[0, 3])
    bar = fig.colorbar(im, cax=cax)
    bar.set_label("power" if linear else unit)
    if waves is not None:
        lim = max(1e-3, float(max(np.abs(waves[0]).max(), np.abs(waves[1]).max()))) * 1.05
        for col, w in enumerate(waves):
            ax = fig.add_subplot(grid[1, 2 * col])
            t = np.arange(w.size) / fe.sample_rate
            ax.plot(t, w, lw=0.4, color="#3465a4")
            ax.set_xlim(0, max(t[-1], 1e-3))
            ax.set_ylim(-lim, lim)
            ax.set_yticks([])
            ax.set_xlabel("s")
    _tick_labels(fig, style)
    return fig


def write_wav(path: Path, waves: list[np.ndarray], sample_rate: int) -> list[Path]:
    """16-bit WAVs, one common scale so that level changes stay audible (peak <= 0.99)."""
    peak = max(float(np.abs(w).max()) for w in waves)
    scale = min(1.0, 0.99 / peak) if peak > 0 else 1.0
    paths = []
    for w, tag in zip(waves, ("before", "after"), strict=False):
        p = path.with_name(f"{path.name}-{tag}.wav")
        sf.write(p, np.clip(w * scale, -1, 1), sample_rate, subtype="PCM_16")
        paths.append(p)
    return paths


# --- captions ------------------------------------------------------------------------------

def _num(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def summarise(params: dict[str, torch.Tensor], example: int = 0, limit: int = 4) -> str:
    """``last_params`` of one example in a few numbers: ``gain_db = 4.21; ...``."""
    parts = []
    for key, value in params.items():
        if key == "apply":
            continue
        if not isinstance(value, torch.Tensor):
            parts.append(f"{key} = {value!r}")
            continue
        v = value[example] if value.ndim and value.shape[0] > example else value
        flat = v.detach().reshape(-1)
        n = flat.numel()
        if n == 1:
            parts.append(f"{key} = {_num(float(flat[0]))}")
        elif n <= limit:
            parts.append(f"{key} = [{', '.join(_num(float(x)) for x in flat)}]")
        elif v.ndim == 1 and n <= 16:  # a few per example (band edges, gains): the first ones
            head = ", ".join(_num(float(x)) for x in flat[:limit - 1])
            parts.append(f"{key} = [{head}, …] ({n} values)")
        else:  # drawn noise
            parts.append(f"{key}: {'×'.join(map(str, v.shape))} values")
    return "; ".join(parts) if parts else "nothing drawn"


# --- one entry -----------------------------------------------------------------------------

@dataclass
class Figure:
    clip: Clip
    image: str
    params: str
    audio: tuple[str, str] | None  # (before, after) relative paths
    note: str = ""
    what: str = ""  # the transform's repr for this clip (settings can depend on the rate)


@dataclass
class Entry:
    name: str
    family: str
    what: str            # the transform's repr
    figures: list[Figure]
    note: str = ""


def slug(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))


def seed_for(name: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def build(name: str, cls: type, clip: Clip) -> tuple[torch.nn.Module, str]:
    show = SHOW.get(name, Show())
    kwargs = dict(show.kwargs(clip))
    sig = inspect.signature(cls.__init__).parameters
    if "sample_rate" in sig and "sample_rate" not in kwargs:
        kwargs["sample_rate"] = clip.sample_rate
    if "p" in sig:
        kwargs["p"] = 1.0
    domain = show.domain
    if domain is None:  # what the contract-test cases feed it, else what ranks it takes
        inputs = {case.get("input") for case in getattr(cls, "cases", ())}
        domain = ("wave" if "wave" in inputs else "spec" if inputs
                  else "wave" if 3 in cls.ndims else "spec")
    try:
        return cls(**kwargs), domain
    except TypeError as e:
        raise SystemExit(f"gallery: cannot build {name}({kwargs}): {e}; add an entry for it "
                         f"to SHOW in {Path(__file__).name}") from e


def _pair(clip: Clip, loop: bool = False) -> torch.Tensor:
    """The clip and a partner (the longest other recording, looped to the clip's
    length with ``loop``, else zero-padded), ``(2, 1, T)``."""
    partner = max(clip.others, key=len)
    if loop:
        partner = partner.repeat(-(-clip.wave.numel() // partner.numel()))
    partner = partner[:clip.wave.numel()]
    n = max(clip.wave.numel(), partner.numel())
    return torch.stack([torch.nn.functional.pad(w, (0, n - w.numel()))
                        for w in (clip.wave, partner)]).unsqueeze(1)


def _log_mel(fe: Frontend, wave: torch.Tensor) -> torch.Tensor:
    """The picture's log-mel ``(F, frames)``: 0 dB at the loudest bin, floored."""
    spec = fe.log(wave)
    return (spec - spec.amax()).clamp_min(-TOP_DB)


def _with_partner(t: torch.nn.Module, pair: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Apply a mixing step to a batch of two until example 0 drew example 1 as partner."""
    for _ in range(64):  # one partner permutation per batch: want a swap
        y, _soft = t(pair, generator=g, target=torch.tensor([0, 1]))
        if int(t.last_params["perm"][0]) == 1:
            break
    return y


def random_entry(name: str, cls: type, clips: list[Clip], out: Path, style: Style,
                 seed: int) -> Entry:
    figures = []
    show = SHOW.get(name, Show())
    for clip in clips:
        fe = Frontend(clip.sample_rate)
        t, domain = build(name, cls, clip)
        what = repr(t).replace("\n", " ")
        g = seed_for(f"{name}/{clip.key}", seed)
        stem = f"{slug(name)}-{clip.key}"
        x = clip.wave.view(1, 1, -1)
        note, audio = "", None
        if domain == "pair" and 3 not in t.ndims:  # CutMix, SpecMix: a pair of log-mels
            pair = _pair(clip, loop=True)
            specs = torch.stack([_log_mel(fe, w) for w in pair[:, 0]]).unsqueeze(1)
            y = _with_partner(t, specs, g)
            before, after = specs[0, 0].numpy(), y[0, 0].detach().numpy()
            figure(before, after, fe, style, path=out / "img" / f"{stem}.png")
            note = "pasted from the partner (the longest other FSDD recording, looped)"
            example = 0
        elif domain == "spec":
            spec = _log_mel(fe, clip.wave).view(1, 1, fe.n_mels, -1)
            y = t(spec, generator=g)
            before, after = spec[0, 0].numpy(), y[0, 0].detach().numpy()
            figure(before, after, fe, style, path=out / "img" / f"{stem}.png")
            note = ""
            example = 0
        else:
            partner_label = ""
            if domain == "pair":  # Mixup: the clip and a partner, mixed as waveforms
                pair = _pair(clip)
                y = _with_partner(t, pair, g)
                x, y = pair[:1, :, :clip.wave.numel()], y[:1, :, :clip.wave.numel()]
                partner_label = "λ is the weight of the clip shown, 1 - λ its partner's"
            else:
                y = t(x, generator=g)
            xw, yw = x[0].mean(0).numpy(), y[0].mean(0).detach().numpy()
            before, after = fe.log(torch.from_numpy(xw)), fe.log(torch.from_numpy(yw))
            figure(before.numpy(), after.numpy(), fe, style, waves=(xw, yw),
                   path=out / "img" / f"{stem}.png")
            wavs = write_wav(out / "audio" / stem, [xw, yw], clip.sample_rate)
            audio = tuple(str(p.relative_to(out)) for p in wavs)
            note = partner_label
            example = 0
        figures.append(Figure(clip, f"img/{stem}.png",
                              summarise(t.last_params, example), audio, note, what))
    return Entry(name, family_of(name), figures[0].what, figures, show.note)


def frontend_entries(clips: list[Clip], out: Path, style: Style) -> list[Entry]:
    mel_figs, db_figs = [], []
    for clip in clips:
        fe = Frontend(clip.sample_rate)
        what = repr(fe.mel).replace("\n", " ")
        power = fe.power(clip.wave)
        db = ak.AmplitudeToDB(top_db=TOP_DB)(power.view(1, 1, *power.shape))[0, 0]
        w = clip.wave.numpy()
        stem = f"mel-frontend-{clip.key}"
        figure(power.numpy(), power.numpy(), fe, style, waves=(w, w), linear=True,
               before_wave_only=True, titles=("waveform", "power mel (log=None)"),
               path=out / "img" / f"{stem}.png")
        wav = write_wav(out / "audio" / stem, [w], clip.sample_rate)
        mel_figs.append(Figure(clip, f"img/{stem}.png", "deterministic",
                               (str(wav[0].relative_to(out)), ""), what=what))
        stem = f"amplitude-to-db-{clip.key}"
        _two_scales(power.numpy(), db.numpy(), fe, style, out / "img" / f"{stem}.png")
        db_figs.append(Figure(clip, f"img/{stem}.png", "deterministic: a per-example floor "
                              f"{TOP_DB:g} dB under the example's maximum", None))
    return [Entry("MelFrontend", "Frontend", mel_figs[0].what, mel_figs,
                  "Waveform in, power mel out; on a linear colour scale a few loud bins "
                  "dominate, which is why the dB step follows."),
            Entry("AmplitudeToDB", "Frontend", repr(ak.AmplitudeToDB(top_db=TOP_DB)), db_figs,
                  "Power mel in (linear scale, left), decibels out (right).")]


def _two_scales(power: np.ndarray, db: np.ndarray, fe: Frontend, style: Style,
                path: Path) -> None:
    _save(draw_two_scales(power, db, fe, style), path)


def draw_two_scales(power: np.ndarray, db: np.ndarray, fe: Frontend, style: Style):
    """The AmplitudeToDB figure: the power mel and its decibels, each on its own scale."""
    with plt.rc_context(style.rc()):
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(style.width, style.height),
                                     dpi=style.dpi, gridspec_kw=dict(wspace=0.35))
        im0 = _panel(a0, power, fe, 0.0, float(power.max()), "power mel")
        im1 = _panel(a1, db, fe, float(db.max()) - TOP_DB, float(db.max()), "AmplitudeToDB",
                     show_y=False)
        fig.colorbar(im0, ax=a0, pad=0.02).set_label("power")
        fig.colorbar(im1, ax=a1, pad=0.02).set_label("dB")
    _tick_labels(fig, style)
    return fig


def _tick_labels(fig, style: Style) -> None:
    """Tick labels at the page's text size, also those made when the figure is drawn."""
    for ax in fig.axes:
        ax.tick_params(labelsize=style.pt(TEXT_PT))


# --- the page ------------------------------------------------------------------------------

def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def page(entries: list[Entry], clips: list[Clip], seed: int, quick: bool) -> str:
    lines = [
        "# Gallery",
        "",
        "Every random transform applied (with `p=1`) to recordings that ship with the "
        "project, and the frontend steps. Each picture shows the log-mel spectrogram before "
        f"and after on one colour scale ({TOP_DB:g} dB range, 0 dB at the loudest bin of "
        "either), frequency in Hz on a mel axis, time in seconds; waveform steps add their "
        "waveforms underneath. The caption gives the parameters the transform drew "
        "(`last_params` of the example shown). Audio is 16-bit WAV, before and after on one "
        "level scale.",
        "",
        "Clips: " + "; ".join(c.label for c in clips) + ". "
        f"Draws come from a `torch.Generator` seeded with {seed} and the entry's name, so a "
        "picture changes only when its transform does.",
        "",
        "Generated by `python -m docs.gallery` (`make docs`); "
        + ("this is the reduced CI build (`--quick`: one clip, small pictures)."
           if quick else "`--quick` builds the reduced CI version."),
        "",
    ]
    for fam in FAMILIES:
        group = [e for e in entries if e.family == fam]
        if not group:
            continue
        lines += [f"## {fam}", ""]
        for e in group:
            ref = f"[`augkit.{e.name}`][augkit.{e.name}]"
            lines += [f"### {e.name}", "", f"`{e.what}`, see {ref}.", ""]
            if e.note:
                lines += [e.note, ""]
            for f in e.figures:
                alt = f"{e.name} on the {f.clip.key} clip: log-mel before and after"
                cap = (f"<b>{_esc(f.clip.key)}</b>"
                       + (f" (<code>{_esc(f.what)}</code>)" if f.what and f.what != e.what
                          else "")
                       + f": {_esc(f.params)}" + (f"; {_esc(f.note)}" if f.note else ""))
                html = ['<figure class="ak-gallery">',
                        f'<img src="{f.image}" alt="{_esc(alt)}" loading="lazy">',
                        f"<figcaption>{cap}</figcaption>"]
                if f.audio:
                    players = []
                    for tag, src in zip(("before", "after"), f.audio, strict=True):
                        if src:
                            players.append(f'<span>{tag}</span> <audio controls '
                                           f'preload="metadata" src="{src}"></audio>')
                    html.append('<div class="ak-audio">' + " ".join(players) + "</div>")
                elif e.family != "Frontend":  # spectrogram-domain steps
                    html.append('<div class="ak-audio"><em>No audio: a spectrogram-domain '
                                "step; the log-mel on the left is its input.</em></div>")
                html.append("</figure>")
                lines += ["\n".join(html), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m docs.gallery", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (docs/gallery)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="one clip, small pictures (CI)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    out: Path = args.out
    for sub in ("img", "audio"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    style = QUICK if args.quick else FULL
    clips = load_clips(args.quick)

    entries = frontend_entries(clips, out, style)
    for name, cls in random_transforms().items():
        entries.append(random_entry(name, cls, clips, out, style, args.seed))
    missing = set(random_transforms()) - {e.name for e in entries}
    if missing:  # cannot happen unless the loop above is changed; the page must cover all
        raise SystemExit(f"gallery: no entry for {sorted(missing)}")
    (out / "index.md").write_text(page(entries, clips, args.seed, args.quick))
    n_files = sum(1 for _ in out.rglob("*") if _.is_file())
    print(f"gallery: {len(entries)} entries, {len(clips)} clip(s), {n_files} files in {out} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
