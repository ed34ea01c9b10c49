"""A named training chain: waveform steps, frontend, spectrogram steps, target steps.

Also the chain as JSON: :meth:`Compose.to_config`, :meth:`Compose.from_config`,
:func:`save_compose` and :func:`load_compose`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import os
import re
import secrets
import sys
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .. import functional as F
from ._base import (
    ARGS_ATTR,
    CONFIG_CLASSES,
    Params,
    RandomTransform,
    Unsaved,
    check_int,
    check_lengths,
    check_ndim,
)

#: The version of the format :meth:`Compose.to_config` writes; :meth:`Compose.from_config`
#: reads it and every older one.
CONFIG_FORMAT = 1
#: The keys of a config (:meth:`Compose.to_config`) and of one step in it.
CONFIG_KEYS = ("augkit", "format", "num_classes", "disabled", "steps")
STEP_KEYS = ("name", "transform", "args")


def _snake(name: str) -> str:
    """``MelFrontend`` -> ``mel_frontend``, ``AmplitudeToDB`` -> ``amplitude_to_db``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def name_steps(items, label: str, check=None) -> OrderedDict[str, nn.Module]:
    """Name each of ``items`` (modules or ``(name, module)`` pairs) as :class:`Compose` does.

    Unnamed modules get their class name in snake case (``gain``, ``gain_2``, ...).
    ``check(i, module)`` validates each module first; ``label`` starts the messages
    about names (``"Compose step name"``).
    """
    named: OrderedDict[str, nn.Module] = OrderedDict()
    for i, item in enumerate(items):
        name, module = item if isinstance(item, tuple) and len(item) == 2 else (None, item)
        if check is not None:
            check(i, module)
        if name is None:
            base = name = _snake(type(module).__name__)
            k = 2
            while name in named:
                name, k = f"{base}_{k}", k + 1
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{label} {name!r} must be a non-empty string without '.'")
        if name in named:
            raise ValueError(f"{label} {name!r} is used twice")
        named[name] = module
    return named


def _check_step(i: int, module) -> None:
    if not isinstance(module, nn.Module):
        raise ValueError(f"Compose steps must be nn.Modules, got {type(module).__name__}")


