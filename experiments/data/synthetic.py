"""A deterministic synthetic 10-genre music set in the GTZAN layout.

The default dataset of the ablation runner, so that it runs with no download.
Each clip is rendered from a small symbolic "song": drums on a 16-step grid
(kick, snare, hi-hat), a chord progression, a bass line and sometimes a lead
line, with genre-specific distributions of tempo, swing, drum pattern, chord
set, comping style, timbre (partial roll-off, decay, brightness, distortion)
and bass style. The distributions overlap on purpose (rock/metal/pop,
blues/jazz, disco/pop, ...), and every clip starts at a random point of its
song, in a random key. So the genres are learnable but not trivially separable.

**The splits are recorded differently** (:data:`CONDITIONS`): clip ``i`` of a
genre is train, val or test by index (:func:`split_of`, 60/20/20), and its
musical content is drawn the same way whatever its split, but training clips
are recorded in a *studio* (flat microphone, dry, quiet, loud), while
validation and test clips are recorded *live*, in venues drawn from one
declared distribution (:data:`LIVE`): each split has :data:`VENUES` venues of
its own (:func:`venue_condition`; validation's and test's are disjoint draws),
each with its microphone colouring, room, noise colour, hum and channel band
limit, and each clip adds its own level, SNR, tempo and tuning. A model trained
on the studio split alone meets EQ, band limits, reverberation, noise and
level it never saw, which is what filter, reverb, noise and gain augmentation
are for; masking addresses none of them in particular. Because validation and
test are drawn from the same distribution of venues, what is chosen on
validation is a fair guess for test without being fitted to its venues. The
generator writes a manifest (:data:`MANIFEST`, ``path,label,split,condition``,
the condition naming the venue) beside the tree.

Clips are seeded from ``(seed, genre index, clip index)`` (the recording from
its own stream) and written as 16-bit PCM WAV, so the same arguments give
byte-identical files on any machine with the same numpy. Example::

    >>> from experiments.data.synthetic import generate_synthetic_gtzan
    >>> folder = generate_synthetic_gtzan("data/synthetic", n_per_class=2, seconds=1.0,
    ...                                   progress=False)  # doctest: +SKIP
    >>> sorted(p.name for p in (folder / "jazz").iterdir())  # doctest: +SKIP
    ['jazz.00000.wav', 'jazz.00001.wav']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal
import soundfile as sf
from tqdm.auto import tqdm

__all__ = ["CONDITIONS", "GENRES", "GENERATOR_VERSION", "LIVE", "MANIFEST", "VENUES",
           "Condition", "generate_synthetic_gtzan", "render_clip", "split_of",
           "venue_condition", "venue_of"]

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")

#: Bump when the rendered audio changes, so that old trees are regenerated.
GENERATOR_VERSION = 3

#: The manifest written beside ``genres_original``: ``path,label,split,condition``.
MANIFEST = "synthetic.csv"

_TABLE = 2048  # wavetable size (power of two)
_ENV_HOP = 8  # envelope control rate: every 8 samples


def _pattern(s: str) -> np.ndarray:
    """16-step hit probabilities from a string: ``.`` = 0.02, digit ``d`` = 0.1 d + 0.05."""
    assert len(s) == 16, s
    return np.array([0.02 if c == "." else 0.1 * int(c) + 0.05 for c in s])


# Chord qualities: semitones above the root.
_QUALITY = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10), "5": (0, 7, 12), "sus4": (0, 5, 7), "dim": (0, 3, 6),
}

# Comping styles: (hit pattern, note length in 16th steps or 0 = until the chord
# changes, one voice (arpeggio) or all chord tones, staccato factor on the decay).
_COMP = {
    "pad": ("9...............", 0, False, 3.0),
    "strum": ("9...4...8...4.2.", 4, False, 1.0),
    "boomchick": ("....9.......9...", 3, False, 0.6),
    "skank": ("....9.......9...", 1, False, 0.25),
    "offbeat": ("..9...9...9...9.", 1, False, 0.35),
    "stab": ("..6...5..4.6...4", 1, False, 0.5),
    "comp": ("7.....5...3..4..", 3, False, 0.8),
    "eighths": ("9.8.8.8.9.8.8.8.", 2, False, 0.7),
    "chug": ("9898989898989898", 1, False, 0.3),
    "arp8": ("9.9.9.9.9.9.9.9.", 2, True, 1.0),
    "arp16": ("9999999999999999", 1, True, 0.7),
}

_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
    "blues": (0, 3, 5, 6, 7, 10), "penta": (0, 2, 4, 7, 9), "dorian": (0, 2, 3, 5, 7, 9, 10),
}


@dataclass(frozen=True)
class _Style:
    """Distributions that define one genre (ranges are sampled uniformly per clip)."""

    tempo: tuple[float, float]
    swing: tuple[float, float]  # delay of the off-beat 8th, fraction of a 16th step
    kick: str
    snare: str
    hat: str
    hat_decay: tuple[float, float]  # s; long = open hat / ride
    kick_decay: tuple[float, float]  # s; long = 808
    snare_tone: tuple[float, float]  # 0 = brushes/noise only, 1 = tonal crack
    drums: tuple[float, float]  # drum level relative to the tonal parts
    progressions: tuple[tuple[tuple[int, str], ...], ...]
    bars_per_chord: tuple[float, ...]
    comp: tuple[tuple[str, float], ...]  # comping styles and their weights
    alpha: tuple[float, float]  # partial weights k ** -alpha (small = bright, buzzy)
    odd: tuple[float, float]  # attenuation of even partials (1 = square-like)
    decay: tuple[float, float]  # s, note decay time
    attack: tuple[float, float]  # s
    cutoff: tuple[float, float]  # Hz, low-pass on the tonal parts (brightness)
    drive: tuple[float, float]  # tanh distortion on the chords
    vibrato: tuple[float, float]  # relative depth
    bass: tuple[tuple[str, float], ...]
    bass_level: tuple[float, float]
    lead: float  # probability of a lead line
    scale: str
    octave: int  # MIDI note of the chord register's lowest root


_I, _IV, _V = (0, "maj"), (5, "maj"), (7, "maj")
_STYLES: dict[str, _Style] = {
    "blues": _Style(
        tempo=(68, 110), swing=(0.35, 0.65),
        kick="9.......8.....3.", snare="....9.......9...", hat="9.7.9.7.9.7.9.7.",
        hat_decay=(0.04, 0.2), kick_decay=(0.1, 0.2), snare_tone=(0.3, 0.8), drums=(0.4, 0.9),
        progressions=(((0, "7"), (0, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"),
                       (0, "7"), (7, "7"), (5, "7"), (0, "7"), (7, "7")),
                      ((0, "7"), (5, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"),
                       (0, "7"), (7, "7"), (5, "7"), (0, "7"), (7, "7"))),
        bars_per_chord=(1.0,), comp=(("strum", 0.4), ("comp", 0.3), ("boomchick", 0.3)),
        alpha=(1.0, 1.8), odd=(0.0, 0.3), decay=(0.3, 0.9), attack=(0.003, 0.01),
        cutoff=(1500, 4000), drive=(0.0, 3.0), vibrato=(0.0, 0.004),
        bass=(("walk", 0.6), ("rootfifth", 0.4)), bass_level=(0.5, 0.9), lead=0.5,
        scale="blues", octave=52),
    "classical": _Style(
        tempo=(55, 110), swing=(0.0, 0.05),
        kick="................", snare="................", hat="................",
        hat_decay=(0.05, 0.1), kick_decay=(0.2, 0.4), snare_tone=(0.5, 0.5), drums=(0.0, 0.0),
        progressions=((_I, _IV, _V, _I), (_I, (9, "min"), _IV, _V),
                      ((0, "min"), (5, "min"), (7, "maj"), (0, "min")),
                      (_I, _V, (9, "min"), (4, "min"), _IV, _I, _IV, _V),
                      ((2, "min"), _V, _I, (0, "maj7"))),
        bars_per_chord=(0.5, 1.0), comp=(("pad", 0.5), ("arp8", 0.3), ("arp16", 0.2)),
        alpha=(1.2, 2.2), odd=(0.0, 0.5), decay=(0.8, 3.0), attack=(0.02, 0.15),
        cutoff=(1200, 3500), drive=(0.0, 0.0), vibrato=(0.002, 0.008),
        bass=(("sustain", 0.7), ("rootfifth", 0.3)), bass_level=(0.3, 0.7), lead=0.6,
        scale="major", octave=55),
    "country": _Style(
        tempo=(95, 140), swing=(0.0, 0.2),
        kick="9.......8.......", snare="....9.......9...", hat="8.6.8.6.8.6.8.6.",
        hat_decay=(0.02, 0.06), kick_decay=(0.08, 0.16), snare_tone=(0.4, 0.9), drums=(0.4, 0.9),
        progressions=((_I, _IV, _I, _V), (_I, _V, _IV, _I), (_I, _I, _IV, _V),
                      (_I, (9, "min"), _IV, _V)),
        bars_per_chord=(1.0, 2.0), comp=(("boomchick", 0.5), ("strum", 0.3), ("arp8", 0.2)),
        alpha=(0.8, 1.5), odd=(0.0, 0.2), decay=(0.2, 0.6), attack=(0.002, 0.006),
        cutoff=(2500, 6000), drive=(0.0, 1.0), vibrato=(0.0, 0.003),
        bass=(("rootfifth", 0.8), ("follow", 0.2)), bass_level=(0.5, 0.9), lead=0.4,
        scale="major", octave=55),
    "disco": _Style(
        tempo=(108, 132), swing=(0.0, 0.1),
        kick="9...9...9...9...", snare="....8.......8...", hat="..9...9...9...9.",
        hat_decay=(0.08, 0.25), kick_decay=(0.1, 0.2), snare_tone=(0.5, 1.0), drums=(0.7, 1.2),
        progressions=(((0, "min7"), (5, "min7")), ((0, "maj7"), (2, "min7")),
                      ((9, "min7"), (2, "min7"), (7, "7"), (0, "maj7")),
                      ((0, "min7"), (3, "maj7"), (5, "min7"), (7, "min7"))),
        bars_per_chord=(1.0, 2.0), comp=(("offbeat", 0.4), ("stab", 0.4), ("pad", 0.2)),
        alpha=(0.8, 1.4), odd=(0.0, 0.3), decay=(0.15, 0.5), attack=(0.002, 0.01),
        cutoff=(3000, 7000), drive=(0.0, 1.0), vibrato=(0.0, 0.003),
        bass=(("octave", 0.8), ("follow", 0.2)), bass_level=(0.7, 1.1), lead=0.3,
        scale="dorian", octave=57),
    "hiphop": _Style(
        tempo=(78, 100), swing=(0.1, 0.5),
        kick="9..4..5.3.7..3..", snare="....9.......9...", hat="8585858585858585",
        hat_decay=(0.02, 0.05), kick_decay=(0.25, 0.6), snare_tone=(0.4, 1.0), drums=(0.9, 1.5),
        progressions=(((0, "min7"), (8, "maj7")), ((0, "min"), (5, "min")),
                      ((0, "min7"), (10, "maj"), (8, "maj7"), (7, "min"))),
        bars_per_chord=(1.0, 2.0), comp=(("pad", 0.5), ("stab", 0.3), ("arp8", 0.2)),
        alpha=(1.6, 2.8), odd=(0.0, 0.5), decay=(0.4, 1.5), attack=(0.005, 0.05),
        cutoff=(800, 2500), drive=(0.0, 1.5), vibrato=(0.0, 0.002),
        bass=(("follow", 0.8), ("sustain", 0.2)), bass_level=(0.8, 1.3), lead=0.2,
        scale="minor", octave=53),
    "jazz": _Style(
        tempo=(90, 200), swing=(0.45, 0.75),
        kick="3.......2.......", snare="......3....3..3.", hat="9...9.79...9.79.",
        hat_decay=(0.15, 0.4), kick_decay=(0.08, 0.15), snare_tone=(0.0, 0.4), drums=(0.3, 0.7),
        progressions=(((2, "min7"), (7, "7"), (0, "maj7"), (0, "maj7")),
                      ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "7")),
                      ((4, "min7"), (9, "7"), (2, "min7"), (7, "7")),
                      ((2, "min7"), (7, "7"), (4, "min7"), (9, "7"))),
        bars_per_chord=(0.5, 1.0), comp=(("comp", 0.6), ("pad", 0.2), ("stab", 0.2)),
        alpha=(1.5, 2.5), odd=(0.0, 0.3), decay=(0.3, 1.0), attack=(0.003, 0.02),
        cutoff=(1200, 3500), drive=(0.0, 0.5), vibrato=(0.0, 0.004),
        bass=(("walk", 0.9), ("sustain", 0.1)), bass_level=(0.6, 1.0), lead=0.6,
        scale="dorian", octave=53),
    "metal": _Style(
        tempo=(130, 200), swing=(0.0, 0.05),
        kick="9898989898989898", snare="....9.......9...", hat="9.8.9.8.9.8.9.8.",
        hat_decay=(0.05, 0.3), kick_decay=(0.05, 0.1), snare_tone=(0.6, 1.0), drums=(0.7, 1.2),
        progressions=(((0, "5"), (8, "5"), (10, "5"), (0, "5")),
                      ((0, "5"), (1, "5"), (0, "5"), (10, "5")),
                      ((0, "5"), (0, "5"), (3, "5"), (1, "5")),
                      ((0, "5"), (5, "5"), (6, "5"), (5, "5"))),
        bars_per_chord=(0.5, 1.0), comp=(("chug", 0.6), ("eighths", 0.3), ("pad", 0.1)),
        alpha=(0.7, 1.3), odd=(0.0, 0.4), decay=(0.2, 0.8), attack=(0.002, 0.006),
        cutoff=(2500, 6000), drive=(6.0, 20.0), vibrato=(0.0, 0.002),
        bass=(("follow", 0.7), ("octave", 0.3)), bass_level=(0.5, 0.9), lead=0.3,
        scale="minor", octave=40),
    "pop": _Style(
        tempo=(95, 130), swing=(0.0, 0.15),
        kick="9.....3.8...3...", snare="....9.......9...", hat="8.5.8.5.8.5.8.5.",
        hat_decay=(0.03, 0.1), kick_decay=(0.1, 0.25), snare_tone=(0.5, 1.0), drums=(0.6, 1.1),
        progressions=((_I, _V, (9, "min"), _IV), ((9, "min"), _IV, _I, _V),
                      (_I, (9, "min"), _IV, _V), (_IV, _I, _V, (0, "sus4"))),
        bars_per_chord=(1.0,), comp=(("pad", 0.3), ("strum", 0.3), ("arp8", 0.2),
                                     ("offbeat", 0.2)),
        alpha=(0.9, 1.8), odd=(0.0, 0.4), decay=(0.3, 1.2), attack=(0.003, 0.03),
        cutoff=(2000, 6000), drive=(0.0, 2.0), vibrato=(0.0, 0.005),
        bass=(("follow", 0.6), ("octave", 0.2), ("sustain", 0.2)), bass_level=(0.6, 1.0),
        lead=0.6, scale="major", octave=57),
    "reggae": _Style(
        tempo=(65, 95), swing=(0.1, 0.4),
        kick="........9.......", snare="........9.......", hat="7.5.7.5.7.5.7.5.",
        hat_decay=(0.02, 0.08), kick_decay=(0.15, 0.3), snare_tone=(0.3, 0.8), drums=(0.5, 1.0),
        progressions=((_I, _IV), ((0, "min"), (5, "min")), (_I, _V, _IV, _V),
                      ((2, "min"), _V)),
        bars_per_chord=(1.0, 2.0), comp=(("skank", 0.5), ("offbeat", 0.4), ("pad", 0.1)),
        alpha=(1.0, 2.0), odd=(0.0, 0.5), decay=(0.1, 0.4), attack=(0.002, 0.008),
        cutoff=(1500, 4500), drive=(0.0, 1.0), vibrato=(0.0, 0.003),
        bass=(("follow", 0.3), ("reggae", 0.7)), bass_level=(0.9, 1.4), lead=0.3,
        scale="major", octave=57),
    "rock": _Style(
        tempo=(105, 160), swing=(0.0, 0.1),
        kick="9.....3.8.4.....", snare="....9.......9...", hat="9.8.9.8.9.8.9.8.",
        hat_decay=(0.03, 0.2), kick_decay=(0.08, 0.18), snare_tone=(0.5, 1.0), drums=(0.6, 1.2),
        progressions=(((0, "5"), (5, "5"), (7, "5"), (5, "5")), (_I, (10, "maj"), _IV, _I),
                      ((0, "5"), (8, "5"), (10, "5"), (0, "5")), (_I, _IV, _V, _IV)),
        bars_per_chord=(0.5, 1.0), comp=(("eighths", 0.5), ("strum", 0.3), ("chug", 0.2)),
        alpha=(0.8, 1.5), odd=(0.0, 0.3), decay=(0.3, 1.0), attack=(0.002, 0.008),
        cutoff=(2000, 5000), drive=(2.0, 9.0), vibrato=(0.0, 0.003),
        bass=(("follow", 0.5), ("eighths", 0.5)), bass_level=(0.5, 0.9), lead=0.4,
        scale="minor", octave=45),
}


# ---------------------------------------------------------------------------
# Synthesis helpers (vectorised over samples; Python loops only over notes/hits)


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _choose(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*options, strict=True)
    w = np.asarray(weights, dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _midi_hz(m: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _wavetable(alpha: float, odd: float, k_max: int) -> np.ndarray:
    """One period of a band-limited tone with partial weights ``k ** -alpha``.

    Returns:
        Array of shape ``(_TABLE,)``, float32, with peak 1.
    """
    k = np.arange(1, max(1, k_max) + 1)
    spec = np.zeros(_TABLE // 2 + 1, np.complex128)
    spec[k] = -0.5j * _TABLE * k ** -alpha * np.where(k % 2 == 0, 1.0 - odd, 1.0)
    table = np.fft.irfft(spec, _TABLE)  # sum_k w_k sin(2 pi k n / N)
    return (table / np.abs(table).max()).astype(np.float32)


@dataclass
class _Voice:
    """Monophonic note list: starts/ends in samples, MIDI pitch, velocity."""

    starts: list[int]
    ends: list[int]
    pitches: list[float]
    vels: list[float]


def _new_voice() -> _Voice:
    return _Voice([], [], [], [])


def _render_voice(v: _Voice, n: int, sr: int, alpha: float, odd: float, attack: float,
                  decay: float, vibrato: float, rng: np.random.Generator) -> np.ndarray:
    """Render a monophonic voice with a wavetable oscillator and AD(R) envelope.

    A note lasts until its end or the next note's start, whichever is first. The
    envelope is computed every ``_ENV_HOP`` samples and interpolated linearly.

    Returns:
        Array of shape ``(n,)``, float32.
    """
    starts = np.asarray(v.starts, np.int64)
    keep = (starts >= 0) & (starts < n)
    if not keep.any():
        return np.zeros(n, np.float32)
    order = np.argsort(starts[keep], kind="stable")
    starts = starts[keep][order]
    ends = np.asarray(v.ends, np.int64)[keep][order]
    hz = _midi_hz(np.asarray(v.pitches)[keep][order])
    vels = np.asarray(v.vels, np.float64)[keep][order]
    # A later note on the same start replaces the earlier one.
    last = np.r_[starts[1:] != starts[:-1], True]
    starts, ends, hz, vels = starts[last], ends[last], hz[last], vels[last]
    bounds = np.r_[starts[1:], n]
    ends = np.minimum(ends, bounds)

    # Oscillator: per-sample phase in cycles, restarting at 0 on each note
    # (float32 is exact enough: < 1e-3 cycles of error on a 6 s note).
    lens = bounds - starts
    m = n - starts[0]
    step = np.repeat((hz / sr).astype(np.float32), lens)  # cycles per sample
    local = np.arange(m, dtype=np.float32) - np.repeat(
        (starts - starts[0]).astype(np.float32), lens)
    cycles = local * step
    if vibrato > 0:
        rate = rng.uniform(4.5, 6.5) / sr
        t = np.arange(starts[0], n, dtype=np.float32)
        cycles += step * np.float32(vibrato / (2 * np.pi * rate)) * np.sin(
            np.float32(2 * np.pi * rate) * t)
        cycles = np.abs(cycles)
    cycles -= cycles.astype(np.int32)
    k_max = int(0.45 * sr / hz.max())
    table = _wavetable(alpha, odd, min(k_max, 30))
    wave = table[(cycles * np.float32(_TABLE)).astype(np.int32) & (_TABLE - 1)]

    # Envelope on a coarse grid: attack, exponential decay, 30 ms release.
    tb = np.arange(starts[0], n + _ENV_HOP, _ENV_HOP)
    i = np.searchsorted(starts, tb, side="right") - 1
    age = (tb - starts[i]) / sr
    release = np.maximum(tb - ends[i], 0) / sr
    env_b = (vels[i] * (1.0 - np.exp(-age / attack)) * np.exp(-age / decay)
             * np.exp(-release / 0.03)).astype(np.float32)
    frac = np.arange(_ENV_HOP, dtype=np.float32) / _ENV_HOP
    env = (env_b[:-1, None] + (env_b[1:] - env_b[:-1])[:, None] * frac).reshape(-1)
    out = np.zeros(n, np.float32)
    out[starts[0]:] = wave * env[: n - starts[0]]
    return out


def _drum_hit(kind: str, sr: int, rng: np.random.Generator, decay: float,
              tone: float) -> np.ndarray:
    """One-shot drum sample ``(m,)``: kick (pitch sweep), snare (noise + tone) or hat."""
    if kind == "kick":
        m = int(sr * min(4 * decay, 1.0))
        t = np.arange(m) / sr
        f_end, f_start = rng.uniform(42, 62), rng.uniform(110, 200)
        f = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.015, 0.04))
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / decay)
        x[: int(0.002 * sr)] += rng.uniform(0.0, 0.5)  # beater click
        return x
    if kind == "snare":
        d = rng.uniform(0.06, 0.18) * (1.5 - tone)
        m = int(sr * 4 * d)
        t = np.arange(m) / sr
        noise = np.diff(rng.standard_normal(m + 1)) * 0.7
        body = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * np.exp(-t / 0.04)
        return (noise * np.exp(-t / d) + tone * body).astype(np.float64)
    # hat: twice-differenced noise (high-pass) plus a few inharmonic metallic partials
    m = int(sr * min(4 * decay, 1.0))
    t = np.arange(m) / sr
    noise = np.diff(rng.standard_normal(m + 2), n=2) * 0.5
    partials = rng.uniform(0.25, 0.45, size=4) * sr
    metal = np.sin(2 * np.pi * partials[:, None] * t[None, :]).sum(0) * 0.15
    return (noise + metal) * np.exp(-t / decay)


def _shelf(freqs: np.ndarray, fc: float, gain_db: float, high: bool) -> np.ndarray:
    """Smooth shelf in dB over ``freqs``: ``gain_db`` above (high) or below ``fc``."""
    octaves = np.log2(np.maximum(freqs, 1.0) / fc)
    s = 1.0 / (1.0 + np.exp(-2.5 * octaves))
    return gain_db * (s if high else 1.0 - s)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


# ---------------------------------------------------------------------------
# Recording conditions: what differs between the splits


@dataclass(frozen=True)
class Condition:
    """How one split was recorded (ranges are sampled uniformly per clip).

    Every field is a nuisance: it changes the sound, never the genre.
    """

    name: str
    #: Microphone / desk colouring: tilt in dB per octave around 1 kHz, a low shelf
    #: (corner Hz, gain dB), a high shelf (corner Hz, gain dB) and a presence bell
    #: (centre Hz, gain dB, one octave wide).
    tilt_db: tuple[float, float]
    low_shelf_hz: tuple[float, float]
    low_shelf_db: tuple[float, float]
    high_shelf_hz: tuple[float, float]
    high_shelf_db: tuple[float, float]
    bell_hz: tuple[float, float]
    bell_db: tuple[float, float]
    #: Room: reverberation time (s; 0 = dry) and direct-to-reverberant ratio (dB).
    rt60: tuple[float, float]
    drr_db: tuple[float, float]
    #: Background noise: spectral slope (0 white, 1 pink, 2 brown), SNR (dB) and
    #: mains hum (dB relative to the noise; ``None``: none).
    noise_colour: tuple[float, float]
    snr_db: tuple[float, float]
    hum_db: tuple[float, float] | None
    #: Recording level: peak in dBFS.
    peak_dbfs: tuple[float, float]
    #: Performance: tempo and tuning differ from the score by up to these amounts.
    tempo_pct: float
    detune_cents: float
    #: The channel's band limit on the whole recording (music and noise): high-pass and
    #: low-pass corners in Hz, order-4 Butterworth magnitudes (0: none).
    highpass_hz: tuple[float, float] = (0.0, 0.0)
    lowpass_hz: tuple[float, float] = (0.0, 0.0)


#: The studio where the training split is recorded: close microphones, nearly flat
#: EQ, dry, quiet (35..50 dB SNR, white-ish noise), mastered loud (-6..0 dBFS), in
#: tune and in time, full band.
STUDIO = Condition(
    name="studio", tilt_db=(-1.0, 1.0), low_shelf_hz=(80, 300), low_shelf_db=(-2, 2),
    high_shelf_hz=(2000, 5000), high_shelf_db=(-2, 2), bell_hz=(1000, 4000),
    bell_db=(0, 0), rt60=(0.0, 0.0), drr_db=(0, 0), noise_colour=(0.0, 0.5),
    snr_db=(35, 50), hum_db=None, peak_dbfs=(-6, 0), tempo_pct=0.0, detune_cents=0.0)

#: The declared distribution of live venues, from which validation's and test's venues
#: are drawn (:func:`venue_condition`): any microphone colouring (tilt, shelves, a
#: presence or notch bell), a room of RT60 0.3..1.2 s, noise of any colour at 5..25 dB
#: SNR (per clip) with mains hum in half the venues, a channel band limit (high-pass
#: 40..300 Hz, low-pass 2.5..7.5 kHz: from telephone-like to nearly full band),
#: recorded at -30..-6 dBFS (per clip), tempo +-4 %, tuning +-30 cents.
LIVE = Condition(
    name="live", tilt_db=(-2.0, 2.0), low_shelf_hz=(80, 350), low_shelf_db=(-8, 6),
    high_shelf_hz=(1500, 5000), high_shelf_db=(-9, 6), bell_hz=(300, 4000),
    bell_db=(-6, 6), rt60=(0.3, 1.2), drr_db=(0, 10), noise_colour=(0.0, 2.0),
    snr_db=(5, 25), hum_db=(-12, -3), peak_dbfs=(-30, -6), tempo_pct=4.0,
    detune_cents=30.0, highpass_hz=(40, 300), lowpass_hz=(2500, 7500))

#: Venues per evaluated split: clip ``i`` of a genre is in venue ``i % VENUES`` of its
#: split (:func:`venue_of`).
VENUES = 6

#: The recording conditions of each split: the studio for ``train``, the live
#: distribution for ``val`` and ``test`` (each split's clips in its own venues drawn
#: from it). The musical content (genre styles, tempo and key distributions) is the
#: same in all three; only the recording differs.
CONDITIONS: dict[str, Condition] = {"train": STUDIO, "val": LIVE, "test": LIVE}

#: Fields a venue fixes (one value per venue); the others vary per clip within LIVE.
_VENUE_FIELDS = ("tilt_db", "low_shelf_hz", "low_shelf_db", "high_shelf_hz", "high_shelf_db",
                 "bell_hz", "bell_db", "rt60", "drr_db", "noise_colour", "highpass_hz",
                 "lowpass_hz")


def venue_of(clip: int) -> int:
    """The venue (``0 .. VENUES - 1``) of clip ``clip`` of a genre in an evaluated split."""
    return int(clip) % VENUES


def venue_condition(seed: int, split: str, venue: int) -> Condition:
    """Venue ``venue`` of ``split`` (``"val"`` or ``"test"``): a point of :data:`LIVE`.

    Each venue-level field (:data:`_VENUE_FIELDS`) is drawn once, uniformly in its
    LIVE range, from a stream seeded by ``(seed, split, venue)``, so validation's
    and test's venues are disjoint draws; hum is on in about half the venues. The
    clip-level fields (SNR, level, tempo, tuning) keep their LIVE ranges.
    """
    if split not in ("val", "test"):
        raise ValueError(f"venues are for the evaluated splits 'val' and 'test', got {split!r}")
    rng = np.random.default_rng([int(seed), 7919, ("val", "test").index(split), int(venue)])
    point = {f: (v, v) for f in _VENUE_FIELDS for v in [_u(rng, getattr(LIVE, f))]}
    hum = (lambda v: (v, v))(_u(rng, LIVE.hum_db)) if rng.random() < 0.5 else None
    return dataclasses.replace(LIVE, name=f"live-{split}-{venue}", hum_db=hum, **point)


def condition_of(seed: int, split: str, clip: int) -> Condition:
    """The recording conditions of clip ``clip`` of a genre in ``split``."""
    if split not in CONDITIONS:
        raise ValueError(f"unknown condition {split!r}; expected one of {tuple(CONDITIONS)}")
    return CONDITIONS[split] if split == "train" else venue_condition(seed, split,
                                                                      venue_of(clip))


def _band_limit_db(freqs: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """The channel's band limit in dB at ``freqs`` (order-4 Butterworth magnitudes)."""
    out = np.zeros_like(freqs, dtype=np.float64)
    hp, lp = _u(rng, cond.highpass_hz), _u(rng, cond.lowpass_hz)
    f = np.maximum(freqs.astype(np.float64), 1e-3)
    if hp > 0:
        out -= 10.0 * np.log10(1.0 + (hp / f) ** 8)
    if lp > 0:
        out -= 10.0 * np.log10(1.0 + (f / lp) ** 8)
    return out


