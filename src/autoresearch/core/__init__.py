"""The bottom layer: the records, the configuration, the decisions (keep, noise, stops), a run's
history and its derived facts, and the text helpers. It imports nothing else of autoresearch."""
