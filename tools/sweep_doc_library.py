"""The library cases (L01-L50) of the sweep of 2026-12-06, for :mod:`tools.sweep_bad_inputs`.

Each case runs the call of its row on every transform the row names, with ``x =
0.1 * randn(4, 1, 8000)`` and ``p=1``, and decides its outcome itself
(:func:`_each`): the first transform that goes wrong gives the case's outcome.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import augkit as ak
from augkit.banks import colored_noise_bank, synthetic_room_irs
from tools.sweep_core import GOOD, SR, Obs, _Cases, _Timeout, _write

Judge = Callable[[str, object, "BaseException | None", list[str]], tuple[str, str]]


def _x(b: int = 4, t: int = SR, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(b, 1, t, generator=torch.Generator().manual_seed(seed))


def _spec(b: int = 4, f: int = 32, t: int = 50) -> torch.Tensor:
    return torch.rand(b, 1, f, t, generator=torch.Generator().manual_seed(1)) + 0.1


def wave18() -> list[tuple[str, nn.Module]]:
    """The 18 waveform transforms the rows call "every waveform transform", p=1."""
    noises = colored_noise_bank(4, 1.0, SR, seed=0)
    irs = synthetic_room_irs(4, SR, rt60=(0.1, 0.3), seed=0)
    lp = (500.0, 3000.0)
    return [
        ("Gain", ak.Gain(p=1.0)), ("GaussianNoise", ak.GaussianNoise(snr_db=20.0, p=1.0)),
        ("ColoredNoise", ak.ColoredNoise(p=1.0)),
        ("BackgroundNoise", ak.BackgroundNoise(noises, snr_db=10.0, sample_rate=SR, p=1.0)),
        ("ImpulseResponse", ak.ImpulseResponse(irs, sample_rate=SR, p=1.0)),
        ("LowPassFilter", ak.LowPassFilter(lp, sample_rate=SR, p=1.0)),
        ("HighPassFilter", ak.HighPassFilter((50.0, 1000.0), sample_rate=SR, p=1.0)),
        ("BandPassFilter", ak.BandPassFilter((300.0, 2000.0), (0.5, 1.0), sample_rate=SR,
                                             p=1.0)),
        ("BandStopFilter", ak.BandStopFilter((300.0, 2000.0), (0.5, 1.0), sample_rate=SR,
                                             p=1.0)),
        ("PitchShift", ak.PitchShift(sample_rate=SR, p=1.0)),
        ("TimeStretch", ak.TimeStretch(n_fft=256, p=1.0)), ("Speed", ak.Speed(p=1.0)),
        ("PeakNormalize", ak.PeakNormalize(p=1.0)), ("TimeReversal", ak.TimeReversal(p=1.0)),
        ("TimeShift", ak.TimeShift(p=1.0)), ("PolarityInversion", ak.PolarityInversion(p=1.0)),
        ("RandomCrop", ak.RandomCrop(4000)),
        ("TrivialAugment", ak.TrivialAugment([ak.Gain(p=1.0),
                                              ak.LowPassFilter(lp, sample_rate=SR, p=1.0)])),
    ]


def spec5() -> list[tuple[str, nn.Module]]:
    """The spectrogram steps of the rows, p=1."""
    return [("TimeMasking", ak.TimeMasking(10)), ("FrequencyMasking", ak.FrequencyMasking(5)),
            ("TimeWarp", ak.TimeWarp(p=1.0)), ("RandomResizedCrop", ak.RandomResizedCrop(p=1.0)),
            ("FilterAugment", ak.FilterAugment(p=1.0))]


def _mel() -> ak.MelFrontend:
    return ak.MelFrontend(SR, n_fft=256, n_mels=32)


def _each(items: Iterable[tuple[str, Callable[[], object]]], judge: Judge) -> Obs:
    """Call every item, judge each; the first bad one decides, else the most common good
    outcome, with the first item's detail as the example."""
    good = []
    for name, fn in items:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result, exc = fn(), None
            except _Timeout:
                raise
            except Exception as e:  # judged below: a deep torch error is cryptic
                result, exc = None, e
        outcome, detail = judge(name, result, exc, [str(w.message) for w in caught])
        if outcome not in GOOD:
            return Obs(verdict=(outcome, f"{name}: {detail}"))
        good.append((outcome, f"{name}: {detail}"))
    top = Counter(o for o, _ in good).most_common(1)[0][0]
    return Obs(verdict=(top, f"{len(good)} of {len(good)}; e.g. {good[0][1]}"))


