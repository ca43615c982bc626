"""Exceptions that carry what the user must fix."""


class ConfigError(ValueError):
    """Bad input: the message names the field, the value and what is allowed."""


class SolverError(RuntimeError):
    """The time integration could not continue; the message says what failed and when."""
