"""After the search: re-rank its top recipes on validation, confirm the best on fresh seeds.

1. **Re-ranking** (:func:`rerank`). One trial seed ranks recipes noisily, so the
   ``--rerank-top`` best recipes of the search (3) are trained again with
   :data:`~experiments.search.run.RERANK_SEEDS` to the end of the protocol (no early
   stopping), on train and validation only, as a second Ray Tune experiment
   (``<out>/search/rerank``). The recipe with the highest mean validation accuracy is
   chosen; it is written as ``<out>/recipe.json``.
2. **Confirmation** (:func:`confirm`). The ablation runner trains the chosen recipe (arm
   ``all``), the strongest simple baseline (arm ``baseline``: the preset's normalisation,
   no augmentation) and ``trivial`` at the preset's settings on
   :data:`~experiments.search.run.CONFIRM_SEEDS`, seeds neither the search nor the
   re-ranking used, with the runner preset's training protocol (the convergence rule
   and its epoch cap: a search preset's lower cap for its trials does not apply), into
   ``<out>/confirm``. Only this step reads the test split, once per run; its verdict is
   the runner's paired 95% intervals.
3. ``<out>/summary.md`` (:func:`write_summary`): the verdict, the confirmation's table,
   the re-ranking, the search's trajectory and top recipes, the seeds and the compute of
   each stage.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from .. import config as C
from ..augmentations import TRIVIAL_OPS, op_names
from ..io import atomic_write_json, atomic_write_text
from ..reporting.summary import paired_diff, verdict
from . import space as S

#: The arms of the confirmation, in the order of its table.
CONFIRM_ARMS = ("baseline", "all", "trivial")


class Interrupted(Exception):
    """A stage stopped with runs unfinished (Ctrl-C): re-run the command to resume."""


def candidates(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` best distinct recipes of the search's trials, best first (validation
    accuracy at the selected epoch; fewer epochs break ties)."""
    seen, out = set(), []
    for r in sorted((r for r in rows if not math.isnan(r["val_acc"])),
                    key=lambda r: (-r["val_acc"], r["epochs"], r["trial"])):
        if r["recipe"] in seen:
            continue
        seen.add(r["recipe"])
        fams = S.families_of(r["config"])
        out.append({"rank": len(out) + 1, "trial": r["trial"], "recipe": r["recipe"],
                    "families": {n: [m, p] for n, (m, p) in fams.items()},
                    "search_val_acc": r["val_acc"]})
        if len(out) == k:
            break
    return out


def rerank(s, setup: dict[str, Any], cands: list[dict[str, Any]], seeds: tuple[int, ...]
           ) -> list[dict[str, Any]]:
    """Train each candidate with each of ``seeds`` (in the search's Ray session); the
    candidates with ``val_accs``, ``val_mean``, ``val_sd`` and ``seconds`` added, best
    (highest mean) first. Raises :class:`Interrupted` when runs are left unfinished."""
    from ray import tune

    from .run import tuner, unfinished

    space = {"families": tune.grid_search([json.dumps(c["families"], sort_keys=True)
                                           for c in cands]),
             "seed": tune.grid_search(list(seeds))}
    results = tuner(s, setup, "rerank", space).fit()
    left = unfinished(results, s.storage / "rerank")
    if left:
        raise Interrupted(f"{left} re-ranking run(s) unfinished")
    by_recipe: dict[str, list[tuple[int, float, float]]] = {}
    for r in results:
        hist = r.metrics_dataframe
        if r.config is None or hist is None or not len(hist):
            continue
        by_recipe.setdefault(r.config["families"], []).append(
            (int(r.config["seed"]), float(hist["best_val_acc"].iloc[-1]),
             float(hist["time_total_s"].max())))
    out = []
    for c in cands:
        runs = sorted(by_recipe.get(json.dumps(c["families"], sort_keys=True), []))
        accs = [a for _, a, _ in runs]
        out.append({**c, "val_accs": accs,
                    "val_mean": statistics.fmean(accs) if accs else math.nan,
                    "val_sd": statistics.stdev(accs) if len(accs) > 1 else math.nan,
                    "seconds": sum(t for _, _, t in runs)})
    out.sort(key=lambda c: (-(c["val_mean"] if not math.isnan(c["val_mean"]) else -1.0),
                            c["rank"]))
    return out


