"""HTTP(S) reads that survive a flaky network: retries with backoff, timeouts, clear auth errors.

:class:`RetryingHTTPFileSystem` is an fsspec ``HTTPFileSystem`` whose reads retry transient
failures (5xx, timeouts, dropped connections) with exponential backoff and full jitter, bounded
both in attempts and in total time, and turn 401/403/429 into :class:`AuthError` with what to do.
Credentials travel only in the aiohttp session (HTTP Basic auth), never in URLs or messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import netrc
import os
import random
import time as clock
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from fsspec.implementations.http import HTTPFileSystem

from sr_runtime.errors import AuthError, SourceError

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
AUTH_HINTS = {
    401: "the API key was refused (401): check EDH_API_KEY or the password in ~/.netrc "
         "(a key looks like edh_key_...; create one at https://earthdatahub.destine.eu)",
    403: "access denied (403): this account lacks Climate DT access on the Earth Data Hub; "
         "request the upgraded DestinE access for it",
    429: "too many requests (429): the Earth Data Hub quota for this key is used up; wait for "
         "it to reset or use another key",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, waiting ``base_s * 2**n`` (jittered, capped at
    ``max_wait_s``) between them, giving up after ``deadline_s``; one request may take at most
    ``timeout_s``."""

    attempts: int = 5
    base_s: float = 0.5
    max_wait_s: float = 8.0
    deadline_s: float = 120.0
    timeout_s: float = 60.0

    def wait(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_wait_s, self.base_s * 2 ** attempt))  # noqa: S311


DEFAULT_RETRY = RetryPolicy()


def strip_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without any ``user:password@`` part, and the password found there (if any)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), (
        parts.password)


def netrc_host(url: str) -> str:
    """The ``machine`` a ``~/.netrc`` entry must name for ``url``: the host, without the port."""
    return urlsplit(url).hostname or ""


def find_api_key(url: str, env_var: str = "EDH_API_KEY") -> str | None:
    """The key from ``$EDH_API_KEY``, else the password of the URL host in ``~/.netrc``."""
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    host = netrc_host(url)
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        return None
    return entry[2] if entry and entry[2] else None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, asyncio.TimeoutError | aiohttp.ClientConnectionError
                      | aiohttp.ClientPayloadError | ConnectionError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return type(exc).__name__


class RetryingHTTPFileSystem(HTTPFileSystem):
    """``HTTPFileSystem`` with bounded retries and auth errors that say how to fix them; it
    remembers which URLs were not found (404), which zarr reads back as fill values."""

    protocol = ("http", "https")

    def __init__(self, *args: Any, retry: RetryPolicy | None = None,
                 label: str = "the server", **kwargs: Any) -> None:
        self.retry = retry or DEFAULT_RETRY
        self.label = label
        self.not_found: set[str] = set()  # URLs answered 404, cited when a chunk is missing
        client_kwargs = dict(kwargs.pop("client_kwargs", None) or {})
        client_kwargs.setdefault("timeout", aiohttp.ClientTimeout(total=self.retry.timeout_s))
        super().__init__(*args, client_kwargs=client_kwargs, **kwargs)

    async def _with_retries(self, what: str, url: str, call: Callable[[], Awaitable[T]]) -> T:
        policy = self.retry
        started = clock.monotonic()
        last: BaseException | None = None
        for attempt in range(policy.attempts):
            try:
                return await call()
            except aiohttp.ClientResponseError as exc:
                if exc.status in AUTH_HINTS:
                    raise AuthError(f"{self.label}: {AUTH_HINTS[exc.status]}") from None
                if not _is_transient(exc):
                    raise SourceError(f"{self.label}: reading {_safe_path(url)} failed with "
                                      f"HTTP {exc.status}") from None
                last = exc
            except FileNotFoundError:  # fsspec's HTTP 404
                self.not_found.add(_safe_path(url))
                raise
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                last = exc
            wait = policy.wait(attempt)
            if attempt + 1 >= policy.attempts or (
                    clock.monotonic() - started + wait > policy.deadline_s):
                break
            await asyncio.sleep(wait)
        reason = _describe(last) if last is not None else "unknown error"
        raise SourceError(
            f"{self.label}: {what} {_safe_path(url)} failed after {attempt + 1} attempts "
            f"({clock.monotonic() - started:.1f} s; last: {reason}); the server or network is "
            "unavailable, try again later") from None

    async def set_session(self) -> aiohttp.ClientSession:
        new = self._session is None
        session = await super().set_session()
        if new:  # fsspec closes sessions of asynchronous instances only on request
            weakref.finalize(self, _close_session, asyncio.get_running_loop(), session)
        return session

    async def _cat_file(self, url: str, start: int | None = None, end: int | None = None,
                        **kwargs: Any) -> bytes:
        parent = super()._cat_file
        return await self._with_retries("reading", url,
                                        lambda: parent(url, start=start, end=end, **kwargs))

    async def _info(self, url: str, **kwargs: Any) -> dict[str, Any]:
        parent = super()._info
        return await self._with_retries("inspecting", url, lambda: parent(url, **kwargs))


def _close_session(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    if session.closed or loop.is_closed() or not loop.is_running():
        return
    with contextlib.suppress(Exception):  # best effort, at exit
        asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=1)


def _safe_path(url: str) -> str:
    return strip_credentials(str(url))[0]


def http_filesystem(url: str, api_key: str | None, *, label: str,
                    retry: RetryPolicy | None = None) -> RetryingHTTPFileSystem:
    """An asynchronous filesystem for zarr, with Basic auth (user ``edh``) when a key is given."""
    client_kwargs: dict[str, object] = {}
    if api_key:
        token = base64.b64encode(f"edh:{api_key}".encode()).decode()
        client_kwargs["headers"] = {"Authorization": f"Basic {token}"}
    return RetryingHTTPFileSystem(asynchronous=True, client_kwargs=client_kwargs, retry=retry,
                                  label=label, skip_instance_cache=True)
