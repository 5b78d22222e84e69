"""The runbook's recipes: one module per concern, assembled into flat task names by ``tasks.py``."""