def confirm_config(cfg: C.Config, rec: dict[str, Any]) -> dict[str, Any]:
    """The runner settings of the confirmation: the search's data, frontend, model and
    protocol; the recipe as the augmentations (arm ``all``); ``trivial`` kept at the
    search's settings (its ops do not take the recipe's strengths)."""
    d = C.to_dict(cfg)
    conf = {g: d[g] for g in C.IDENTITY_GROUPS}
    base = d["ablation"]["augment"]
    trivial = dict(base.get("trivial", {}))
    ops = op_names(trivial.get("ops", TRIVIAL_OPS))
    trivial["op_settings"] = {o: {k: v for k, v in base.get(o, {}).items() if k != "where"}
                              for o in ops}
    conf["ablation"] = {**d["ablation"], "augmentations": rec["augmentations"],
                        "augment": {**rec["augment"], "trivial": trivial}}
    conf["_doc"] = ("the augmentation search's confirmation: arm all is the recipe, "
                    "baseline the preset's normalisation alone, trivial at the preset's "
                    "settings")
    return conf


def confirm(s, rec: dict[str, Any], seeds: tuple[int, ...]) -> tuple[int, list[str]]:
    """Run the confirmation with the ablation runner into ``<out>/confirm`` (resumes like
    any ablation); its exit status and the arms run."""
    from .. import ablate

    path = s.out / "confirm_config.json"
    atomic_write_json(path, confirm_config(s.confirm_cfg or s.cfg, rec))
    arms = [a for a in CONFIRM_ARMS if a != "all" or rec["augmentations"]]
    argv = ["--preset", s.cfg.runtime.preset, "--config", str(path),
            "--out", str(s.out / "confirm"), "--cache-dir", s.cfg.runtime.cache_dir,
            "--arms", ",".join(arms), "--seeds", ",".join(map(str, seeds)),
            "--swanlab-mode", "disabled"]
    if not s.progress:
        argv.append("--no-progress")
    if s.ray_address:
        argv += ["--ray-address", s.ray_address]
    if s.ray_address or s.max_concurrent > 1:
        argv += ["--workers", str(s.max_concurrent), "--cpus-per-run", str(s.cpus_per_trial)]
        if s.gpus_per_trial > 0:
            argv += ["--gpus-per-run", str(s.gpus_per_trial)]
    return ablate.main(argv), arms


def _interval(df: pd.DataFrame, arm: str, ref: str, metric: str) -> str:
    d, (lo, hi), n = paired_diff(df, arm, metric, ref)
    if not n:
        return "no pairs"
    ci = "" if math.isnan(lo) else f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return f"{100 * d:+.1f}{ci} points ({verdict(d, lo, hi, n)}, {n} seeds)"


def verdict_lines(df: pd.DataFrame, arms: list[str]) -> list[str]:
    """The confirmation in words: the recipe against the baseline and ``trivial``, on
    test (read once) and validation, as paired 95% intervals."""
    lines = []
    pairs = [("all", "baseline"), ("all", "trivial"), ("trivial", "baseline")]
    for arm, ref in pairs:
        if arm not in arms or ref not in arms:
            continue
        name = "the recipe" if arm == "all" else arm
        lines.append(f"- {name} - {ref}: test {_interval(df, arm, ref, 'test_acc')}; "
                     f"validation {_interval(df, arm, ref, 'val_acc')}.")
    if "all" not in arms:
        lines.insert(0, "- The search chose no augmentation (its best recipe is the "
                        "baseline); confirmed: trivial against the baseline.")
    return lines


def compute_hours(s, seconds: float) -> tuple[str, float]:
    """Run seconds as the search reports compute: ``("core-hours", h)``, or
    ``("GPU-hours", h)`` when its runs hold fractional GPUs."""
    if s.gpus_per_trial > 0:
        return "GPU-hours", seconds * s.gpus_per_trial / 3600
    return "core-hours", seconds * s.cpus_per_trial / 3600