def _named(text: str, must: Iterable[str]) -> bool:
    return all(m in text for m in must)


def refuses(*must: str, types=(ValueError, TypeError)) -> Judge:
    """Good: an exception of ``types``, one line, naming ``must`` (``{name}``: the item)."""

    def judge(name, result, exc, warned):
        if exc is None:
            return "silent change", "accepted" + (f" (warned: {warned[0][:80]})" if warned else "")
        msg = f"{type(exc).__name__}: {exc}"
        need = [m.format(name=name) for m in must]
        if isinstance(exc, types) and "\n" not in str(exc) and _named(msg, need):
            return "one-line error", msg
        return "cryptic error", msg

    return judge


def works(check: Callable[[str, object], bool] = lambda n, r: True, *, or_refuses=(),
          or_warns=()) -> Judge:
    """Good: returns and ``check`` holds; or (when given) a one-line ValueError/TypeError
    naming ``or_refuses``, or a warning naming ``or_warns`` (then ``check`` is not asked:
    the caller was told)."""

    def judge(name, result, exc, warned):
        if exc is not None:
            msg = f"{type(exc).__name__}: {exc}"
            need = [m.format(name=name) for m in or_refuses]
            if (or_refuses and isinstance(exc, (ValueError, TypeError))
                    and "\n" not in str(exc) and _named(msg, need)):
                return "one-line error", msg
            return "cryptic error", msg
        need = [m.format(name=name) for m in or_warns]
        hit = next((w for w in warned if or_warns and _named(w, need)), None)
        if hit is not None:
            return "named warning + correct result", hit
        if not check(name, result):
            return "silent change", "the result is wrong, and no warning named " + (
                ", ".join(need) or "it")
        return "correct result", "ok"

    return judge


def _finite(y) -> bool:
    y = y[0] if isinstance(y, tuple) else y
    return bool(torch.isfinite(y.float()).all())


def _calls(transforms, make_input, **kw) -> list[tuple[str, Callable[[], object]]]:
    return [(n, (lambda t=t: t(make_input(), **kw))) for n, t in transforms]


# ---------------------------------------------------------------------------


