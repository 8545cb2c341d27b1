"""Training an experiment: the trainer, process supervision under the budget and limits, the
sandbox, and the engines that run trainings here, on a fake clock or on Ray (ray/)."""
