"""What `pip install augkit` gives: the wheel, its dependencies, and a library that runs on them.

- the wheel holds ``augkit`` only (no ``experiments``), ``py.typed`` and the
  licence, and declares torch, torchaudio, numpy and scipy as its only core
  dependencies, the rest as the extras ``pyproject.toml`` lists;
- a chain runs in a Python whose imports of every other installed package are
  blocked (CI);
- ``slow``: the wheel installed into a fresh venv runs a chain;
- ``augkit/transforms/`` imports only its base, ``augkit.functional`` and
  ``augkit.banks`` (a few sibling imports are allowed, each with its reason), and
  every transform's docstring is the literal one in its source.
"""

from __future__ import annotations

import ast
import email
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import augkit

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CORE = {"torch", "torchaudio", "numpy", "scipy"}
EXTRAS = {"backbones", "io", "runner", "ray", "docs", "dev"}
#: Installed in the dev environment, never needed by the library itself.
NOT_CORE = ("timm", "safetensors", "soundfile", "pandas", "sklearn", "matplotlib", "swanlab",
            "tqdm", "ray", "torchvision", "librosa", "experiments", "benchmarks", "hypothesis",
            "torch_audiomentations", "audiomentations", "pyroomacoustics", "pyloudnorm")


# --------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from the checkout's files (tracked or not ignored), as `pip wheel .`."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout (the wheel is built from its files)")
    src = tmp_path_factory.mktemp("src")
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # listed but deleted in the work tree: skip
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                          "--no-build-isolation", "--no-cache-dir", "-q", "-w", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (path,) = out.glob("augkit-*.whl")
    return path


def test_the_wheel_holds_the_library_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"augkit-{augkit.__version__}.dist-info/"
    assert {n.split("/")[0] + "/" for n in names} == {"augkit/", dist_info}, names
    assert "augkit/py.typed" in names
    assert "augkit/transforms/trivial_augment.py" in names and "augkit/banks.py" in names
    assert any(n.startswith(dist_info) and n.endswith("/LICENSE") for n in names), names
    licence = next(n for n in names if n.endswith("/LICENSE"))
    assert "MIT License" in zipfile.ZipFile(wheel).read(licence).decode()


def test_the_wheel_declares_core_dependencies_and_the_extras(wheel):
    meta = email.message_from_bytes(zipfile.ZipFile(wheel).read(
        f"augkit-{augkit.__version__}.dist-info/METADATA"))
    assert meta["Version"] == augkit.__version__  # one source: augkit.__version__
    assert "version" not in PYPROJECT["project"]
    assert meta["License-Expression"] == "MIT"
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    core = {r.name for r in requires if r.marker is None}
    assert core == CORE
    assert set(meta.get_all("Provides-Extra")) == EXTRAS
    for extra in EXTRAS:
        got = {str(Requirement(str(r)).name) + str(sorted(r.extras))
               for r in requires if r.marker is not None and r.marker.evaluate({"extra": extra})}
        want = {Requirement(s).name + str(sorted(Requirement(s).extras))
                for s in PYPROJECT["project"]["optional-dependencies"][extra]}
        assert got == want, extra
    # the runner gets the backbones and file decoding; dev gets everything
    runner = PYPROJECT["project"]["optional-dependencies"]["runner"]
    assert "augkit[backbones,io]" in runner
    assert "augkit[runner,ray,docs]" in PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert not any("torchvision" in str(r) for r in requires)


# --------------------------------------------------------------------------- core imports only


def _core_modules() -> list[str]:
    """Top-level modules of the core dependencies and everything they require (no extras)."""
    todo, dists = list(CORE), set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in dists:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # an optional platform dependency that is not installed
        dists.add(name)
        todo += [r.name for r in map(Requirement, requires)
                 if r.marker is None or r.marker.evaluate({"extra": ""})]
    return sorted(module for module, owners in metadata.packages_distributions().items()
                  if any(canonicalize_name(d) in dists for d in owners))