class Compose(nn.Module):
    """Apply steps in order; every step has a name and can be disabled.

    Random steps (:class:`RandomTransform`) take their share of ``params``, the
    ``generator`` and the targets; other modules (:class:`MelFrontend`,
    :class:`AmplitudeToDB`, any ``nn.Module``) are called as ``step(x)``, and
    those with ``takes_lengths = True`` (the normalisers, e.g.
    :class:`Standardize`) as ``step(x, lengths=lengths)``. One chain thus goes
    waveform -> augment -> frontend -> augment -> normalise -> Mixup.

    ``lengths`` (valid samples per example) follow the chain: a step with a
    ``frames(lengths)`` method (:class:`MelFrontend`) turns them into valid
    frames, steps with ``takes_lengths`` or ``keeps_lengths``
    (:class:`AmplitudeToDB`) and random steps keep them, any other module drops
    them (the steps after it get ``None``).

    ``chain(x)`` returns ``x``. ``chain(x, target=y)`` (or ``chain(x, y)``) returns
    ``(x, soft_target)`` with ``soft_target`` float ``(B, K)``, in ``eval()`` too:
    class indices are one-hot encoded first (``num_classes`` from the argument
    or from a step that has one, e.g. ``Mixup(num_classes=10)``; steps that
    disagree with it are an error at construction), then steps with
    ``uses_target`` (Mixup) transform them. Targets and ``lengths`` are checked
    once, here: shapes always, values on the CPU or with ``check=True`` (see
    :meth:`RandomTransform.forward`).

    The chain is saved as JSON with :meth:`to_config` (or :func:`save_compose`) and
    built again with :meth:`from_config` (or :func:`load_compose`), with augkit alone.

    Args:
        steps: Modules as a list (named after their class in snake case, with a
            numeric suffix on repeats), a list of ``(name, module)`` pairs, or a
            mapping ``name -> module``.
        disabled: Names of steps to skip. (Default: none)
        num_classes: Classes for one-hot targets; steps that have a
            ``num_classes`` must agree with it. (Default: from the steps)

    Example:
        >>> aug = Compose([Gain(), MelFrontend(16000), TimeMasking(20), Mixup(num_classes=3)])
        >>> aug.names
        ['gain', 'mel_frontend', 'time_masking', 'mixup']
        >>> x, y = aug(torch.randn(4, 1, 16000), target=torch.tensor([0, 1, 2, 0]))
        >>> tuple(x.shape), tuple(y.shape)
        ((4, 1, 128, 81), (4, 3))
        >>> aug.disable("gain").names  # still listed; skipped from now on
        ['gain', 'mel_frontend', 'time_masking', 'mixup']
    """

    def __init__(self, steps: Iterable[nn.Module] | Iterable[tuple[str, nn.Module]]
                 | Mapping[str, nn.Module], disabled: Iterable[str] = (),
                 num_classes: int | None = None) -> None:
        super().__init__()
        items = list(steps.items()) if isinstance(steps, Mapping) else list(steps)
        named = name_steps(items, "Compose step name", _check_step)
        self.steps = nn.ModuleDict(named)
        self.disabled: frozenset[str] = frozenset()
        self.disable(*disabled)
        found = {name: m.num_classes for name, m in named.items()
                 if getattr(m, "num_classes", None) is not None}
        if num_classes is not None:
            num_classes = check_int("num_classes", num_classes, 1)
            for name, k in found.items():
                if k != num_classes:
                    raise ValueError(f"Compose(num_classes={num_classes}) but step {name!r} "
                                     f"({type(named[name]).__name__}) has num_classes={k}; "
                                     "give them the same value")
        elif len(set(found.values())) > 1:
            raise ValueError(f"Compose steps disagree on num_classes: {found}; give them "
                             "the same value")
        elif found:
            num_classes = next(iter(found.values()))
        self.num_classes = num_classes
        self.last_params: dict[str, Params] = {}

    @property
    def names(self) -> list[str]:
        return list(self.steps.keys())

    def _check(self, names: Iterable[str]) -> set[str]:
        names = set(names)
        unknown = names - set(self.steps.keys())
        if unknown:
            raise ValueError(f"unknown Compose step(s) {sorted(unknown)}; steps are {self.names}")
        return names

    def disable(self, *names: str) -> Compose:
        """Skip the named steps from now on; returns ``self``."""
        self.disabled = frozenset(self.disabled | self._check(names))
        return self

    def enable(self, *names: str) -> Compose:
        """Run the named steps again; returns ``self``."""
        self.disabled = frozenset(self.disabled - self._check(names))
        return self

    def __getitem__(self, name: str) -> nn.Module:
        return self.steps[name]

    def forward(self, x: Tensor, params: Mapping[str, Params] | None = None,
                generator: torch.Generator | None = None, *, target: Tensor | None = None,
                lengths: Tensor | None = None, check: bool | None = None):
        """Run the enabled steps.

        Args:
            x: Input batch for the first step.
            params: ``{step name: params}`` from an earlier call's ``last_params``,
                replayed for those steps (on a batch of the same size); other
                random steps draw anew. A name that is not a step is an error. A
                tensor here is taken as ``target`` (``chain(x, labels)``).
            generator: Optional generator shared by the random steps.
            target: Optional ``(B,)`` integer class indices or ``(B, K)`` soft targets.
            lengths: Optional valid samples per example ``(B,)`` of the input, an
                integer tensor on ``x``'s device, passed to the random steps and to
                modules with ``takes_lengths``; a step with a ``frames(lengths)``
                method (the frontend) converts them to valid frames, a module with
                neither (nor ``keeps_lengths``) drops them.
            check: Check the values of ``target`` and ``lengths``: ``None`` on the
                CPU only (on CUDA it is a host sync), ``True`` always, ``False``
                never; see :meth:`RandomTransform.forward`.

        Returns:
            The last step's output, or ``(output, soft targets (B, K) float)`` when
            ``target`` is given.
        """
        params, target = self._check_call(x, params, target, lengths, check)
        used: dict[str, Params] = {}
        for name, step in self.steps.items():
            if name in self.disabled:
                continue
            if isinstance(step, RandomTransform):
                p = None if params is None else params.get(name)
                # Targets and lengths were checked above: the steps skip the value checks.
                if target is None:
                    x = step(x, p, generator, lengths=lengths, check=False)
                else:
                    x, target = step(x, p, generator, target=target, lengths=lengths,
                                     check=False)
                if step.training:
                    used[name] = step.last_params
            elif getattr(step, "takes_lengths", False):
                x = step(x, lengths=lengths)
            else:
                x = step(x)
                if lengths is not None and callable(getattr(step, "frames", None)):
                    lengths = step.frames(lengths)
                elif not getattr(step, "keeps_lengths", False):
                    lengths = None
        self.last_params = used
        return x if target is None else (x, target)

    def _check_call(self, x, params, target, lengths, check: bool | None):
        """``(params, target)`` checked; a tensor as ``params`` is the targets."""
        if isinstance(params, Tensor):  # chain(x, labels), torchvision-style
            if target is not None:
                raise TypeError("Compose: got targets twice (a tensor as params and target=); "
                                "params must be a dict from last_params")
            params, target = None, params
        if params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(f"Compose: params must be a dict step name -> params (an "
                                f"earlier call's last_params), got {type(params).__name__}")
            unknown = sorted(set(params) - set(self.steps.keys()))
            if unknown:
                raise ValueError(f"Compose: params name unknown step(s) {unknown}; steps are "
                                 f"{self.names}")
        if target is not None or lengths is not None:
            check_ndim("Compose", x, tuple(range(1, 8)), "a batch (B, ...)")
        if target is not None:
            target = F.soft_targets(target, self.num_classes, batch=x.shape[0], check=check,
                                    owner="Compose")
        if lengths is not None:
            check_lengths("Compose", x, lengths, check)
        return params, target

    def extra_repr(self) -> str:
        return f"disabled={sorted(self.disabled)}" if self.disabled else ""

    # --- the chain as JSON --------------------------------------------------------------

    def to_config(self) -> dict:
        """The chain as a JSON-able dict: what builds it again, with augkit alone.

        Every step is recorded as its class name and the arguments it was built
        with (every public augkit module keeps them; the defaults it was not given
        are left out), tuples as lists; the modules inside a step (TrivialAugment's
        transforms, a nested Compose, Repeat's chain) in the same form. ``p`` and
        ``same_on_batch`` are the steps' current values (a search may set
        ``chain[name].p``); other attributes changed after construction are not
        seen. Also recorded: the step names, the disabled steps and
        ``num_classes``. Not recorded: tensors in the ``state_dict`` (fitted
        :class:`FrequencyStandardize` statistics: save and load them with
        ``state_dict``) and ``train()``/``eval()``.

        Returns:
            ``{"augkit": version, "format": 1, "num_classes": K or None,
            "disabled": [names], "steps": [{"name": ..., "transform": class name,
            "args": {...}}, ...]}``; ``json.dumps`` takes it as it is.

        Raises:
            ValueError: A step that is not a public augkit module (``nn.Identity``,
                a subclass of your own), or an argument JSON cannot hold (a tensor
                bank such as ``BackgroundNoise(noises=tensor)``, a generator, inf),
                named with its step; build such a step in code (a bank given as a
                folder is a string, and is recorded).

        Example:
            >>> chain = Compose([Gain(gain_db=(-6, 6), p=0.8), MelFrontend(16000, n_mels=64),
            ...                  TimeMasking(20)], disabled=["gain"])
            >>> config = chain.to_config()
            >>> first, *others = config["steps"]
            >>> first
            {'name': 'gain', 'transform': 'Gain', 'args': {'gain_db': [-6, 6], 'p': 0.8}}
            >>> config["disabled"], config["num_classes"]
            (['gain'], None)
            >>> again = Compose.from_config(json.loads(json.dumps(config)))
            >>> again.names, sorted(again.disabled), again["mel_frontend"].n_mels
            (['gain', 'mel_frontend', 'time_masking'], ['gain'], 64)
            >>> x = torch.randn(2, 1, 16000)  # (B, C, T) -> (B, C, n_mels, frames)
            >>> y = again.eval()(x)
            >>> tuple(y.shape), torch.equal(chain.eval()(x), y)
            ((2, 1, 64, 81), True)
        """
        return {"augkit": _version(), "format": CONFIG_FORMAT, **_compose_args(self)}

    @classmethod
    def from_config(cls, config: Mapping) -> Compose:
        """Build the chain :meth:`to_config` describes (e.g. read from a JSON file).

        Every step, and every module inside one, is built by its class name from
        augkit's public classes only (nothing else is imported or evaluated), with
        its recorded arguments; JSON lists are passed as tuples. The chain is new:
        in ``train()`` mode, with new parameters and buffers (load a
        ``state_dict`` for fitted statistics).

        Args:
            config: A dict as :meth:`to_config` returns, or as ``json.load`` reads
                a saved one (format ``1``).

        Returns:
            A new :class:`Compose` with the config's steps, names, disabled steps
            and ``num_classes``.

        Raises:
            ValueError: One line naming the step: an unknown transform name, an
                argument the transform refuses (its own message), a key a config
                does not have, or a format newer than this augkit reads.

        Example:
            >>> config = {"format": 1, "steps": [
            ...     {"name": "gain", "transform": "Gain", "args": {"gain_db": [-6, 6]}},
            ...     {"name": "noise", "transform": "ColoredNoise", "args": {"p": 1.0}}]}
            >>> Compose.from_config(config).names
            ['gain', 'noise']
            >>> Compose.from_config({"format": 1, "steps": [{"transform": "Gian"}]})
            Traceback (most recent call last):
            ...
            ValueError: Compose.from_config: step 0: unknown transform 'Gian' (did you mean...
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"Compose.from_config: config must be a dict (as to_config "
                             f"returns it), got {type(config).__name__}")
        _check_format(config)
        steps = config.get("steps")
        if not isinstance(steps, (list, tuple)):
            raise ValueError(f"Compose.from_config: 'steps' must be a list of steps, got "
                             f"{type(steps).__name__}")
        disabled = config.get("disabled", [])
        if not isinstance(disabled, (list, tuple)):
            raise ValueError(f"Compose.from_config: 'disabled' must be a list of step names, "
                             f"got {disabled!r}")
        built = []
        for i, spec in enumerate(steps):
            name = spec.get("name") if isinstance(spec, Mapping) else None
            module = _build(spec, f"step {name!r}" if isinstance(name, str) else f"step {i}")
            built.append(module if name is None else (name, module))
        try:
            return cls(built, disabled=disabled, num_classes=config.get("num_classes"))
        except (TypeError, ValueError) as e:
            raise ValueError(f"Compose.from_config: {_one_line(e)}") from e


def _version() -> str:
    """augkit's version (the package is imported before any of its modules)."""
    return str(getattr(sys.modules.get("augkit"), "__version__", "unknown"))


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