def _shapes(cases: _Cases) -> None:
    """L01-L09: ranks, layouts, empty and tiny batches."""
    def add(doc, what, tokens=()):
        return cases.add(f"doc_{doc}", "library", what, tokens, doc=doc)

    add("L01", "1-D waveform into every waveform transform")(lambda tmp: _each(
        _calls(wave18(), lambda: torch.randn(SR)), refuses("{name}", "(8000,)",
                                                          types=(ValueError,))))
    any_rank = {"PeakNormalize", "TimeReversal", "AmplitudeToDB"}  # documented (B, ..., T)
    five = torch.randn(2, 1, 1, 1, 800)

    def l02(tmp):
        items = [*wave18(), *spec5(), ("MelFrontend", _mel()), ("AmplitudeToDB",
                                                                 ak.AmplitudeToDB())]
        rank_free = [(n, t) for n, t in items if n in any_rank]
        bad = _each(_calls([(n, t) for n, t in items if n not in any_rank], lambda: five),
                    refuses("(2, 1, 1, 1, 800)"))
        if bad.verdict[0] not in GOOD:
            return bad
        ok = _each(_calls(rank_free, lambda: five), works(lambda n, y: y.shape == five.shape))
        return bad if ok.verdict[0] in GOOD else ok

    add("L02", "5-D input into every transform, the spectrogram steps, MelFrontend")(l02)
    add("L03", "waveforms in (B, T, C) order, (2, 2000, 2), into every waveform transform")(
        lambda tmp: _each(_calls(wave18(), lambda: torch.randn(2, 2000, 2)),
                          works(or_refuses=("(2, 2000, 2)",), or_warns=("{name}", "(2, 2000, 2)"),
                                check=lambda n, y: False)))
    add("L04", "spectrograms in (B, T, F, 1) order into the spectrogram steps")(lambda tmp: _each(
        _calls(spec5(), lambda: torch.rand(4, 100, 64, 1)),
        works(or_refuses=("(4, 100, 64, 1)",), or_warns=("{name}", "(4, 100, 64, 1)"),
              check=lambda n, y: False)))
    empty = torch.zeros(0, 1, SR)

    def l05(tmp):
        items = [*wave18(), ("Mixup", ak.Mixup(num_classes=3)), ("MelFrontend", _mel())]
        expect = {"RandomCrop": (0, 1, 4000)}
        return _each(_calls(items, lambda: empty),
                     works(lambda n, y: (y[0] if isinstance(y, tuple) else y).shape[0] == 0
                           and (n not in expect or tuple(y.shape) == expect[n]),
                           or_refuses=("empty",)))

    add("L05", "an empty batch (B=0) into the catalogue")(l05)

    def l06(tmp):
        x1 = _x(1)
        calls = _calls(wave18(), lambda: x1)
        mix = ak.Mixup(num_classes=3)
        calls.append(("Mixup", lambda: mix(x1, target=torch.tensor([2]))))

        def check(n, y):
            if n != "Mixup":
                return _finite(y)
            out, target = y
            return torch.allclose(out, x1, atol=1e-6) and target.tolist() == [[0.0, 0.0, 1.0]]

        return _each(calls, works(check))

    add("L06", "a batch of one; Mixup on one example")(l06)
    add("L07", "1-sample clips (2, 1, 1) into every waveform transform")(lambda tmp: _each(
        _calls(wave18(), lambda: _x(2, 1)), works(lambda n, y: _finite(y) and y.shape[-1] == (
            4000 if n == "RandomCrop" else 1), or_refuses=("length",))))
    add("L08", "64-sample clips (shorter than n_fft) into every waveform transform")(
        lambda tmp: _each(_calls(wave18(), lambda: _x(2, 64)),
                          works(lambda n, y: _finite(y), or_refuses=("n_fft",))))
    add("L09", "a 1x1 spectrogram into every spectrogram step")(lambda tmp: _each(
        _calls(spec5(), lambda: torch.ones(2, 1, 1, 1)),
        works(lambda n, y: tuple(y.shape) == (2, 1, 1, 1) and _finite(y),
              or_refuses=("{name}",))))


def _values(cases: _Cases) -> None:
    """L10-L13: extreme values, dtypes."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    items = lambda: [*wave18(), ("MelFrontend", _mel())]  # noqa: E731

    def l10(tmp):
        """The contract (docs/contract.md): noise levels are RMS, finite for float64 input of
        any level and float32 up to about 1e17; MelFrontend's float32 power overflows above
        that (documented: scale such input down)."""
        obs = _each(_calls(wave18(), lambda: 1e30 * torch.randn(2, 1, SR, dtype=torch.float64)),
                    works(lambda n, y: _finite(y)))
        if obs.verdict[0] not in GOOD:
            return obs
        obs = _each(_calls(items(), lambda: 1e15 * torch.randn(2, 1, SR)),
                    works(lambda n, y: _finite(y)))
        if obs.verdict[0] not in GOOD:
            return obs
        return Obs(verdict=("correct result", "finite for float64 at 1e30 and float32 at 1e15; "
                            "float32 above ~1e17 overflows in MelFrontend: documented in "
                            "docs/contract.md"))

    add("L10", "huge inputs (1e30 float64, 1e15 float32) through every transform and "
        "MelFrontend")(l10)

    def l11(tmp):
        def check(n, y):
            return _finite(y)
        t0 = time.perf_counter()
        obs = _each(_calls(items(), lambda: 1e-40 * torch.randn(4, 1, SR)), works(check))
        took = time.perf_counter() - t0
        if obs.verdict[0] in GOOD and took > 30:
            return Obs(verdict=("hang", f"denormal inputs took {took:.0f} s"))
        return obs

    add("L11", "denormal inputs (1e-40) through every transform, timed")(l11)
    f32 = {"MelFrontend", "AmplitudeToDB"}  # documented: float32 features
    for doc, dtype in (("L12", torch.float16), ("L13", torch.bfloat16)):

        def run(tmp, dtype=dtype):
            spec = [(n, t) for n, t in spec5()] + [("AmplitudeToDB", ak.AmplitudeToDB())]
            a = _each(_calls(items(), lambda: _x(2).to(dtype)), works(
                lambda n, y: y.dtype == (torch.float32 if n in f32 else dtype),
                or_refuses=("dtype",)))
            if a.verdict[0] not in GOOD:
                return a
            return _each(_calls(spec, lambda: _spec(2).to(dtype)), works(
                lambda n, y: y.dtype == (torch.float32 if n in f32 else dtype),
                or_refuses=("dtype",)))

        add(doc, f"{dtype} on the CPU through every transform and spectrogram step")(run)



def _layouts(cases: _Cases) -> None:
    """L14-L17: memory layouts, in-place writes, gradients."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    def same_as_contiguous(make, atol):
        def run(tmp):
            def one(t, n):
                x = make()
                a = t(x, generator=torch.Generator().manual_seed(3))
                b = t(x.contiguous(), generator=torch.Generator().manual_seed(3))
                return torch.allclose(a, b, atol=atol)
            return _each([(n, (lambda t=t, n=n: one(t, n))) for n, t in wave18()],
                         works(lambda n, same: bool(same)))
        return run

    add("L14", "non-contiguous input vs its contiguous copy, one generator")(same_as_contiguous(
        lambda: torch.randn(4, SR, 1, generator=torch.Generator().manual_seed(0)
                            ).transpose(1, 2), 0.0))
    add("L15", "expanded (stride-0) input vs its contiguous copy")(same_as_contiguous(
        lambda: _x(4).expand(4, 2, SR), 1e-6))

    def untouched(t):
        x = _x()
        x0 = x.clone()
        t(x)
        return torch.equal(x, x0)

    add("L16", "is the input written in place? every transform")(lambda tmp: _each(
        [(n, (lambda t=t: untouched(t))) for n, t in [*wave18(), *spec5()]],
        works(lambda n, same: bool(same))))

    def grads(t):
        x = _x().requires_grad_(True)
        y = t(x)
        y = y[0] if isinstance(y, tuple) else y
        y.sum().backward()
        return x.grad

    add("L17", "inputs with requires_grad through every transform (backward)")(lambda tmp: _each(
        [(n, (lambda t=t: grads(t))) for n, t in [*wave18(), ("MelFrontend", _mel())]],
        works(lambda n, g: g is not None and bool(torch.isfinite(g).all()),
              or_refuses=("grad",))))


