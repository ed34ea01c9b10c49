"""The bad-input sweep's machinery: what a case is, how it runs, how it is classified.

A case (:class:`Case`) builds its inputs in a folder of its own and returns an
:class:`Obs`: the error it got, the warnings of a run that did not fail, an
unexpected traceback, its own check of the result, and whether finished results
were lost. :func:`classify` turns that into one outcome of :data:`OUTCOMES`;
:mod:`tools.sweep_bad_inputs` holds the cases and the command.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from experiments import ablate
from experiments.data import decode
from experiments.data.splits import make_splits

GOOD = ("one-line error", "named warning + correct result", "correct result")
BAD = ("silent change", "cryptic error", "traceback", "hang", "data loss")
OUTCOMES = (*GOOD, *BAD)
SR = 8000
TINY = {"n_per_class": 5, "seconds": 2.0, "sample_rate": SR, "seed": 0}
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Obs:
    """What one case did."""

    error: str | None = None  # the error message (stderr or exception), if it failed
    warned: str = ""  # warnings and stderr of a run that did not fail
    exc: str | None = None  # an unexpected exception's traceback
    check: bool | None = None  # the case's own check of the result
    rc: int | None = None
    lost: bool = False  # finished results were lost or mixed (data loss)
    stdout: str = ""  # what a run that did not fail printed
    #: A case of many calls may decide itself: ``(outcome, what it said)``.
    verdict: tuple[str, str] | None = None


@dataclass
class Case:
    name: str
    category: str
    what: str
    run: Callable[[Path], Obs]
    tokens: tuple[str, ...]  # must appear in the error or warning
    ok_expected: bool = False  # valid input: a correct result with no warning is good
    doc: tuple[str, ...] = ()  # the ids of docs' sweep of 2026-12-06 this case repeats


@dataclass
class Row:
    name: str
    category: str
    what: str
    outcome: str
    detail: str
    seconds: float = 0.0
    doc: tuple[str, ...] = ()
    good: bool = field(init=False)

    def __post_init__(self) -> None:
        self.good = self.outcome in GOOD


# ---------------------------------------------------------------------------
# Running things


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    def handler(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _lib(fn: Callable[[], object], check: Callable[[object], bool] | None = None) -> Obs:
    """Call ``fn``; an expected exception type is an error, anything else a traceback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn()
        except (ValueError, TypeError, FileNotFoundError) as e:
            return Obs(error=f"{type(e).__name__}: {e}")
        except _Timeout:
            raise
        except Exception:
            return Obs(exc=traceback.format_exc())
    text = "\n".join(str(w.message) for w in caught)
    return Obs(warned=text, check=None if check is None else bool(check(result)))


def _tiny(tmp: Path, shared: Path, *extra: str) -> list[str]:
    return ["--out", str(tmp / "out"), "--cache-dir", str(shared / "cache"),
            "--sample-rate", str(SR), "--crop-seconds", "1.0", "--epochs", "1",
            "--swanlab-mode", "disabled", "--no-progress", "--set", "n_fft=256",
            "--set", "hop_length=128", "--set", "n_mels=32", "--set", "batch_size=8",
            "--set", f"synthetic={json.dumps(TINY)}", "--arms", "baseline", "--seeds", "0",
            *extra]


