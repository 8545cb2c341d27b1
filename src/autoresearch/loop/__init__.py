"""The run: the one driver (scheduler) and its collaborators (proposing, trials, the recorder, the
stop rules, the strategist), run lookup and resume, promotions and ablations."""
