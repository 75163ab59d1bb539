"""`sr-serve`: super-resolved COGs and map tiles over HTTP (FastAPI + uvicorn, extra ``serve``).

Nothing here is imported by the runtime itself: FastAPI is only needed once this package's
:mod:`sr_runtime.serve.http` is imported (``sr-serve`` checks for it first).
"""
