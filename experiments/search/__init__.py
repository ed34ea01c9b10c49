"""Augmentation search on validation (``python -m experiments.search``): the space from
the registry (:mod:`.space`) and the search on Ray Tune (:mod:`.run`)."""