# --- to_config -----------------------------------------------------------------------------

def _compose_args(chain: Compose, where: str | None = None, path: str = "") -> dict:
    """``{"num_classes", "disabled", "steps"}`` of ``chain`` as it is now. The steps of
    the outermost chain are named by ``where``; those of a nested one by ``path``."""
    steps = []
    for name, step in chain.steps.items():
        if where is None:
            spec = _module_spec(step, f"step {name!r} ({type(step).__name__})", "")
        else:
            spec = _module_spec(step, where, _join(path, f"steps.{name}"))
        steps.append({"name": name, **spec})
    return {"num_classes": chain.num_classes, "disabled": sorted(chain.disabled),
            "steps": steps}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _refuse(where: str, path: str, what: str) -> ValueError:
    argument = f" argument {path!r}" if path else ""
    return ValueError(f"Compose.to_config: {where}{argument} {what}")


def _module_spec(module: nn.Module, where: str, path: str) -> dict:
    """``{"transform": class name, "args": {...}}`` of one augkit module, JSON-able."""
    cls = type(module)
    if CONFIG_CLASSES.get(cls.__name__) is not cls:  # `where` names a step's own class
        what = f"({cls.__name__}) is" if path else "is"
        raise _refuse(where, path, f"{what} not an augkit module (from_config builds "
                      "augkit's public classes only); build that step in code")
    if isinstance(module, Compose):
        return {"transform": cls.__name__, "args": _compose_args(module, where, path)}
    record = module.__dict__.get(ARGS_ATTR)
    if record is None:
        raise _refuse(where, path, "has no recorded constructor arguments (was it built by "
                      "its constructor?); build that step in code")
    args = dict(record)
    if isinstance(module, RandomTransform):
        _current_gate(module, args)
    return {"transform": cls.__name__,
            "args": {k: _jsonable(v, where, _join(path, k)) for k, v in args.items()}}