BLOCKED_RUN = r'''
import importlib.abc, json, sys

ALLOWED = set(json.loads(sys.argv[1])) | {"augkit"}
attempts = []  # (module, the file whose code asked for it)

class CoreOnly(importlib.abc.MetaPathFinder):
    """Every import outside the standard library, augkit and the core closure fails."""
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ALLOWED or top.startswith("_sysconfigdata"):
            return None
        frame = sys._getframe(1)
        while frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        attempts.append((name, frame.f_code.co_filename))
        raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)

sys.meta_path.insert(0, CoreOnly())
for name in json.loads(sys.argv[2]):  # installed, so the blocker is what stops them
    try:
        __import__(name)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"the blocker let {name} through")
attempts.clear()

import torch
import augkit as ak
from augkit.banks import colored_noise_bank, synthetic_room_irs

sr = 16000
chain = ak.Compose([
    ak.Gain(p=1.0),
    ak.LowPassFilter(cutoff_hz=(1000, 4000), sample_rate=sr, p=1.0),
    ak.BackgroundNoise(colored_noise_bank(2, 0.5, sr), p=1.0),
    ak.ImpulseResponse(synthetic_room_irs(2, sr, rt60=(0.1, 0.2)), p=1.0),
    ak.Speed(p=1.0),
    ak.TimeStretch(p=1.0),
    ak.TrivialAugment([ak.PolarityInversion(), ak.GaussianNoise()]),
    ak.MelFrontend(sr, n_fft=512, hop_length=160, n_mels=64),
    ak.FrequencyMasking(8),
    ak.TimeMasking(10),
])
y = chain(torch.randn(4, 1, sr), generator=torch.Generator().manual_seed(0))
assert y.shape == (4, 1, 64, 101) and torch.isfinite(y).all(), y.shape
assert len(ak.TrivialAugment.cases) >= 1  # built from the registry when read
from augkit import *  # noqa: F403  (the backbone names are left out without timm)
used = sorted({(name, file) for name, file in attempts if "/augkit/" in file})

errors = []
for what in ("ak.create_backbone", "ak.backbones",
             "ak.banks.load_audio_folder('.', sr)"):
    try:
        eval(what)
    except ImportError as e:
        errors.append(str(e))
print(json.dumps({"attempts": used, "errors": errors}))
'''


def test_a_chain_runs_with_only_the_core_dependencies():
    blocked_but_installed = [m for m in NOT_CORE if find_spec(m) is not None]
    assert {"timm", "soundfile", "pandas", "experiments"} <= set(blocked_but_installed)
    res = subprocess.run([sys.executable, "-c", BLOCKED_RUN, json.dumps(_core_modules()),
                          json.dumps(blocked_but_installed)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # augkit imported no optional package; it only looks for timm (find_spec) to decide
    # whether `from augkit import *` exports the backbone names. torch's probes are its own.
    init = str(ROOT / "augkit" / "__init__.py")
    assert out["attempts"] in ([], [["timm", init]]), out["attempts"]
    backbone, module, folder = out["errors"]
    assert backbone == module == ("augkit.backbones needs timm: pip install "
                                  "'augkit[backbones]' (missing module: timm)")
    assert folder == "loading audio files needs soundfile: pip install 'augkit[io]'"


def test_backbone_names_are_augkits():
    import augkit.backbones

    assert set(augkit._BACKBONE_NAMES) == set(augkit.backbones.__all__)
    assert set(augkit._BACKBONE_NAMES) <= set(augkit.__all__)  # timm is installed here
    assert augkit.create_backbone is augkit.backbones.create_backbone


# --------------------------------------------------------------------------- a fresh venv


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path, request):
    """`pip install augkit-*.whl` (pins from constraints.txt) into a venv without site packages.

    The dependencies come from the configured index (PyPI or a mirror); skipped
    when it cannot be reached. torch and its CUDA libraries are several GB (about
    3 minutes from a local mirror), so this runs only when asked for by marker:
    ``pytest -m slow tests/test_packaging.py``.
    """
    expr = request.config.getoption("markexpr") or ""
    if "slow" not in expr or "not slow" in expr:
        pytest.skip("installs torch into a fresh venv (GBs, minutes): run it with -m slow")
    wheel = request.getfixturevalue("wheel")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    probe = subprocess.run([*pip, "download", "--no-deps", "-q", "-d", str(tmp_path / "probe"),
                            "-c", str(ROOT / "constraints.txt"), "scipy"],
                           capture_output=True, text=True, env=env, timeout=600)
    if probe.returncode != 0:
        pytest.skip(f"the package index cannot be reached: {probe.stderr.strip()[-300:]}")
    res = subprocess.run([*pip, "install", "-q", "-c", str(ROOT / "constraints.txt"),
                          str(wheel)], capture_output=True, text=True, env=env, timeout=3000)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True,
                            env=env, check=True).stdout
    installed = {canonicalize_name(d["name"]) for d in json.loads(listed)}
    assert CORE | {"augkit"} <= installed
    assert not installed & {canonicalize_name(m) for m in (*NOT_CORE, "scikit-learn")}

    code = textwrap.dedent("""
        import torch, augkit as ak
        chain = ak.Compose([ak.Gain(p=1.0), ak.HighPassFilter(sample_rate=8000, p=1.0),
                            ak.MelFrontend(8000, n_fft=256, n_mels=32), ak.TimeMasking(5)])
        y = chain(torch.randn(2, 1, 8000), generator=torch.Generator().manual_seed(0))
        print(ak.__file__, tuple(y.shape), bool(torch.isfinite(y).all()))
    """)
    run = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    where, shape = run.stdout.split(" ", 1)
    assert Path(where).is_relative_to(env_dir)  # the installed copy, not the checkout
    assert shape.strip() == "(2, 1, 32, 63) True"


