"""What both CLIs share: one-line errors with exit codes, and a console on stderr.

Every way a command can fail ends in one ``error: ...`` line on stderr:

- :class:`SrEdgeError` (a problem the user can act on): its message and exit code;
- a command-line the parser refuses (unknown option, a number that is not one): exit 2, via
  :class:`OneLineCommand` / :class:`OneLineGroup` as the typer command class;
- anything sr-edge did not foresee: its type and message, how to see the traceback
  (``SR_EDGE_DEBUG=1`` or ``--debug``) and where to report it; exit 1.

Library warnings are one ``warning: ...`` line each, and none with ``--quiet``.

With debugging on, the traceback is printed before that line.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import logging
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from sr_runtime.errors import SrEdgeError

console = Console(stderr=True, highlight=False, markup=False)  # paths/hints hold brackets
F = TypeVar("F", bound=Callable[..., object])


def _classes(*names: str) -> tuple[type[BaseException], ...]:
    """The parser's exception classes: typer's own (typer >= 0.2x vendors click), and click's
    for older typer."""
    found: list[type[BaseException]] = []
    for name in names:
        for module_name in ("typer", "click.exceptions"):
            try:
                module = __import__(module_name, fromlist=[name])
            except ImportError:
                continue
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls not in found:
                found.append(cls)
    return tuple(found)


PARSE_ERRORS = _classes("TyperException", "ClickException")
ABORTS = _classes("Abort")
EXITS = _classes("Exit")

DEBUG_ENV = "SR_EDGE_DEBUG"
REPORT_HINT = "report it with the traceback at the sr-edge issue tracker"
MAX_DETAIL = 300  # characters of an unforeseen exception's message kept in the line
_debug = False

#: ``debug: DebugOption = False`` in a command's signature gives it ``--debug``.
DebugOption = Annotated[bool, typer.Option(
    "--debug", help=f"Print the traceback of an error (same as {DEBUG_ENV}=1)")]


def enable_debug(on: bool = True) -> None:
    """Turn tracebacks on for this process (what ``--debug`` does)."""
    global _debug
    _debug = on


def debug_enabled() -> bool:
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false",
                                                                           "no", "off")


def one_line(text: str) -> str:
    """Collapse whitespace and newlines: messages from libraries can span lines."""
    return " ".join(str(text).split())


def print_error(message: str) -> None:
    console.print("error:", style="bold red", end=" ")
    console.print(one_line(message), soft_wrap=True)


def unforeseen_message(exc: BaseException) -> str:
    """The line for an exception sr-edge has no message for: what, how to see more, where to
    report it."""
    detail = one_line(str(exc)) or "(no message)"
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + "..."
    how = ("the traceback is above" if debug_enabled()
           else f"run again with {DEBUG_ENV}=1 (or --debug) to see the traceback")
    return f"unexpected {type(exc).__name__}: {detail} ({how}; {REPORT_HINT})"


def _print_traceback() -> None:
    if debug_enabled():
        console.file.write(traceback.format_exc())
        console.file.flush()


#: warnings that say nothing a user can act on (our stores are Zarr v3 with consolidated metadata)
BENIGN_WARNINGS = ("Consolidated metadata is currently not part",)


@contextmanager
def one_line_warnings(quiet: bool = False) -> Iterator[None]:
    """Library warnings as one ``warning: ...`` line each (none with ``quiet``), not the two
    lines with a source line that Python prints."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        console.print(f"warning: {one_line(str(message))}", soft_wrap=True)

    with warnings.catch_warnings():
        for text in BENIGN_WARNINGS:
            warnings.filterwarnings("ignore", message=text)
        if quiet:
            warnings.simplefilter("ignore")
        warnings.showwarning = show
        yield


def friendly_errors(func: F) -> F:
    """Turn every exception into one ``error: ...`` line and an exit code, no traceback.

    A command whose signature has ``debug`` (see :data:`DebugOption`) turns debugging on.
    """

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        previous = _debug
        if kwargs.get("debug"):
            enable_debug()
        try:
            return _run_friendly(func, args, kwargs)
        finally:
            enable_debug(previous)

    return cast(F, wrapper)


def _run_friendly(func: Callable[..., object], args: tuple, kwargs: dict) -> object:
    try:
        with one_line_warnings(bool(kwargs.get("quiet"))):
            return func(*args, **kwargs)
    except SrEdgeError as exc:
        _print_traceback()
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted; no partial output was kept", style="bold red")
        sys.exit(130)
    except (*EXITS, *PARSE_ERRORS):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a CLI
        _print_traceback()
        print_error(unforeseen_message(exc))
        sys.exit(1)


if TYPE_CHECKING:  # the mixin's super() is a TyperCommand or TyperGroup
    _MainBase = TyperCommand
else:
    _MainBase = object


class _OneLineMain(_MainBase):
    """Click's own errors (unknown option, bad number...) as one line instead of a box."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        except PARSE_ERRORS as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print_error(message + hint)
            sys.exit(getattr(exc, "exit_code", 2))
        except ABORTS:
            console.print("aborted", style="bold red")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class OneLineCommand(_OneLineMain, TyperCommand):
    """``@app.command(cls=OneLineCommand)``: a single command whose parse errors are one line."""


class OneLineGroup(_OneLineMain, TyperGroup):
    """``typer.Typer(cls=OneLineGroup)``: every subcommand's parse errors are one line."""


@contextmanager
def quiet_library_logs(names: tuple[str, ...] = ("distributed",)) -> Iterator[None]:
    """Silence loggers that print tracebacks of errors we report ourselves: Dask logs a failed
    task's traceback (and warnings about the tasks it cancels) before and after the client sees
    the exception. Left alone when debugging."""
    if debug_enabled():
        yield
        return
    for name in names:  # importing configures its loggers: do it before changing them
        with suppress(ImportError):
            importlib.import_module(name)
    saved: dict[str, int] = {}
    prefixes = tuple(f"{name}." for name in names)
    for name in [*names, *(n for n in list(logging.root.manager.loggerDict)
                           if n.startswith(prefixes))]:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def exit_quickly(entry: Callable[[], object]) -> NoReturn:
    """Run a console script's ``entry``, then end the process without the interpreter's
    teardown, with the exit code ``entry`` gave.

    Freeing the modules of numpy, pandas, xarray, zarr and ONNX Runtime one by one takes
    0.26-0.30 s on a 2-core machine (measured 2026-12-03: import them and exit), a fifth of
    the Quickstart, and nothing needs it: every output is complete, closed and renamed before
    the command returns. The atexit handlers still run and both streams are flushed. Where a
    thread that is not a daemon is still alive, the normal exit waits for it instead."""
    try:
        entry()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if others or run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # a closed pipe (sr-run --json | head) loses nothing here
            stream.flush()
    os._exit(code)