def _arguments(cases: _Cases) -> None:
    """L18-L24: sample rates, Nyquist, TrivialAugment and Compose arguments."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    builders = {
        "LowPassFilter": lambda sr: ak.LowPassFilter((100, 1000), sample_rate=sr),
        "HighPassFilter": lambda sr: ak.HighPassFilter((50, 1000), sample_rate=sr),
        "PitchShift": lambda sr: ak.PitchShift(sample_rate=sr),
        "MelFrontend": lambda sr: ak.MelFrontend(sr, n_fft=256, n_mels=32),
        "BackgroundNoise": lambda sr: ak.BackgroundNoise(torch.randn(2, 4000), sample_rate=sr),
        "ImpulseResponse": lambda sr: ak.ImpulseResponse(torch.randn(2, 400), sample_rate=sr),
    }
    add("L18", "sample_rate='16000' (a string)")(lambda tmp: _each(
        [(n, (lambda b=b: b("16000"))) for n, b in builders.items()], refuses("sample_rate")))

    def l19(tmp):
        three = [n for n in ("HighPassFilter", "PitchShift", "MelFrontend")]
        bad = _each([(f"{n}({v!r})", (lambda n=n, v=v: builders[n](v))) for n in three
                     for v in (0, -8000, True, math.nan)], refuses("sample_rate"))
        if bad.verdict[0] not in GOOD:
            return bad
        ok = _each([(n, (lambda n=n: builders[n](np.int64(SR)))) for n in three], works())
        return bad if ok.verdict[0] in GOOD else ok

    add("L19", "sample_rate 0, -8000, True, nan; numpy int64 accepted")(l19)
    add("L20", "float sample rates 22050.5 and 22050.0")(lambda tmp: _each(
        [(f"{n}({v})", (lambda n=n, v=v: builders[n](v))) for n in
         ("LowPassFilter", "PitchShift", "MelFrontend") for v in (22050.5, 22050.0)],
        works(or_refuses=("sample_rate",))))
    add("L21", "a cutoff above Nyquist")(lambda tmp: _each([
        ("LowPassFilter((100, 5000))", lambda: ak.LowPassFilter((100, 5000), sample_rate=SR)),
        ("HighPassFilter(4000)", lambda: ak.HighPassFilter(4000, sample_rate=SR)),
        ("LowPassFilter(default)", lambda: ak.LowPassFilter(sample_rate=SR))],
        refuses("cutoff_hz", "4000")))
    add("L21b", "a band edge above Nyquist (BandPassFilter((3000, 3900), (1.5, 1.9)))")(
        lambda tmp: _each([("BandPassFilter", lambda: ak.BandPassFilter(
            (3000, 3900), (1.5, 1.9), sample_rate=SR)), ("BandStopFilter", lambda: (
                ak.BandStopFilter((3000, 3900), (1.5, 1.9), sample_rate=SR)))],
            refuses("4000")))
    lp = ak.LowPassFilter((100, 1000), sample_rate=SR)
    add("L22", "TrivialAugment([]), ({}), mixed domains, nested steps, num_ops > steps")(
        lambda tmp: _each([
            ("[]", lambda: ak.TrivialAugment([])), ("{}", lambda: ak.TrivialAugment({})),
            ("mixed", lambda: ak.TrivialAugment([lp, ak.TimeMasking(10)])),
            ("MelFrontend", lambda: ak.TrivialAugment([ak.Gain(), _mel()])),
            ("Mixup", lambda: ak.TrivialAugment([ak.Gain(), ak.Mixup(num_classes=3)])),
            ("Compose", lambda: ak.TrivialAugment([ak.Gain(), ak.Compose([ak.Gain()])])),
            ("num_ops=3", lambda: ak.TrivialAugment([ak.Gain(), lp], num_ops=3))],
            refuses()))
    add("L23", "TrivialAugment of a shape-changing op: RandomCrop(4000), Gain")(
        lambda tmp: _each([("TrivialAugment", lambda: ak.TrivialAugment(
            [ak.RandomCrop(4000), ak.Gain(p=1.0)])(_x()))],
            works(lambda n, y: tuple(y.shape) == (4, 1, 4000), or_refuses=("RandomCrop",))))

    def l24(tmp):
        bad = _each([
            ("duplicate 'g'", lambda: ak.Compose([("g", ak.Gain()), ("g", ak.Gain())])),
            ("name 'a.b'", lambda: ak.Compose([("a.b", ak.Gain())])),
            ("name ''", lambda: ak.Compose([("", ak.Gain())])),
            ("name 3", lambda: ak.Compose([(3, ak.Gain())])),
            ("Compose([]) with targets", lambda: ak.Compose([])(_x(), target=torch.tensor(
                [0, 1, 2, 0])))], refuses(types=(ValueError, TypeError, KeyError)))
        if bad.verdict[0] not in GOOD:
            return bad
        ok = _each([("unnamed", lambda: list(ak.Compose([ak.Gain(), ak.Gain(), ak.Gain()]
                                                        ).names))],
                   works(lambda n, names: names == ["gain", "gain_2", "gain_3"]))
        return bad if ok.verdict[0] in GOOD else ok

    add("L24", "Compose step names: duplicates, unnamed, 'a.b', '', 3; Compose([]) + targets")(
        l24)


def _replay(cases: _Cases) -> None:
    """L25-L32: replayed params and lengths."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    def replay(t, drawn_on, run_on):
        t(_x(drawn_on))
        return t(_x(run_on), params=t.last_params)

    add("L25", "params drawn for B=4 replayed on B=2, every transform")(lambda tmp: _each(
        [(n, (lambda t=t: replay(t, 4, 2))) for n, t in wave18() if n != "TrivialAugment"],
        refuses("4", "2")))
    add("L26", "params drawn for B=1 replayed on B=4, every transform")(lambda tmp: _each(
        [(n, (lambda t=t: replay(t, 1, 4))) for n, t in wave18() if n != "TrivialAugment"],
        refuses("1", "4")))

    def compose_replay(mutate):
        chain = ak.Compose([ak.Gain(p=1.0)])
        x = _x()
        chain(x)
        params = {k: dict(v) for k, v in chain.last_params.items()}
        mutate(params)
        return chain(x, params=params)

    add("L27", "Compose replay with an unknown step name, or a missing key")(lambda tmp: _each([
        ("nosuch", lambda: compose_replay(lambda p: p.update(nosuch={}))),
        ("gain_db", lambda: compose_replay(lambda p: p["gain"].pop("gain_db")))],
        refuses("{name}")))
    length_steps = lambda: [  # noqa: E731
        ("ColoredNoise", ak.ColoredNoise(p=1.0)),
        ("BackgroundNoise", ak.BackgroundNoise(colored_noise_bank(2, 1.0, SR), sample_rate=SR,
                                               p=1.0)),
        ("ImpulseResponse", ak.ImpulseResponse(synthetic_room_irs(2, SR, rt60=(0.1, 0.2)),
                                               sample_rate=SR, p=1.0)),
        ("PeakNormalize", ak.PeakNormalize(p=1.0)), ("TimeReversal", ak.TimeReversal(p=1.0))]

    def longer(t):
        x = _x()
        a = t(x, lengths=torch.full((4,), 2 * SR), generator=torch.Generator().manual_seed(0))
        b = t(x, lengths=torch.full((4,), SR), generator=torch.Generator().manual_seed(0))
        return torch.allclose(a, b, atol=1e-6)

    add("L28", "lengths longer than T (treated as T)")(lambda tmp: _each(
        [(n, (lambda t=t: longer(t))) for n, t in length_steps()],
        works(lambda n, same: bool(same))))
    add("L29", "a negative length")(lambda tmp: _each(
        _calls(length_steps(), _x, lengths=torch.tensor([-5, SR, SR, SR])),
        refuses("lengths")))
    add("L30", "float lengths")(lambda tmp: _each(
        _calls(length_steps(), _x, lengths=torch.full((4,), float(SR))),
        works(lambda n, y: _finite(y), or_refuses=("lengths",))))
    add("L31", "lengths of shape (5,) for B=4, or a Python list")(lambda tmp: _each(
        [*((f"{n} (5,)", (lambda t=t: t(_x(), lengths=torch.full((5,), SR))))
           for n, t in length_steps()),
         *((f"{n} list", (lambda t=t: t(_x(), lengths=[SR] * 4))) for n, t in length_steps())],
        refuses("lengths")))
    add("L32", "lengths on another device than x (meta)")(lambda tmp: _each(
        _calls(length_steps(), _x, lengths=torch.full((4,), SR, device="meta")),
        refuses("lengths")))


