"""Training one unit (arm, seed, fold): the loop and evaluation (:mod:`.trainer`), the
optimiser and how long an arm trains (:mod:`.optim`), and the typed results
(:mod:`.results`)."""
