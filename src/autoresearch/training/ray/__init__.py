"""Training on a Ray cluster: the cluster, the engine that ships runs to it, what runs on a node."""
