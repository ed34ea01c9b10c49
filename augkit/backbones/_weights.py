"""Pretrained weights: local files, and timm's hub weights fetched without hanging offline."""

from __future__ import annotations

import math
import os
import pickle
import socket
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from timm.models import get_pretrained_cfg
from torch import Tensor, nn

StateDict = dict[str, Tensor]

_TORCH_SUFFIXES = (".pth", ".pt", ".bin")
_NESTING_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "model.")
_SAFE_TWINS = {"pytorch_model.bin": "model.safetensors",
               "open_clip_pytorch_model.bin": "open_clip_model.safetensors"}
_TIMEOUT_S = 3.0
_SHOW = 5  # keys listed in an error message
_PATH_HINT = ("Pass a local weights file instead: "
              "create_backbone(..., pretrained='/path/to/weights.safetensors').")


# --------------------------------------------------------------------------- local files

def read_state_dict(path: str | os.PathLike) -> StateDict:
    """Read a weights file into a flat ``{name: tensor}`` dict on the CPU.

    ``.safetensors`` files are read with ``safetensors.torch.load_file``;
    ``.pth``/``.pt``/``.bin`` with ``torch.load(weights_only=True)``, which refuses
    pickled objects other than tensors and plain containers. Checkpoints nested
    under ``state_dict``/``model``/``model_state_dict`` are unwrapped.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the suffix is not supported.
        RuntimeError: If the file holds something other than a dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        obj = load_file(str(path), device="cpu")
    elif suffix in _TORCH_SUFFIXES:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise RuntimeError(
                f"refusing to load {path}: it pickles objects other than tensors "
                f"(torch.load weights_only=True failed: {err})") from err
    else:
        raise ValueError(
            f"pretrained file must end in .safetensors, {', '.join(_TORCH_SUFFIXES)}; got {path}")

    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise RuntimeError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def _first_conv_and_classifier(model: nn.Module) -> tuple[str | None, list[str]]:
    """Module names of the input conv and the classifier(s), from timm's cfg if present."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    first_conv = cfg.get("first_conv")
    if isinstance(first_conv, (list, tuple)):
        first_conv = first_conv[0] if first_conv else None
    if first_conv is None:
        first_conv = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    classifier = cfg.get("classifier")
    if classifier is None and hasattr(model, "get_classifier"):
        head = model.get_classifier()
        classifier = next((n for n, m in model.named_modules() if m is head), None)
    if classifier is None:
        classifiers = []
    elif isinstance(classifier, str):
        classifiers = [classifier]
    else:
        classifiers = list(classifier)
    return first_conv, classifiers


def adapt_conv_weight(weight: Tensor, in_chans: int) -> Tensor:
    """First-conv weights ``(O, I, kH, kW)`` -> ``(O, in_chans, kH, kW)``, timm's rule.

    One channel: the sum over the ``I`` input channels. More: the channels
    repeated and truncated to ``in_chans``, scaled by ``I / in_chans`` so the
    activation scale is kept. (timm's ``adapt_input_conv`` does the same, but
    before timm 1.0.31 it only accepts ``I == 3``.)
    """
    dtype, i = weight.dtype, weight.shape[1]
    w = weight.float()
    if in_chans == 1:
        w = w.sum(dim=1, keepdim=True)
    else:
        w = w.repeat(1, math.ceil(in_chans / i), 1, 1)[:, :in_chans] * (i / in_chans)
    return w.to(dtype)


def load_state_dict_into(model: nn.Module, state_dict: StateDict, source: str | os.PathLike
                         ) -> None:
    """Load ``state_dict`` into ``model``, adapting the input conv and the classifier.

    - The first conv's weight (``conv1.weight`` for timm ResNets) is converted with
      :func:`adapt_conv_weight` (timm's rule) when its input channels differ from the model's
      (summed for 1 channel, repeated and rescaled for more).
    - Classifier weights (``fc.weight``/``fc.bias``) whose shape differs from the
      model's (another ``num_classes``) are dropped with a warning, and the head
      keeps its random init; so does a head missing from the file.
    - A ``module.`` (DDP) or ``model.`` (saved with an :class:`InputAdapter`)
      prefix on every key is stripped when the model's own keys lack it.
    - Anything else must match exactly.

    Args:
        model: The freshly built backbone.
        state_dict: Weights, e.g. from :func:`read_state_dict`. Not modified.
        source: Where the weights came from, for messages.

    Raises:
        RuntimeError: Listing missing, unexpected or mis-shaped keys.
    """
    own = model.state_dict()
    for prefix in _PREFIXES:  # DDP's "module.", or a model saved with its InputAdapter
        if (state_dict and all(k.startswith(prefix) for k in state_dict)
                and not all(k.startswith(prefix) for k in own)):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    state_dict = dict(state_dict)
    first_conv, classifiers = _first_conv_and_classifier(model)

    conv_key = f"{first_conv}.weight"
    if conv_key in state_dict and conv_key in own:
        weight, target = state_dict[conv_key], own[conv_key]
        if weight.ndim == 4 and weight.shape[1] != target.shape[1]:
            state_dict[conv_key] = adapt_conv_weight(weight, target.shape[1])

    head_keys = [k for c in classifiers for k in own if k.startswith(f"{c}.")]
    if any(k in state_dict and state_dict[k].shape != own[k].shape for k in head_keys):
        for k in head_keys:
            state_dict.pop(k, None)
    missing = [k for k in own if k not in state_dict and k not in head_keys]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
                  for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:_SHOW])}"
                + (", ..." if len(keys) > _SHOW else "")
                for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", mismatched)) if keys]
    if problems:
        raise RuntimeError(
            f"pretrained weights in {source} do not fit {type(model).__name__}: "
            + "; ".join(problems))
    if any(k not in state_dict for k in head_keys):
        warnings.warn(
            f"classifier {', '.join(classifiers)}: {source} has no weights of the model's shape "
            "(num_classes differs?); the head was re-initialised", stacklevel=3)
    model.load_state_dict(state_dict, strict=False)  # only the dropped head can be missing