def write_summary(s, search: dict[str, Any], reranked: list[dict[str, Any]] | None,
                  confirmed: tuple[int, list[str]] | None, seeds: dict[str, Any]) -> str:
    """``<out>/summary.md`` (see the module docstring); returns its text."""
    unit, search_h = next(iter(search["compute"].items()))
    lines = [f"# Augmentation search on {_data_name(s)}: the recipe, confirmed", ""]
    compute = [("search", search["trials"], search_h)]
    if reranked:
        compute.append(("re-ranking", sum(len(c["val_accs"]) for c in reranked),
                        compute_hours(s, sum(c["seconds"] for c in reranked))[1]))
    if confirmed is not None:
        df = pd.read_csv(s.out / "confirm" / "results.csv")
        compute.append(("confirmation", len(df),
                        compute_hours(s, float(df["time_s"].sum()))[1]))
        arms = confirmed[1]
        lines += [f"Recipe: **{search['chosen']}**.", "",
                  "Confirmed on fresh seeds (test read once per run, paired 95% intervals "
                  "over the seeds; the recipe is arm `all`):", "", *verdict_lines(df, arms),
                  "", "## Confirmation", "",
                  f"The ablation runner, `{s.out / 'confirm'}` (its own summary, results and "
                  f"plots): arms {', '.join(arms)}, seeds "
                  f"{', '.join(map(str, seeds['confirm']))}, the preset's protocol.", ""]
        plots = [f for f in ("curves.png", "deltas.png") if (s.out / "confirm" / f).exists()]
        lines += [f"![{f[:-4]}](confirm/{f})" for f in plots] + ([""] if plots else [])
        lines += _demoted((s.out / "confirm" / "summary.md").read_text(), folder="confirm",
                          levels=2)
    else:
        lines += [f"Recipe: **{search['chosen']}** (chosen on validation; not confirmed: "
                  "`--no-confirm`, so test has not been read).", ""]
    if reranked:
        lines += ["## Re-ranking (validation only)", "",
                  f"The search's {len(reranked)} best recipes, trained again with seeds "
                  f"{', '.join(map(str, seeds['rerank']))} to the end of the protocol:", "",
                  "| recipe | search rank | search val % | val % (mean ± sd) | runs |",
                  "| --- | --- | --- | --- | --- |"]
        for i, c in enumerate(reranked):
            mark = "**" if i == 0 else ""
            sd = "" if math.isnan(c["val_sd"]) else f" ± {100 * c['val_sd']:.1f}"
            lines.append(f"| {mark}{c['recipe']}{mark} | {c['rank']} | "
                         f"{100 * c['search_val_acc']:.1f} | {100 * c['val_mean']:.1f}{sd} | "
                         f"{len(c['val_accs'])} |")
        lines.append("")
    lines += _demoted((s.out / "search.md").read_text(), keep_title=False)
    lines += ["## Seeds and compute", "",
              f"Seeds: trials {seeds['trial']}; re-ranking "
              f"{', '.join(map(str, seeds['rerank']))}; confirmation "
              f"{', '.join(map(str, seeds['confirm']))} (disjoint).", "",
              f"| stage | runs | {unit} |", "| --- | --- | --- |"]
    lines += [f"| {name} | {n} | {h:.3g} |" for name, n, h in compute]
    lines += [f"| total | {sum(n for _, n, _ in compute)} | "
              f"{sum(h for _, _, h in compute):.3g} |", "",
              "Use the recipe: `python -m experiments.ablate --config "
              f"{s.out / 'recipe.json'}` (arm `all`), or in your own training loop "
              f"`augkit.load_compose('{s.out / 'recipe.json'}')` (the chain of arm `all`: "
              "the recipe's augmentations, the mel frontend, the scale and the "
              "normalisation).", ""]
    text = "\n".join(lines)
    atomic_write_text(s.out / "summary.md", text)
    return text


def _data_name(s) -> str:
    return Path(s.cfg.data.path).name if s.cfg.data.path else "the embedded synthetic set"


def _demoted(md: str, keep_title: bool = True, folder: str = "", levels: int = 1
             ) -> list[str]:
    """Markdown with every heading ``levels`` down (the first replaced unless
    ``keep_title``); relative links to files of ``folder`` rewritten to stay valid
    from the summary's folder."""
    out = []
    for line in md.splitlines():
        if folder:
            line = re.sub(r"\]\((?![a-z]+:|/|#)", f"]({folder}/", line)
        if line.startswith("#"):
            if not keep_title and not out:
                out.append("## Search (validation only)")
                continue
            line = "#" * levels + line
        out.append(line)
    return [*out, ""]
