"""The local Earth Data Hub of tests/runtime/sources (a real HTTP server on 127.0.0.1) for the
command-line tests that read over HTTP."""

from tests.runtime.sources.conftest import serve  # noqa: F401 - a fixture, used by name
