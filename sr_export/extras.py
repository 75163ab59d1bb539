"""Say in one line what to install when an `sr-export` command runs in a runtime-only install.

`sr-export` ships with the runtime, but most of its commands need the ``export`` extra (torch,
lightning, onnx). Without it they would end in ``ModuleNotFoundError``; each command states
what it needs and is checked before it does any work.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import TypeVar

from sr_runtime.errors import EngineUnavailableError

EXPORT_EXTRA = "pip install 'sr-edge[export]'"
#: Top-level modules that come with the export extra (and nowhere else in a runtime install).
EXPORT_MODULES = frozenset({"torch", "lightning", "pytorch_lightning", "onnx", "onnxscript",
                            "torchmetrics", "skimage"})
F = TypeVar("F", bound=Callable[..., object])


def importable(name: str) -> bool:
    """True when ``name`` can be imported; a broken or blocked install counts as absent."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_message(command: str, missing: list[str]) -> str:
    verb = "is" if len(missing) == 1 else "are"
    names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
    return (f"sr-export {command} needs {names}, which {verb} not installed "
            f"here (a runtime-only install): {EXPORT_EXTRA}")


def require_extra(command: str, *modules: str) -> None:
    """Raise :class:`EngineUnavailableError` naming the missing modules and the install line."""
    missing = [name for name in modules if not importable(name)]
    if missing:
        raise EngineUnavailableError(missing_message(command, missing))


def needs_export_extra(*modules: str) -> Callable[[F], F]:
    """Check ``modules`` before the command runs; an export module missing later is said the
    same way (a backstop for imports made deep inside the library)."""

    def decorate(func: F) -> F:
        command = func.__name__.replace("_", "-")

        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> object:
            require_extra(command, *modules)
            try:
                return func(*args, **kwargs)
            except ModuleNotFoundError as exc:
                root = (exc.name or "").split(".")[0]
                if root not in EXPORT_MODULES:
                    raise
                raise EngineUnavailableError(missing_message(command, [root])) from None

        return wrapper  # type: ignore[return-value]

    return decorate
