"""What both CLIs share: one-line errors with exit codes, and a console on stderr."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from sr_runtime.errors import SrEdgeError

console = Console(stderr=True, highlight=False, markup=False)  # paths/hints hold brackets
F = TypeVar("F", bound=Callable[..., object])


def friendly_errors(func: F) -> F:
    """Turn :class:`SrEdgeError` into ``error: ...`` on stderr and its exit code, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except SrEdgeError as exc:
            console.print("error:", style="bold red", end=" ")
            console.print(str(exc), soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            console.print("interrupted; no partial output was kept", style="bold red")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
