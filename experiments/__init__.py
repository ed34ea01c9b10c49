"""The ablation runner, run from a checkout beside the augkit library (not in its wheel).

    ablate.py          the command: python -m experiments.ablate
    config.py          seven groups of typed settings; the presets are in configs/
    plan.py            what a command runs, checked before any work; the results folder
    lock.py            one command at a time per results folder (<out>/.lock)
    data/              scan, decode and cache, splits, manifests, the synthetic set
    augmentations.py   the augmentations an arm is made of, one table entry each
    arms.py            arms, and the chain each trains with (frontend, augmentations)
    training/          one unit: the loop and evaluation, the optimiser, the results
    reporting/         results.csv, summary.md with verdicts, the plots, SwanLab
    scale/             the grid on Ray, one unit over torchrun's processes
    timed_ablation.py  a timed GTZAN-shaped ablation: python -m experiments.timed_ablation
"""
