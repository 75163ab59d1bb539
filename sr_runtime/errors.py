"""One base error for everything a user can get wrong, with specific subclasses.

Every message says what was wrong and how to fix it; the CLIs print it on one line and exit 2
(usage) or 1 (environment / runtime), never with a traceback.
"""

from __future__ import annotations


class SrEdgeError(Exception):
    """Base class: a problem the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(SrEdgeError):
    """The command line or its inputs are wrong (exit code 2)."""

    exit_code = 2


class TimeSelectionError(UsageError):
    """A requested time is unparsable or not in the DataCube."""


class RegionError(UsageError):
    """A bounding box is malformed or does not overlap the grid."""


class VariableError(UsageError):
    """A variable the model needs is missing from the source."""


class ModelMismatchError(UsageError):
    """The model and the data (or the checkpoint and the architecture) do not fit together."""


class OutputError(UsageError):
    """The output path exists without --overwrite, or its folder is missing."""


class OutputLockedError(SrEdgeError):
    """Another sr-run is writing the same output (exit code 1: wait, or write elsewhere)."""


class ModelOutputError(SrEdgeError):
    """The engine returned values that cannot be right (NaN, infinite, physically impossible)."""


class SourceError(SrEdgeError):
    """The DataCube cannot be opened or read (network, layout, permissions)."""


class AuthError(SourceError):
    """Credentials are missing or refused (401/403) or the quota is used up (429)."""


class EngineUnavailableError(SrEdgeError):
    """A backend cannot run here (missing package, no GPU, engine built for another GPU)."""


class AccuracyGateError(SrEdgeError):
    """An exported or converted model disagrees with its PyTorch baseline beyond tolerance."""