def split_of(clip: int, n_per_class: int) -> str:
    """The split of clip ``clip`` of a genre with ``n_per_class`` clips: 60/20/20 by index.

    The first ``round(0.6 n)`` clips are ``"train"``, the next ``round(0.2 n)``
    ``"val"`` (at least one each when ``n >= 3``), the rest ``"test"``.
    """
    n = int(n_per_class)
    n_train = max(1, int(round(0.6 * n)))
    n_val = max(1 if n >= 3 else 0, int(round(0.2 * n)))
    if n >= 3:
        n_train = min(n_train, n - 2)
    return "train" if clip < n_train else "val" if clip < n_train + n_val else "test"


def _mic_db(freqs: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """The microphone's colouring in dB at ``freqs``."""
    octaves = np.log2(np.maximum(freqs, 20.0) / _u(rng, cond.bell_hz))
    bell = _u(rng, cond.bell_db) * np.exp(-0.5 * (octaves / 0.5) ** 2)
    return (_u(rng, cond.tilt_db) * np.log2(np.maximum(freqs, 20.0) / 1000.0)
            + _shelf(freqs, _u(rng, cond.low_shelf_hz), _u(rng, cond.low_shelf_db), high=False)
            + _shelf(freqs, _u(rng, cond.high_shelf_hz), _u(rng, cond.high_shelf_db), high=True)
            + bell)


def _room(x: np.ndarray, sr: int, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """``x`` in a room: exponentially decaying noise tail of ``rt60``, at ``drr_db``."""
    rt60 = _u(rng, cond.rt60)
    if rt60 <= 0:
        return x
    n_ir = int(rt60 * sr)
    t = np.arange(n_ir) / sr
    tail = rng.standard_normal(n_ir) * 10.0 ** (-3.0 * t / rt60)  # -60 dB at rt60
    tail *= np.minimum(1.0, t / 0.005)  # 5 ms onset after the direct sound
    # Air absorbs the highs faster: a one-pole low-pass darkens the tail.
    tail = scipy.signal.lfilter([0.35], [1.0, -0.65], tail)
    tail *= 10.0 ** (-_u(rng, cond.drr_db) / 20.0) / np.sqrt(np.sum(tail ** 2))
    ir = np.zeros(n_ir)
    ir[0] = 1.0
    ir += tail
    y = scipy.signal.fftconvolve(x, ir)[: len(x)]
    return y * (_rms(x) / _rms(y))


@dataclass
class _Song:
    """A clip's timeline: the 16th-note grid, its onsets, and the chord of each step."""

    n: int  # samples rendered (the clip plus the offset into the song)
    n_steps: int
    onset: np.ndarray  # (n_steps,) sample of each 16th, swung and humanised
    bar_pos: np.ndarray  # (n_steps,) position in the bar, 0..15
    n_bars: int
    root_base: float  # MIDI root of the chord register (key and tuning applied)
    prog: tuple[tuple[int, str], ...]
    steps_per_chord: int
    chord_of_step: np.ndarray  # (n_steps,) index into prog


def _song(st: _Style, rng: np.random.Generator, n_out: int, sr: int, tempo_factor: float,
          detune: float) -> tuple[_Song, int]:
    """The song structure of a clip of ``n_out`` samples, and its offset into the song."""
    bpm = _u(rng, st.tempo) * tempo_factor
    step = 60.0 / bpm / 4.0 * sr  # samples per 16th
    offset = int(rng.uniform(0, 16) * step)  # start somewhere inside the first bar
    n = n_out + offset
    n_steps = int(np.ceil(n / step)) + 1
    swing = _u(rng, st.swing)
    step_idx = np.arange(n_steps)
    # Off-beat 8ths (steps 2, 6, 10, 14) are delayed by `swing` of a 16th; the
    # 16ths on either side follow halfway, like a loose human shuffle.
    delay = np.select([step_idx % 4 == 2, step_idx % 2 == 1], [swing, swing / 2], 0.0)
    humanize = rng.normal(0.0, 0.004 * sr, n_steps)
    onset = np.round((step_idx + delay) * step + humanize).astype(np.int64)
    onset[0] = 0
    key = int(rng.integers(0, 12))
    root_base = st.octave + (key if key < 6 else key - 12) + detune
    prog = st.progressions[int(rng.integers(len(st.progressions)))]
    bars_per_chord = float(rng.choice(st.bars_per_chord))
    steps_per_chord = max(1, int(round(16 * bars_per_chord)))
    first = int(rng.integers(len(prog)))
    chord_of_step = (first + step_idx // steps_per_chord) % len(prog)
    return _Song(n, n_steps, onset, step_idx % 16, n_steps // 16 + 1, root_base, prog,
                 steps_per_chord, chord_of_step), offset


def _drums(st: _Style, rng: np.random.Generator, song: _Song, sr: int
           ) -> tuple[np.ndarray, float, np.ndarray]:
    """``(drums (n,), drum level, kick hit per step)``: kick, snare and hi-hat on the grid."""
    drums = np.zeros(song.n + sr, np.float64)
    drum_level = _u(rng, st.drums)
    kick_hits = np.zeros(song.n_steps, bool)
    if drum_level <= 0:
        return drums[:song.n], drum_level, kick_hits
    for kind, pat, dec in (("kick", st.kick, _u(rng, st.kick_decay)),
                           ("snare", st.snare, 0.0), ("hat", st.hat, _u(rng, st.hat_decay))):
        p = np.clip(_pattern(pat) + rng.normal(0, 0.08, 16), 0, 1)  # per-clip variation
        base = rng.random(16) < p
        flips = rng.random((song.n_bars, 16)) < 0.06  # per-bar fills / drops
        hits = (base[None, :] ^ flips).reshape(-1)[:song.n_steps]
        if kind == "kick":
            kick_hits = hits
        sample = _drum_hit(kind, sr, rng, dec, _u(rng, st.snare_tone))
        vel = rng.uniform(0.6, 1.0, song.n_steps) * np.where(song.bar_pos % 4 == 0, 1.0, 0.8)
        lvl = {"kick": 1.0, "snare": 0.7, "hat": rng.uniform(0.15, 0.4)}[kind]
        for s in np.flatnonzero(hits):
            a = song.onset[s]
            drums[a: a + len(sample)] += lvl * vel[s] * sample[: len(drums) - a]
    return drums[:song.n], drum_level, kick_hits


def _chord_notes(song: _Song, rng: np.random.Generator, hits: np.ndarray, length: int,
                 arpeggio: bool, strum_gap: float) -> list[_Voice]:
    """Four voices playing the chord of each hit step (or one voice arpeggiating it)."""
    voices = [_new_voice() for _ in range(4)]
    arp_i = 0
    for s in np.flatnonzero(hits):
        deg, quality = song.prog[song.chord_of_step[s]]
        tones = song.root_base + deg + np.asarray(_QUALITY[quality])
        tones = np.sort(np.where(tones > song.root_base + 14, tones - 12, tones))  # compact
        if length == 0:
            nxt = np.flatnonzero(hits[s + 1:])
            end = song.onset[min(s + 1 + nxt[0], song.n_steps - 1)] if len(nxt) else song.n
        else:
            end = song.onset[min(s + length, song.n_steps - 1)]
        vel = rng.uniform(0.6, 1.0)
        if arpeggio:
            pitches = [tones[arp_i % len(tones)] + 12 * ((arp_i // len(tones)) % 2)]
            arp_i += 1
        else:
            pitches = np.r_[tones, tones[0] + 12][:4] if len(tones) < 4 else tones[:4]
        for j, pitch in enumerate(pitches):
            voices[j].starts.append(int(song.onset[s] + j * strum_gap))
            voices[j].ends.append(int(end))
            voices[j].pitches.append(float(pitch))
            voices[j].vels.append(vel)
    return voices


def _chords(st: _Style, rng: np.random.Generator, song: _Song, sr: int
            ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """``(chords (n,), chord changes per step, (attack, decay, vibrato))``."""
    comp = _choose(rng, st.comp)
    pat, length, arpeggio, stacc = _COMP[comp]
    p = np.clip(_pattern(pat) + rng.normal(0, 0.1, 16), 0, 1)
    base = rng.random(16) < p
    hits = (base[None, :] ^ (rng.random((song.n_bars, 16)) < 0.05)).reshape(-1)[:song.n_steps]
    changes = np.r_[True, song.chord_of_step[1:] != song.chord_of_step[:-1]]
    if comp == "pad":
        hits = changes.copy()
    elif comp in ("strum", "eighths", "chug", "comp"):
        hits |= changes & (rng.random(song.n_steps) < 0.7)
    alpha, odd = _u(rng, st.alpha), _u(rng, st.odd)
    decay, attack = _u(rng, st.decay) * stacc, _u(rng, st.attack)
    if comp == "pad":
        attack = max(attack, rng.uniform(0.03, 0.2))
    vibrato = _u(rng, st.vibrato)
    strum_gap = rng.uniform(0.0, 0.015) * sr if comp in ("strum", "boomchick") else 0.0
    voices = _chord_notes(song, rng, hits, length, arpeggio, strum_gap)
    chords = sum(_render_voice(v, song.n, sr, alpha, odd, attack, decay, vibrato, rng)
                 for v in voices)
    drive = _u(rng, st.drive)
    if drive > 0.5:
        chords = np.tanh(drive * chords / (np.abs(chords).max() + 1e-9)) / np.tanh(drive)
    return chords, changes, (attack, decay, vibrato)


def _walk(song: _Song, rng: np.random.Generator, s: int, root: float, low: float,
          tones: np.ndarray, scale: np.ndarray) -> float:
    """A walking bass's note on beat ``bar_pos // 4``: root, passing tones, a lead-in."""
    beat = song.bar_pos[s] // 4
    if beat == 0:
        return root
    if beat == 3:  # a semitone from the next chord's root
        pitch = low + song.prog[song.chord_of_step[min(s + 4, song.n_steps - 1)]][0] + \
            rng.choice([-1, 1])
        while pitch > 53:
            pitch -= 12
        return pitch
    return root + int(rng.choice(np.r_[tones[1:], scale[1:5]]))


def _bass_note(style: str, song: _Song, rng: np.random.Generator, s: int, low: float,
               scale: np.ndarray, kick: np.ndarray | None, changes: np.ndarray
               ) -> tuple[float, int] | None:
    """``(pitch, duration in steps)`` of the bass at step ``s`` in ``style``, or ``None``.

    ``kick``: the kick's hits (``None`` without drums: then on beats 1 and 3).
    """
    deg, quality = song.prog[song.chord_of_step[s]]
    root = low + deg
    while root > 52:
        root -= 12
    tones = np.asarray(_QUALITY[quality])
    pos = song.bar_pos[s]
    if style == "follow" and (kick[s] if kick is not None else pos % 8 == 0):
        return root, 3
    if style == "walk" and pos % 4 == 0:
        return _walk(song, rng, s, root, low, tones, scale), 4
    if style in ("octave", "eighths") and pos % 2 == 0:
        return root + (12 * ((pos // 2) % 2) if style == "octave" else 0), 2
    if style == "rootfifth" and pos % 8 == 0:
        return root + (7 if pos == 8 else 0), 6
    if style == "sustain" and changes[s]:
        return root, song.steps_per_chord
    if style == "reggae" and pos in (0, 3, 6, 10, 11, 14) and rng.random() < 0.7:
        return root + int(rng.choice(tones)), 2
    return None


def _bass(st: _Style, rng: np.random.Generator, song: _Song, sr: int, kick_hits: np.ndarray,
          changes: np.ndarray) -> np.ndarray:
    """The bass line ``(n,)``: one of the genre's styles over the chords."""
    style = _choose(rng, st.bass)
    bass = _new_voice()
    scale = np.asarray(_SCALES[st.scale])
    low = song.root_base - 12 if song.root_base - 12 >= 36 else song.root_base
    kick = kick_hits if kick_hits.any() else None
    for s in range(song.n_steps):
        note = _bass_note(style, song, rng, s, low, scale, kick, changes)
        if note is not None:
            bass.starts.append(int(song.onset[s]))
            bass.ends.append(int(song.onset[min(s + note[1], song.n_steps - 1)]))
            bass.pitches.append(float(note[0]))
            bass.vels.append(rng.uniform(0.7, 1.0))
    decay = rng.uniform(0.3, 1.2) * (2.0 if style in ("sustain", "follow") else 1.0)
    return _render_voice(bass, song.n, sr, rng.uniform(1.5, 3.0), rng.uniform(0.0, 0.5),
                         0.005, decay, 0.0, rng)


def _lead(st: _Style, rng: np.random.Generator, song: _Song, sr: int,
          shape: tuple[float, float, float]) -> np.ndarray:
    """A lead line ``(n,)`` in the genre's scale (silence when the clip has none)."""
    if not rng.random() < st.lead:
        return np.zeros(song.n, np.float32)
    attack, decay, vibrato = shape
    lead = _new_voice()
    scale = np.asarray(_SCALES[st.scale])
    notes = np.sort((song.root_base + 12 + scale[None, :]
                     + 12 * np.arange(-1, 2)[:, None]).ravel())
    i = int(np.argmin(np.abs(notes - (song.root_base + 12))))
    rate = int(rng.choice([2, 4]))
    for s in range(0, song.n_steps, rate):
        if rng.random() < 0.3:
            continue
        i = int(np.clip(i + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(notes) - 1))
        lead.starts.append(int(song.onset[s]))
        lead.ends.append(int(song.onset[min(s + rate, song.n_steps - 1)]))
        lead.pitches.append(float(notes[i]))
        lead.vels.append(rng.uniform(0.6, 1.0))
    return _render_voice(lead, song.n, sr, _u(rng, st.alpha), _u(rng, st.odd),
                         max(attack, 0.005), max(decay, 0.3), max(vibrato, 0.003), rng)


def _record(spec: np.ndarray, freqs: np.ndarray, nfft: int, n: int, n_out: int, offset: int,
            sr: int, cond: Condition, rec: np.random.Generator) -> np.ndarray:
    """The mixed spectrum ``spec`` recorded under ``cond``: microphone colouring, room,
    noise and hum, the channel's band limit, level. Float ``(n_out,)`` in [-1, 1]."""
    spec = spec * 10.0 ** (_mic_db(freqs, cond, rec) / 20.0)
    spec[0] = 0.0
    dry = scipy.fft.irfft(spec, nfft)[:n].astype(np.float64)
    music = _room(dry, sr, cond, rec)[offset:n]
    colour = _u(rec, cond.noise_colour)
    shape = np.maximum(freqs, 20.0) ** (-colour / 2.0)
    noise_spec = (rec.standard_normal(len(freqs)) + 1j * rec.standard_normal(len(freqs))) * shape
    noise = scipy.fft.irfft(noise_spec.astype(np.complex64), nfft)[:n_out].astype(np.float64)
    if cond.hum_db is not None:  # mains hum: 50 Hz and its harmonics, relative to the noise
        t = np.arange(n_out) / sr
        hum = sum(np.sin(2 * np.pi * 50.0 * k * t + rec.uniform(0, 2 * np.pi)) / k
                  for k in range(1, 6))
        noise = noise / _rms(noise) + 10.0 ** (_u(rec, cond.hum_db) / 20.0) * hum / _rms(hum)
    snr_db = _u(rec, cond.snr_db)
    x = music + noise * (_rms(music) / _rms(noise) * 10.0 ** (-snr_db / 20.0))
    if cond.highpass_hz[1] > 0 or cond.lowpass_hz[1] > 0:  # the channel: zero-phase band limit
        f = np.fft.rfftfreq(nfft, 1.0 / sr)
        band = 10.0 ** (_band_limit_db(f, cond, rec) / 20.0)
        x = scipy.fft.irfft(scipy.fft.rfft(x, nfft) * band, nfft)[:n_out]
    return x * 10.0 ** (_u(rec, cond.peak_dbfs) / 20.0) / (np.abs(x).max() + 1e-12)


def render_clip(genre: str, seed: int, clip: int, seconds: float = 6.0,
                sample_rate: int = 16000, condition: str = "train") -> np.ndarray:
    """Render one clip of ``genre`` deterministically, recorded under ``condition``.

    Args:
        genre: One of :data:`GENRES`.
        seed: Dataset seed.
        clip: Clip index within the genre.
        seconds: Clip length in seconds. (Default: ``6.0``)
        sample_rate: Sample rate in Hz. (Default: ``16000``)
        condition: Recording conditions, a key of :data:`CONDITIONS` (the split the
            clip belongs to). (Default: ``"train"``)

    Returns:
        int16 array of shape ``(round(seconds * sample_rate),)``.
    """
    if genre not in _STYLES:
        raise ValueError(f"unknown genre {genre!r}; expected one of {GENRES}")
    cond = condition_of(seed, condition, clip)  # checks the name
    g = GENRES.index(genre)
    st = _STYLES[genre]
    rng = np.random.default_rng([int(seed), g, int(clip)])
    # The recording draws come from their own stream, so that the musical content of
    # clip i does not depend on which split it is rendered for.
    rec = np.random.default_rng([int(seed), g, int(clip), 1 + tuple(CONDITIONS).index(condition)])
    sr = int(sample_rate)
    n_out = int(round(seconds * sr))
    tempo_factor = 2.0 ** (rec.uniform(-1.0, 1.0) * cond.tempo_pct / 100.0)
    detune = rec.uniform(-1.0, 1.0) * cond.detune_cents / 100.0  # semitones
    song, offset = _song(st, rng, n_out, sr, tempo_factor, detune)
    drums, drum_level, kick_hits = _drums(st, rng, song, sr)
    chords, changes, shape = _chords(st, rng, song, sr)
    bass = _bass(st, rng, song, sr, kick_hits, changes)
    lead = _lead(st, rng, song, sr, shape)
    # --- mix and brightness, then the recording conditions ---------------------
    tonal = (chords / _rms(chords) + rng.uniform(*st.bass_level) * bass / _rms(bass)
             + (rng.uniform(0.3, 0.7) * lead / _rms(lead) if lead.any() else 0.0))
    nfft = scipy.fft.next_fast_len(song.n, real=True)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr).astype(np.float32)
    lowpass = 1.0 / np.sqrt(1.0 + (freqs / _u(rng, st.cutoff)) ** 4)
    spec = scipy.fft.rfft(tonal.astype(np.float32), nfft) * lowpass
    if drum_level > 0:
        spec += scipy.fft.rfft((drum_level * 1.2 / _rms(drums) * drums).astype(np.float32), nfft)
    x = _record(spec, freqs, nfft, song.n, n_out, offset, sr, cond, rec)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------
# Writing the tree


def _marker_name(n_per_class: int, seconds: float, sample_rate: int, seed: int) -> str:
    args = {"n_per_class": int(n_per_class), "seconds": float(seconds),
            "sample_rate": int(sample_rate), "seed": int(seed), "version": GENERATOR_VERSION,
            "conditions": repr(sorted(CONDITIONS.items())), "venues": VENUES}
    digest = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    return f".complete-{digest}"


def _write_wav_atomic(path: Path, data: np.ndarray, sample_rate: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(tmp, data, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def generate_synthetic_gtzan(root: str | os.PathLike, n_per_class: int = 20,
                             seconds: float = 6.0, sample_rate: int = 16000, seed: int = 0,
                             progress: bool = True) -> Path:
    """Write the synthetic genre set as 16-bit WAV in the GTZAN layout.

    Layout: ``root/genres_original/<genre>/<genre>.<5-digit index>.wav`` for the
    ten GTZAN genres, each clip recorded under its split's conditions
    (:func:`split_of`, :data:`CONDITIONS`), plus the manifest ``root/synthetic.csv``
    (``path,label,split,condition``, paths relative to ``root``). A marker file
    ``root/.complete-<hash of the arguments>`` is written last; if it exists the
    call returns at once. Files are written atomically (temporary file +
    ``os.replace``), so an interrupted run leaves no half-written clip and the
    next call simply regenerates the tree. Clips from
    an earlier call with other arguments (higher indices, stale markers) are
    removed so that the tree matches the arguments exactly.

    Args:
        root: Output folder (created if missing).
        n_per_class: Clips per genre. (Default: ``20``)
        seconds: Clip length in seconds. (Default: ``6.0``)
        sample_rate: Sample rate in Hz. (Default: ``16000``)
        seed: Dataset seed; clip ``i`` of genre ``g`` is seeded from ``(seed, g, i)``.
            (Default: ``0``)
        progress: Show a tqdm bar. (Default: ``True``)

    Returns:
        The ``root/genres_original`` folder, ready for :func:`experiments.data.decode.load_dataset`.

    Example:
        >>> folder = generate_synthetic_gtzan("/tmp/synth", n_per_class=1,
        ...                                   seconds=0.5, progress=False)  # doctest: +SKIP
        >>> folder.name  # doctest: +SKIP
        'genres_original'
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if sample_rate < 4000:
        raise ValueError(f"sample_rate must be >= 4000 Hz, got {sample_rate}")
    root = Path(root)
    out = root / "genres_original"
    marker = root / _marker_name(n_per_class, seconds, sample_rate, seed)
    if marker.exists():
        return out
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(".complete-*"):
        old.unlink()
    clip_re = re.compile(r"^(?P<genre>[a-z]+)\.(?P<idx>\d{5})\.wav$")
    jobs = [(genre, i) for genre in GENRES for i in range(n_per_class)]
    for genre in GENRES:
        folder = out / genre
        folder.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            m = clip_re.match(f.name)
            stale = m and m["genre"] == genre and int(m["idx"]) >= n_per_class
            if stale or f.name.endswith(".tmp"):
                f.unlink()

    def work(job: tuple[str, int]) -> None:
        genre, i = job
        audio = render_clip(genre, seed, i, seconds, sample_rate, split_of(i, n_per_class))
        _write_wav_atomic(out / genre / f"{genre}.{i:05d}.wav", audio, sample_rate)

    # numpy releases the GIL in its heavy loops: a few threads help a little.
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as ex:
        for _ in tqdm(ex.map(work, jobs), total=len(jobs), desc="synthesizing genres",
                      unit="clip", disable=not progress):
            pass
    rows = ["path,label,split,condition"]
    for genre, i in jobs:
        split = split_of(i, n_per_class)
        rows.append(f"genres_original/{genre}/{genre}.{i:05d}.wav,{genre},{split},"
                    f"{condition_of(seed, split, i).name}")
    tmp = root / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text("\n".join(rows) + "\n")
    os.replace(tmp, root / MANIFEST)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"n_per_class": n_per_class, "seconds": seconds,
                               "sample_rate": sample_rate, "seed": seed,
                               "version": GENERATOR_VERSION}) + "\n")
    os.replace(tmp, marker)
    return out
