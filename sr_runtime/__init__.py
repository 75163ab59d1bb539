"""sr-edge runtime: DataCube -> super-resolution engine -> Cloud-Optimized GeoTIFF.

This package never imports torch, lightning or tensorrt at import time; those live behind extras.
The public Python API (:mod:`sr_runtime.api`) is reachable from here, loaded on first use so
that ``import sr_runtime`` stays cheap::

    import sr_runtime as sr
    with sr.open_model() as model:
        lr = sr.read_field(sr.open_source(), model.variables, time="2024-10-11T12:00")
        hr = sr.super_resolve(lr, model, static=sr.open_static())
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = ("Model", "open_model", "open_source", "open_static", "read_field", "super_resolve",
        "to_geofield", "write_cog")
_RUN = {"RunRequest": "sr_runtime.request", "TimeRange": "sr_runtime.request",
        "run": "sr_runtime.runner", "BBox": "sr_runtime.grid"}


def __getattr__(name: str) -> object:
    if name in _API:
        from sr_runtime import api

        return getattr(api, name)
    if name in _RUN:
        import importlib

        return getattr(importlib.import_module(_RUN[name]), name)
    raise AttributeError(f"module 'sr_runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_RUN])
