"""The one error every concern raises for input it refuses (light: imported by task modules at listing time)."""


class InputError(ValueError):
    """Input the runbook refuses before doing anything (the boundary exits 2 and says nothing changed)."""