def _cli(argv: list[str], check: Callable[[], bool] | None = None,
         env: dict[str, str | None] | None = None) -> Obs:
    """``experiments.ablate.main(argv)`` in-process, stdout/stderr captured; ``env``
    values of ``None`` are unset for the call."""
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    for k, v in (env or {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                rc = ablate.main(argv)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
    except _Timeout:
        raise
    except Exception:
        return Obs(exc=traceback.format_exc())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = err.getvalue()
    if "Traceback" in text:
        return Obs(exc=text, rc=rc)
    if rc != 0:
        return Obs(error=text.strip(), rc=rc)
    return Obs(warned=text, check=None if check is None else bool(check()), rc=rc,
               stdout=out.getvalue())


def _write(path: Path, x: np.ndarray, subtype: str = "PCM_16", sr: int = SR,
           fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype, format=fmt)
    return path


def _tone(k: int = 0, n: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n) / SR
    return (amp * np.sin(2 * np.pi * (150 + 40 * k) * t)).astype(np.float32)


def _tree(root: Path, counts: dict[str, int] | None = None, n: int = SR) -> Path:
    for c, (name, k) in enumerate(sorted((counts or {"a": 5, "b": 5}).items())):
        for i in range(k):
            _write(root / name / f"{name}{i}.wav", _tone(3 * c + i, n))
    return root


def _data(root: Path, cache: Path, expect_ids: Callable[[list[str]], bool] | None = None,
          split: str = "holdout", check_ds: Callable[[object], bool] | None = None,
          **load_kwargs) -> Obs:
    """load_dataset then make_splits, as the runner does."""

    def go():
        ds = decode.load_dataset(root, SR, cache, progress=False, **load_kwargs)
        make_splits(ds, split)
        return ds

    def check(ds):
        return ((expect_ids is None or expect_ids(ds.ids))
                and (check_ds is None or check_ds(ds)))

    return _lib(go, check)


# ---------------------------------------------------------------------------
# The cases


class _Cases(list):
    """The sweep's cases, in order; :meth:`add` registers one (a decorator)."""

    def __init__(self, shared: Path) -> None:
        super().__init__()
        self.shared = shared  # what cases share: the decode cache, the synthetic set

    def add(self, name: str, category: str, what: str, tokens, ok_expected: bool = False,
            doc: tuple[str, ...] | str = ()):
        doc = (doc,) if isinstance(doc, str) else tuple(doc)

        def deco(fn: Callable[[Path], Obs]) -> Callable[[Path], Obs]:
            self.append(Case(name, category, what, fn, tuple(tokens), ok_expected, doc))
            return fn
        return deco


# ---------------------------------------------------------------------------
# Classify


def classify(case: Case, obs: Obs) -> tuple[str, str]:
    """``(outcome, what it said)`` of one case: an outcome of :data:`OUTCOMES`."""
    if obs.lost:
        return "data loss", (obs.error or obs.warned or "finished results lost")[:200]
    if obs.verdict is not None:
        return obs.verdict[0], obs.verdict[1][:200]
    if obs.exc is not None:
        lines = [ln for ln in obs.exc.strip().splitlines() if ln.strip()]
        return "traceback", lines[-1][:200] if lines else "exception"
    if obs.error is not None:
        msg = obs.error.strip()
        named = all(t in msg for t in case.tokens)
        last = msg.splitlines()[-1] if msg else ""
        usage = msg.startswith("usage:")  # argparse: a usage line, then one error line
        if obs.check is False:
            return "silent change", last[:200]
        if not named:
            return "cryptic error", last[:200]
        body = [ln for ln in msg.splitlines() if ln.strip() and not ln.startswith("warning:")
                and not ln.startswith("run ")]
        if len(body) > (2 if usage else 1):
            return "cryptic error", f"{len(body)} lines: {last[:150]}"
        return "one-line error", last[:200]
    if obs.check is False:
        return "silent change", "the result is wrong" + (f" ({obs.warned[:100]})"
                                                         if obs.warned else "")
    if case.tokens and all(t in obs.warned for t in case.tokens):
        lines = obs.warned.splitlines()
        first = next((ln for ln in lines if all(t in ln for t in case.tokens)),
                     next((ln for ln in lines if case.tokens[0] in ln), lines[0]))
        return "named warning + correct result", first.strip()[:200]
    if case.ok_expected and not case.tokens:
        return "correct result", "ok" + (f"; warned: {obs.warned[:80]}" if obs.warned else "")
    return "silent change", "no error, and no warning naming " + ", ".join(case.tokens)
