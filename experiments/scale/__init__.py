"""Scale-out: the grid of units on Ray (:mod:`.ray_grid`), one unit over several
processes with torchrun (:mod:`.torchrun`). Neither changes a result."""
