"""Optional parts (the web app, the HTTP service) say which extra to install when it is missing."""

from __future__ import annotations

import importlib

from sr_runtime.errors import EngineUnavailableError


class MissingExtraError(EngineUnavailableError):
    """A command needs packages of an extra that is not installed (exit code 1)."""


def require(extra: str, modules: tuple[str, ...]) -> None:
    """Import each of ``modules`` or fail in one line naming ``pip install 'sr-edge[extra]'``."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingExtraError(f"this command needs {name}, which is not installed; "
                                    f"install it with: pip install 'sr-edge[{extra}]'") from None
