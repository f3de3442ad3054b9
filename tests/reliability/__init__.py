"""make check-reliability: see run.py."""


class Skip(Exception):
    """Raised by a case that cannot run on this machine, with why."""