def _targets(cases: _Cases) -> None:
    """L33-L36: targets and num_classes."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    def steps():
        mix_eval = ak.Mixup(num_classes=3)
        mix_eval.eval()
        return [("Mixup", ak.Mixup(num_classes=3)),
                ("Compose([Gain, Mixup(3)])", ak.Compose([ak.Gain(), ak.Mixup(num_classes=3)])),
                ("Compose([Gain], num_classes=3)", ak.Compose([ak.Gain()], num_classes=3)),
                ("Mixup in eval()", mix_eval)]

    add("L33", "a label >= num_classes")(lambda tmp: _each(
        _calls(steps(), _x, target=torch.tensor([0, 1, 2, 5])), refuses("5", "num_classes")))
    add("L34", "a negative label")(lambda tmp: _each(
        _calls(steps(), _x, target=torch.tensor([-1, 0, 1, 2])), refuses("-1")))
    add("L35", "soft targets with K=5 for num_classes=3; 3 targets for 4 examples")(
        lambda tmp: _each([*_calls([("K=5 " + n, t) for n, t in steps()], _x,
                                   target=torch.full((4, 5), 0.2)),
                           *_calls([("3 rows " + n, t) for n, t in steps()], _x,
                                   target=torch.tensor([0, 1, 2]))], refuses()))
    add("L36", "Compose(num_classes=3) holding Mixup(num_classes=5)")(lambda tmp: _each(
        [("Compose", lambda: ak.Compose([ak.Mixup(num_classes=5)], num_classes=3))],
        refuses("3", "5")))


def _bank_obs(fn, check=None) -> Obs:
    """Build a bank transform: a one-line error, or its warnings and ``check(it)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn()
        except (ValueError, TypeError) as e:
            return Obs(error=f"{type(e).__name__}: {e}")
    return Obs(warned="\n".join(str(w.message) for w in caught),
               check=None if check is None else bool(check(result)))


