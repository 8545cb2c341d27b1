"""Agents: anything that turns a prompt and the incumbent train.py into a proposal."""
