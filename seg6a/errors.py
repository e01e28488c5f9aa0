"""Exceptions of seg6a. Every bad input raises an ``InputError`` that names what is wrong
and where; the CLI turns it into exit code 2."""


class Seg6aError(Exception):
    """Base class of seg6a's own errors."""


class InputError(Seg6aError, ValueError):
    """Bad input: a file, a key or a parameter that cannot be used.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    file : str, optional
        The file (or folder) at fault.
    key : str, optional
        The key path inside the file, dotted, with ``[i]`` for list items.
    line : int, optional
        The 1-based line in the file, for syntax errors.
    """

    def __init__(self, message, *, file=None, key=None, line=None):
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        super().__init__(self._render())

    def _render(self):
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
        if self.key:
            where = f"{where}: key '{self.key}'" if where else f"key '{self.key}'"
        return f"{where}: {self.message}" if where else self.message


class ConfigError(InputError):
    """A config file is missing, not valid YAML, breaks its contract or contradicts itself."""


class WorldError(InputError):
    """The upstream world (countries, merchants) is missing or malformed."""


class ParameterError(InputError):
    """A run parameter (seed, scale, run id, engine, threads) is out of range or unknown."""


class PublishConflictError(InputError):
    """A published path already holds different bytes; nothing was changed."""


class StaleStateError(InputError):
    """A ``--from`` rerun found an upstream state whose receipt does not match the current
    config or the files on disk; the message names the state to rerun from, or with
    ``remedy`` says what to do instead."""

    def __init__(self, state, message, file=None, remedy=None):
        self.state = state
        if remedy is None:
            earlier = "" if state == "S1" else " (or earlier)"
            remedy = f"rerun with --from {state}{earlier}"
        super().__init__(f"{state} is stale: {message}; {remedy}", file=file)


class IncompleteRunError(InputError):
    """A run folder whose files do not match its manifest (``_manifest_6A.json``): a publish
    was interrupted, or the folder was changed after it."""

    def __init__(self, run_dir, detail):
        super().__init__(f"incomplete run: {detail}; publish was interrupted, rerun the same "
                         "command (`seg6a verify` names every difference)", file=run_dir)