def _noisy(x):
    """A check: the transform changes ``x`` (it is not a silent no-op)."""
    return lambda t: not torch.equal(t(x), x)


def _noise_banks(cases: _Cases) -> None:
    """L37-L41: noise banks."""
    def add(doc, what, tokens=(), ok=False):
        return cases.add(f"doc_{doc}", "library", what, tokens, ok_expected=ok, doc=doc)

    bank_obs, noisy = _bank_obs, _noisy

    @add("L37", "BackgroundNoise / ImpulseResponse on an empty folder", ["holds no audio"])
    def _(tmp):
        (tmp / "empty").mkdir()
        a = bank_obs(lambda: ak.BackgroundNoise(tmp / "empty", sample_rate=SR))
        return a if a.error is None else bank_obs(lambda: ak.ImpulseResponse(
            tmp / "empty", sample_rate=SR))

    @add("L38", "a bank folder of non-audio (notes.txt, a text file named fake.wav)",
         ["fake.wav"])
    def _(tmp):
        (tmp / "n").mkdir()
        (tmp / "n" / "notes.txt").write_text("x")
        (tmp / "n" / "fake.wav").write_text("not audio")
        return bank_obs(lambda: ak.BackgroundNoise(tmp / "n", sample_rate=SR))

    def noise_folder(tmp: Path, bad: np.ndarray, name: str) -> Path:
        _write(tmp / "n" / "good.wav", 0.3 * np.random.default_rng(0).standard_normal(
            SR).astype(np.float32), "FLOAT")
        _write(tmp / "n" / name, bad, "FLOAT")
        return tmp / "n"

    def bad_noise(value, count):
        a = 0.3 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
        a[100:100 + count] = value
        return a

    @add("L39", "a noise folder holding a float WAV with 100 NaN samples", ["nan.wav", "NaN"])
    def _(tmp):
        folder = noise_folder(tmp, bad_noise(np.nan, 100), "nan.wav")
        return bank_obs(lambda: ak.BackgroundNoise(folder, snr_db=10, sample_rate=SR, p=1.0),
                        noisy(_x()))

    @add("L40", "a noise folder holding a file with one +inf sample", ["inf.wav", "NaN/inf"])
    def _(tmp):
        folder = noise_folder(tmp, bad_noise(np.inf, 1), "inf.wav")
        return bank_obs(lambda: ak.BackgroundNoise(folder, snr_db=10, sample_rate=SR, p=1.0),
                        noisy(_x()))

    @add("L41", "an all-zero noise bank; a folder with one silent file among good ones",
         ["silent.wav", "silent"])
    def _(tmp):
        zero = bank_obs(lambda: ak.BackgroundNoise(torch.zeros(2, 4000), snr_db=10, p=1.0))
        if zero.error is None or "silent" not in zero.error:
            return Obs(verdict=("silent change", "an all-zero tensor bank was accepted"))
        folder = noise_folder(tmp, np.zeros(SR, np.float32), "silent.wav")
        return bank_obs(lambda: ak.BackgroundNoise(folder, snr_db=10, sample_rate=SR, p=1.0),
                        noisy(_x()))



