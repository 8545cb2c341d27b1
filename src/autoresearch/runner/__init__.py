"""Runners: how an experiment's train.py is executed under its budget."""
