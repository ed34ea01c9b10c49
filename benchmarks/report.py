"""Print clips/s and ratios from a pytest-benchmark JSON file.

Usage: ``python -m benchmarks.report [.benchmarks/latest.json]``. Ratios are
against torchaudio's batched MelSpectrogram (frontend groups), torch-audiomentations
(peer groups), audiomentations (its groups, clip by clip on the CPU) or the tutorial
pipeline (data-path groups) measured in the same run.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

REFERENCES = ("torchaudio", "tutorial_dataloader", "torch_audiomentations", "audiomentations",
              "sequential")


def rows(path: Path):
    data = json.loads(path.read_text())
    groups = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b["extra_info"]
        groups[b["group"]][info["impl"]] = (info["clips"] / b["stats"]["median"], info)
    return data, groups


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0] if argv else ".benchmarks/latest.json")
    if not path.exists():
        print(f"no benchmark results at {path}; run `make bench` first", file=sys.stderr)
        return 1
    data, groups = rows(path)
    first = next(iter(data["benchmarks"]), {}).get("extra_info", {})
    print(f"# {path}  torch {first.get('torch')}  torchaudio {first.get('torchaudio')}  "
          f"augkit {first.get('augkit')}")
    print(f"{'group':<40} {'impl':<22} {'clips/s':>12} {'ratio':>8}  device")
    for group in sorted(groups):
        impls = groups[group]
        ref = next((impls[r][0] for r in REFERENCES if r in impls), None)
        for impl, (cps, info) in sorted(impls.items(), key=lambda kv: -kv[1][0]):
            ratio = f"{cps / ref:8.2f}" if ref else f"{'':>8}"
            print(f"{group:<40} {impl:<22} {cps:12.1f} {ratio}  {info['device_name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