def _ir_banks(cases: _Cases) -> None:
    """L42-L46: impulse-response banks, silence."""
    def add(doc, what, tokens=(), ok=False):
        return cases.add(f"doc_{doc}", "library", what, tokens, ok_expected=ok, doc=doc)

    bank_obs, noisy = _bank_obs, _noisy

    @add("L42", "a single-sample impulse response (tensor and file) is the identity", [],
         ok=True)
    def _(tmp):
        x = _x()
        _write(tmp / "ir" / "one.wav", np.array([0.5], np.float32), "FLOAT")
        for irs in (torch.tensor([[0.5]]), tmp / "ir"):
            y = ak.ImpulseResponse(irs, sample_rate=SR, p=1.0)(x)
            if not torch.allclose(y, x, atol=1e-5):
                return Obs(check=False)
        return Obs(check=True)

    @add("L43", "an all-zero IR tensor; an IR folder with a room and a silent file",
         ["b.wav", "silent"])
    def _(tmp):
        zero = bank_obs(lambda: ak.ImpulseResponse(torch.zeros(1, 100)))
        if zero.error is None or "irs" not in zero.error:
            return Obs(verdict=("silent change", "an all-zero IR tensor was accepted"))
        irs = synthetic_room_irs(1, SR, rt60=(0.2, 0.3))[0].numpy()
        _write(tmp / "ir" / "a.wav", irs, "FLOAT")
        _write(tmp / "ir" / "b.wav", np.zeros(400, np.float32), "FLOAT")
        return bank_obs(lambda: ak.ImpulseResponse(tmp / "ir", sample_rate=SR, p=1.0),
                        noisy(_x()))

    @add("L44", "an IR file with 10 NaN samples in its tail", ["tail.wav", "NaN"])
    def _(tmp):
        irs = synthetic_room_irs(2, SR, rt60=(0.2, 0.3)).numpy()
        _write(tmp / "ir" / "room.wav", irs[0], "FLOAT")
        tail = irs[1].copy()
        tail[-10:] = np.nan
        _write(tmp / "ir" / "tail.wav", tail, "FLOAT")
        return bank_obs(lambda: ak.ImpulseResponse(tmp / "ir", sample_rate=SR, p=1.0),
                        noisy(_x()))

    add("L45", "a 2 s impulse response on 50-sample clips", ok=True)(lambda tmp: _each(
        [("ImpulseResponse", lambda: ak.ImpulseResponse(synthetic_room_irs(
            1, SR, rt60=(1.5, 2.0)), sample_rate=SR, p=1.0)(_x(2, 50)))],
        works(lambda n, y: tuple(y.shape) == (2, 1, 50) and _finite(y))))
    add("L46", "PeakNormalize on silence stays silence", ok=True)(lambda tmp: _each(
        [("PeakNormalize", lambda: ak.PeakNormalize(p=1.0)(torch.zeros(2, 1, 800)))],
        works(lambda n, y: bool((y == 0).all()))))


