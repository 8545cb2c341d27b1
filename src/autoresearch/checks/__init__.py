"""Doctor's checks and every run's preflight: the interpreter, the data, the sandbox probed from
inside, the nodes of a Ray cluster."""