# --------------------------------------------------------------------------- transforms/ imports

TRANSFORMS = ROOT / "augkit" / "transforms"
#: What a transform module may import from augkit.
ALLOWED = re.compile(r"augkit\.(functional(\..*)?|banks|transforms\.(_base|_normalizer))$")
#: Sibling imports with a reason: (file, module) -> why.
SIBLINGS = {
    ("trivial_augment.py", "augkit.transforms.compose"):
        "TrivialAugment names its entries exactly as Compose names its steps",
    ("trivial_augment.py", "augkit.transforms"):
        "its contract-test cases, built from the registry when read (inside a function)",
}


def _augkit_imports(path: Path) -> set[str]:
    """Every augkit module ``path`` imports, anywhere in the file, as an absolute name."""
    package = ["augkit", "transforms"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "augkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] != "augkit":
                continue
            if module in ("augkit", "augkit.transforms") or not node.module:
                # `from .. import functional`, `from augkit import transforms`: submodules
                found |= {f"{module}.{a.name}" if f"{module}.{a.name}".replace(".", "/")
                          in _MODULE_PATHS else module for a in node.names}
            else:
                found.add(module)
    return found


_MODULE_PATHS = {p.relative_to(ROOT).with_suffix("").as_posix().removesuffix("/__init__")
                 for p in (ROOT / "augkit").rglob("*.py")}


def test_transform_modules_import_only_base_functional_and_banks():
    seen, wrong = set(), []
    for path in sorted(TRANSFORMS.glob("*.py")):
        if path.name == "__init__.py":
            continue  # the registry itself
        for module in _augkit_imports(path):
            if ALLOWED.match(module):
                continue
            if (path.name, module) in SIBLINGS:
                seen.add((path.name, module))
            else:
                wrong.append(f"{path.name} imports {module}")
    assert not wrong, wrong
    assert seen == set(SIBLINGS), f"allow-list entries no longer used: {set(SIBLINGS) - seen}"


def test_the_import_checker_sees_sibling_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .speed import Speed\nfrom . import gain\nfrom .. import banks\n"
                     "def f():\n    from augkit.transforms import filters\n")
    assert _augkit_imports(probe) == {"augkit.transforms.speed", "augkit.transforms.gain",
                                      "augkit.banks", "augkit.transforms.filters"}


def test_transform_docstrings_are_the_literal_ones():
    for name in augkit.transforms.__all__:
        cls = getattr(augkit.transforms, name)
        source = Path(inspect.getsourcefile(cls))
        node = next(n for n in ast.walk(ast.parse(source.read_text()))
                    if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
        literal = ast.get_docstring(node)
        assert literal is not None and not re.search(r"\{[a-z_]+\}", literal), name
        assert inspect.cleandoc(cls.__doc__) == literal, f"{name}'s docstring is changed at import"
