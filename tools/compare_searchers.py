"""Random search against Optuna's TPE, on validation: is TPE worth its dependency?

``python -m tools.compare_searchers --out runs/searchers [--seeds 0,1,2] [-- SEARCH ARGS]``

Runs ``python -m experiments.search --preset search-quick --no-confirm --rerank-top 1``
once per searcher and search seed (each its own ``--out``, so an interrupted comparison
resumes), then prints and writes ``<out>/searchers.md``: per searcher, the best
validation accuracy each search found (the selected epoch of its best trial), their mean
and spread, and the paired difference over the seeds. Test is never read.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

SEARCHERS = ("random", "tpe")


def run_one(out: Path, searcher: str, seed: int, extra: list[str]) -> dict:
    """One search (resumed when its folder holds one); its ``search.json``."""
    folder = out / f"{searcher}-{seed}"
    if not (folder / "search.json").is_file():
        cmd = [sys.executable, "-m", "experiments.search", "--preset", "search-quick",
               "--out", str(folder), "--searcher", searcher, "--search-seed", str(seed),
               "--no-confirm", "--rerank-top", "1", "--no-progress", *extra]
        subprocess.run(cmd, check=True)
    return json.loads((folder / "search.json").read_text())


def table(results: dict[str, dict[int, dict]]) -> str:
    """The comparison as Markdown."""
    seeds = sorted(next(iter(results.values())))
    lines = ["| searcher | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean ± sd | trials |", "|---" * (len(seeds) + 3) + "|"]
    best = {}
    for name, by_seed in results.items():
        accs = [100 * by_seed[s]["best"]["val_acc"] for s in seeds]
        best[name] = accs
        trials = [by_seed[s]["trials"] for s in seeds]
        sd = statistics.stdev(accs) if len(accs) > 1 else math.nan
        lines.append(f"| {name} | " + " | ".join(f"{a:.1f}" for a in accs)
                     + f" | {statistics.fmean(accs):.1f} ± {sd:.1f} | "
                     + ", ".join(map(str, trials)) + " |")
    if set(best) == set(SEARCHERS):
        d = [t - r for t, r in zip(best["tpe"], best["random"], strict=True)]
        sd = statistics.stdev(d) if len(d) > 1 else math.nan
        lines += ["", f"TPE - random, paired over the {len(d)} search seeds: "
                      f"{statistics.fmean(d):+.1f} ± {sd:.1f} points of validation accuracy "
                      "(the best trial's selected epoch)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.compare_searchers",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder of the searches")
    p.add_argument("--seeds", default="0,1,2", help="search seeds (default 0,1,2)")
    p.add_argument("extra", nargs="*", help="after --: more experiments.search arguments")
    args = p.parse_args(argv)
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {name: {s: run_one(out, name, s, args.extra) for s in seeds}
               for name in SEARCHERS}
    text = table(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "searchers.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
