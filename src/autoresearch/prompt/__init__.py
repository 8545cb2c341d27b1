"""The prompt an agent reads: the context, the history condensed to a token budget, the facts of
a run, and what the strategist reads."""