def _rest(cases: _Cases) -> None:
    """L47-L50: extreme ranges, foreign generators, layouts for MelFrontend, NaN."""
    def add(doc, what):
        return cases.add(f"doc_{doc}", "library", what, (), doc=doc)

    def timed(t):
        t0 = time.perf_counter()
        y = t(_x())
        return y, time.perf_counter() - t0

    add("L47", "extreme ranges: Speed(0.01/100), TimeStretch(0.01/100), PitchShift(+-48)")(
        lambda tmp: _each([(n, (lambda f=f: timed(f()))) for n, f in (
            ("Speed(0.01)", lambda: ak.Speed(0.01, p=1.0)),
            ("Speed(100)", lambda: ak.Speed(100.0, p=1.0)),
            ("TimeStretch(0.01)", lambda: ak.TimeStretch(0.01, n_fft=256, p=1.0)),
            ("TimeStretch(100)", lambda: ak.TimeStretch(100.0, n_fft=256, p=1.0)),
            ("PitchShift((-48, 48))", lambda: ak.PitchShift((-48, 48), sample_rate=SR,
                                                            p=1.0)))],
            works(lambda n, r: _finite(r[0]) and r[1] < 10, or_refuses=("",))))
    rng = np.random.default_rng(0)
    add("L48", "generator=np.random.default_rng(0)")(lambda tmp: _each([
        ("Gain", lambda: ak.Gain(p=1.0)(_x(), generator=rng)),
        ("Compose", lambda: ak.Compose([ak.Gain()])(_x(), generator=rng)),
        ("TrivialAugment", lambda: ak.TrivialAugment([ak.Gain()])(_x(), generator=rng))],
        refuses("generator", types=(TypeError,))))
    add("L49", "MelFrontend on (2, 8000, 1) (channels last) and (2, 1, 1, 8000)")(
        lambda tmp: _each([("channels last", lambda: _mel()(torch.randn(2, SR, 1))),
                           ("4-D", lambda: _mel()(torch.randn(2, 1, 1, SR)))],
                          refuses()))

    def nan_stays(n, y):
        y = y[0] if isinstance(y, tuple) else y
        bad = ~torch.isfinite(y).flatten(1).all(1)
        return not bad[1:].any() and (bool(bad[0]) or n in ("RandomCrop", "TrivialAugment"))

    def with_nan():
        x = _x()
        x[0, 0, 100] = float("nan")
        return x

    add("L50", "one NaN sample in example 0: it stays in its example")(lambda tmp: _each(
        _calls(wave18(), with_nan), works(nan_stays)))


GROUPS = (_shapes, _values, _layouts, _arguments, _replay, _targets, _noise_banks, _ir_banks, _rest)