def _current_gate(module: RandomTransform, args: dict) -> None:
    """``p`` and ``same_on_batch`` as the module has them now, where they differ."""
    params = inspect.signature(type(module)).parameters
    for name in ("p", "same_on_batch"):
        if name in params:
            given = args.get(name, params[name].default)
            now = getattr(module, name)
            if given is inspect.Parameter.empty or now != given:
                args[name] = now


def _jsonable(value, where: str, path: str):
    """A recorded argument in JSON's types; modules as nested specs."""
    if isinstance(value, Unsaved):
        raise _refuse(where, path, f"is a {value.what}, which JSON cannot hold; build that "
                      "step in code")
    if isinstance(value, nn.Module):
        return _module_spec(value, where, path)
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], nn.Module)):  # a (name, module) entry
        return {"name": value[0], **_module_spec(value[1], where, path)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _jsonable(v, where, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise _refuse(where, path, f"is {value}, which JSON cannot hold; build that step "
                      "in code")
    return value


# --- from_config -----------------------------------------------------------------------------

def _check_format(config: Mapping) -> None:
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise ValueError(f"Compose.from_config: unknown key(s) {unknown}; a config has "
                         f"{list(CONFIG_KEYS)}")
    fmt = config.get("format")
    if fmt is None:
        raise ValueError("Compose.from_config: the config has no 'format'; is it a dict "
                         "from Compose.to_config?")
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise ValueError(f"Compose.from_config: 'format' must be a positive integer, got "
                         f"{fmt!r}")
    if fmt > CONFIG_FORMAT:
        raise ValueError(f"Compose.from_config: the config's format {fmt} (augkit "
                         f"{config.get('augkit', '?')}) is newer than this augkit "
                         f"({_version()}) reads ({CONFIG_FORMAT}); upgrade augkit")


def _build(spec, where: str) -> nn.Module:
    """The module ``spec`` (``{"transform": name, "args": {...}}``) describes."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("transform"), str):
        raise ValueError(f"Compose.from_config: {where} must be a dict with a 'transform' "
                         f"(class name) and its 'args', got {spec!r:.80}")
    unknown = sorted(str(k) for k in spec if k not in STEP_KEYS)
    if unknown:
        raise ValueError(f"Compose.from_config: {where} has unknown key(s) {unknown}; a "
                         f"step has {list(STEP_KEYS)}")
    name = spec["transform"]
    cls = CONFIG_CLASSES.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, CONFIG_CLASSES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"Compose.from_config: {where}: unknown transform {name!r}{hint}; "
                         "from_config builds augkit's public classes only")
    args = spec.get("args", {})
    if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
        raise ValueError(f"Compose.from_config: {where} ({name}): 'args' must be a dict "
                         f"argument name -> value, got {args!r:.80}")
    where = f"{where} ({name})"
    kwargs = {k: _python(v, where, k) for k, v in args.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Compose.from_config: {where}: {_one_line(e)}") from e


def _python(value, where: str, path: str):
    """A config value as the constructor takes it: lists as tuples, specs as modules."""
    if isinstance(value, Mapping) and "transform" in value:
        module = _build(value, f"{where} argument {path!r}")
        return (value["name"], module) if "name" in value else module
    if isinstance(value, (list, tuple)):
        return tuple(_python(v, where, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping):
        return {k: _python(v, where, f"{path}[{k!r}]") for k, v in value.items()}
    return value


# --- files ---------------------------------------------------------------------------------

def save_compose(chain: Compose, path: str | os.PathLike) -> Path:
    """Write ``chain.to_config()`` to ``path`` as JSON, atomically.

    The file is written beside ``path`` under a temporary name and moved over it
    with ``os.replace``: a reader sees the old file or the new one, never half of
    one. Read it back with :func:`load_compose`.

    Args:
        chain: The :class:`Compose` to save.
        path: The JSON file to write (its folder must exist).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: What :meth:`Compose.to_config` refuses (a step or an argument
            JSON cannot hold); nothing is written then.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> path = save_compose(Compose([Gain(gain_db=(-6, 6)), TimeMasking(20)]),
        ...                     f"{folder}/recipe.json")
        >>> load_compose(path).names
        ['gain', 'time_masking']
    """
    if not isinstance(chain, Compose):
        raise TypeError(f"save_compose: chain must be an augkit Compose, got "
                        f"{type(chain).__name__}; wrap a single step as Compose([step])")
    text = json.dumps(chain.to_config(), indent=2, allow_nan=False) + "\n"
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save_compose: the folder of {path} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_compose(path: str | os.PathLike) -> Compose:
    """The :class:`Compose` saved in the JSON file ``path`` (:func:`save_compose`).

    Args:
        path: A JSON file holding a :meth:`Compose.to_config` dict, or a dict with it
            under ``"compose"`` (the ``recipe.json`` that ``python -m
            experiments.search`` writes: the runner's settings beside the chain).

    Returns:
        A new chain, as :meth:`Compose.from_config` builds it.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not JSON, or :meth:`Compose.from_config` refuses
            it; one line that names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"load_compose: no such file {path}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"load_compose: {path} is not JSON: {e}") from None
    if isinstance(config, dict) and isinstance(config.get("compose"), dict):
        config = config["compose"]
    try:
        return Compose.from_config(config)
    except ValueError as e:
        raise ValueError(f"load_compose: {path}: {e}") from e
