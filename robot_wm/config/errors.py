"""The one error type for bad input files: its message is a single line naming file, key path and problem."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: ``str(err)`` is one line, e.g. ``sim_scenes/x.yaml: objects[2].mass: must be > 0 (got -1)``."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + message)

    def __reduce__(self):  # picklable: errors raised in worker processes reach the parent intact
        return (type(self), (self.source, self.path, self.message))