# --------------------------------------------------------------------------- hub weights

def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _offline() -> bool:
    # Read the environment now: huggingface_hub freezes HF_HUB_OFFLINE at import.
    return _is_true(os.environ.get("HF_HUB_OFFLINE")) or _is_true(
        os.environ.get("TRANSFORMERS_OFFLINE"))


def _hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    default_home = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.environ.get("HF_HOME", default_home)).expanduser() / "hub"


def _hf_filenames(cfg) -> list[str]:
    # The files timm's load_state_dict_from_hf tries, in order: a safetensors twin first.
    name = cfg.hf_hub_filename or "pytorch_model.bin"
    safe = _SAFE_TWINS.get(name, name[:-4] + ".safetensors" if name.endswith(".bin") else None)
    return [safe, name] if safe else [name]


def _torch_hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _cached_weights(cfg) -> Path | None:
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        for filename in _hf_filenames(cfg):
            found = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir(),
                                           revision=revision or None)
            if isinstance(found, str):
                return Path(found)
    if cfg.url and _torch_hub_file(cfg.url).is_file():
        return _torch_hub_file(cfg.url)
    return None


def _reachable(host: str, port: int, timeout: float = _TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The probe runs in a daemon thread so that a slow DNS lookup cannot block us either.
    """
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def _host_and_port(cfg) -> tuple[str, int]:
    """The host a download would connect to first: the HTTPS proxy if set, else the hub."""
    url = os.environ.get("HF_ENDPOINT", "https://huggingface.co") if cfg.hf_hub_id else cfg.url
    url = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or url
    parsed = urlparse(url if "://" in url else f"http://{url}")
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def _download(cfg) -> Path:
    if cfg.hf_hub_id:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        *first, last = _hf_filenames(cfg)
        for filename in first:
            try:
                return Path(hf_hub_download(repo_id, filename, revision=revision or None,
                                            cache_dir=_hf_cache_dir()))
            except EntryNotFoundError:
                pass
        return Path(hf_hub_download(repo_id, last, revision=revision or None,
                                    cache_dir=_hf_cache_dir()))
    target = _torch_hub_file(cfg.url)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(cfg.url, str(target), progress=False)
    return target


def hub_weights_file(model_name: str) -> Path:
    """Local path of timm's default pretrained weights for ``model_name``.

    Looks in the Hugging Face cache (``HF_HUB_CACHE``, ``HF_HOME``) and torch hub's
    checkpoint dir first. Otherwise downloads, but only when ``HF_HUB_OFFLINE`` is
    unset and the host answers within 3 s, so an offline machine fails fast.

    Raises:
        ValueError: If timm has no pretrained weights for ``model_name``.
        RuntimeError: If the weights are not cached and cannot be fetched.
    """
    cfg = get_pretrained_cfg(model_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ValueError(f"timm has no pretrained weights for {model_name!r}")
    cached = _cached_weights(cfg)
    if cached is not None:
        return cached
    what = f"pretrained weights for {model_name!r} could not be fetched"
    if _offline():
        raise RuntimeError(f"{what}: offline mode (HF_HUB_OFFLINE) is on and they are not "
                           f"in the local cache ({_hf_cache_dir()}). {_PATH_HINT}")
    host, port = _host_and_port(cfg)
    if not _reachable(host, port):
        raise RuntimeError(f"{what}: {host}:{port} is unreachable (offline?). {_PATH_HINT}")
    try:
        return _download(cfg)
    except Exception as err:
        raise RuntimeError(f"{what} ({type(err).__name__}: {err}). {_PATH_HINT}") from err
