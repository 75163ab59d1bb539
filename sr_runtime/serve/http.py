"""The HTTP API: COGs and map tiles of super-resolved fields, results cached by request key.

Every product of a request is derived from one :class:`~sr_runtime.results.Result`, cached by
(model sha256, time, region cells, units, variable): a repeat request runs no inference, concurrent
requests for one key run the model once. Errors are JSON ``{"error", "type", "status"}`` with
the status that fits (400 bad request, 404 not in the cube, 500 failed run, 502 source
unreachable, 503 backend unusable), never a stack trace. Files are written into a private
temporary folder, read into the response and deleted at once.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sr_runtime import __version__
from sr_runtime.errors import EngineUnavailableError, SourceError, SrEdgeError, UsageError
from sr_runtime.pipeline import UNITS
from sr_runtime.products import Kind, product_name, write_product
from sr_runtime.render import DEFAULT_COLOUR_MAP, ColourScale, scale_for
from sr_runtime.results import NotInCubeError, Result, Results, SingleFlightCache
from sr_runtime.serve.tiles import MAX_ZOOM, geographic_bounds, render_tile

log = logging.getLogger("sr_edge.serve")
COG_MEDIA = "image/tiff; application=geotiff; profile=cloud-optimized"

TimeQuery = Annotated[str, Query(description="Valid time, ISO 8601, a step of the cube "
                                 "(see /times), e.g. 2024-10-11T12:00")]
BBoxQuery = Annotated[str | None, Query(description="Region W,S,E,N in degrees [default: the "
                                        "source's box]")]
UnitsQuery = Annotated[str, Query(description="K or degC", pattern="^(K|degC)$")]
VminQuery = Annotated[float | None, Query(description="Colour scale minimum [default: 0.5th "
                                          "percentile of the field]")]
VmaxQuery = Annotated[float | None, Query(description="Colour scale maximum [default: 99.5th "
                                          "percentile]")]
MapQuery = Annotated[str, Query(description="matplotlib colour map name")]
VariableQuery = Annotated[str | None, Query(description="One of the model's variables (see "
                                            "/times), e.g. t2m or d2m [default: the first]")]


def status_of(exc: SrEdgeError) -> int:
    if isinstance(exc, NotInCubeError):
        return 404
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, SourceError):
        return 502
    if isinstance(exc, EngineUnavailableError):
        return 503
    return 500


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind, "status": status}, status_code=status)


class Service:
    """What the endpoints share: the results, product and tile caches, the private folder."""

    def __init__(self, results: Results, product_cache_mb: float = 256.0,
                 tile_cache_mb: float = 64.0) -> None:
        self.results = results
        self.products: SingleFlightCache[tuple, bytes] = SingleFlightCache(
            product_cache_mb * 2**20, len)
        self.tiles: SingleFlightCache[tuple, bytes] = SingleFlightCache(
            tile_cache_mb * 2**20, len)
        self.scales: SingleFlightCache[tuple, ColourScale] = SingleFlightCache(4096, lambda _: 1)
        self.folder: Path | None = None

    def open(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sr-serve-"))

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def result(self, time: str, bbox: str | None, units: str,
               variable: str | None = None) -> tuple[Result, bool]:
        return self.results.get(self.results.resolve(time, bbox, units, variable))

    def scale(self, result: Result, vmin: float | None, vmax: float | None,
              colour_map: str) -> ColourScale:
        base, _ = self.scales.get((result.key, colour_map), lambda: scale_for(
            result.sr.values, units=result.key.units, colour_map=colour_map))
        return ColourScale(base.vmin if vmin is None else vmin,
                           base.vmax if vmax is None else vmax, result.key.units, colour_map)

    def product(self, result: Result, kind: Kind, scale: ColourScale | None) -> bytes:
        key = (result.key, kind, scale)

        def make() -> bytes:
            if self.folder is None:
                self.open()
            with tempfile.TemporaryDirectory(dir=self.folder) as private:
                path = write_product(result, kind, Path(private),
                                     self.results.source.label, scale)
                return path.read_bytes()

        return self.products.get(key, make)[0]


def create_app(results: Results) -> FastAPI:
    """The FastAPI application serving ``results`` (one model over one DataCube)."""
    service = Service(results)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.open()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(title="sr-edge", version=__version__, lifespan=lifespan,
                  description="x8 super-resolution of DestinE Climate DT 2 m temperature: "
                  "Cloud-Optimized GeoTIFFs and web-map tiles on demand.")
    app.state.service = service

    @app.exception_handler(SrEdgeError)
    async def sr_edge_error(_: Request, exc: SrEdgeError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.warning("request failed (%s): %s", type(exc).__name__, exc)
        return error_response(status, str(exc), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def bad_query(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return error_response(422, f"invalid request: {problems}; see /docs",
                              "RequestValidationError")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "HTTPException")

    @app.middleware("http")
    async def no_stack_traces(request: Request, call_next):
        try:
            return await call_next(request)
        except Exception as exc:  # noqa: BLE001 - anything unforeseen: one line, JSON 500
            log.error("internal error on %s (%s): %s", request.url.path,
                      type(exc).__name__, exc)
            return error_response(500, f"internal error ({type(exc).__name__}); the server "
                                  "log has one line about it", type(exc).__name__)

    def headers(result: Result, cached: bool, filename: str | None = None) -> dict[str, str]:
        values = {"X-Cache": "hit" if cached else "miss", "X-Backend": result.backend,
                  "X-Valid-Time": result.key.time, "X-Variable": result.key.variable,
                  "X-Inference-Seconds": f"{result.infer_seconds:.4f}"}
        if filename:
            values["Content-Disposition"] = f'attachment; filename="{filename}"'
        return values

    def cog_response(kind: Kind, time: str, bbox: str | None, units: str,
                     variable: str | None,
                     scale: tuple[float | None, float | None, str] | None = None) -> Response:
        result, cached = service.result(time, bbox, units, variable)
        colours = service.scale(result, *scale) if scale is not None else None
        body = service.product(result, kind, colours)
        return Response(body, media_type=COG_MEDIA,
                        headers=headers(result, cached, product_name(result, kind)))

    @app.get("/health", summary="Model, backend, source and cache counters")
    def health() -> dict[str, object]:
        model = results.model
        return {"status": "ok", "version": __version__, "model": model.path.name,
                "model_sha256": results.model_sha256, "backend": model.backend,
                "precision": results.precision, "source": results.source.label,
                **results.stats(), "products": service.products.stats(),
                "tiles": service.tiles.stats()}

    @app.get("/times", summary="The valid times of the cube, those with HR truth, its box")
    def times() -> dict[str, object]:
        box = results.grid_box()
        return {"variable": results.variable.name, "variables": list(results.variables),
                "times": results.time_labels(),
                "truth_times": sorted(results.truth_times),
                "bbox": [box.west, box.south, box.east, box.north], "units": list(UNITS)}

    @app.get("/cog/sr", summary="Super-resolved field as a float32 COG",
             response_class=Response, responses={200: {"content": {COG_MEDIA: {}}}})
    def cog_sr(time: TimeQuery, bbox: BBoxQuery = None, units: UnitsQuery = "K",
               variable: VariableQuery = None) -> Response:
        return cog_response("sr", time, bbox, units, variable)

    @app.get("/cog/lr", summary="Low-resolution input as a float32 COG",
             response_class=Response, responses={200: {"content": {COG_MEDIA: {}}}})
    def cog_lr(time: TimeQuery, bbox: BBoxQuery = None, units: UnitsQuery = "K",
               variable: VariableQuery = None) -> Response:
        return cog_response("lr", time, bbox, units, variable)

    @app.get("/cog/rgb", summary="Colour-mapped RGBA COG with overviews (scale in its tags)",
             response_class=Response, responses={200: {"content": {COG_MEDIA: {}}}})
    def cog_rgb(time: TimeQuery, bbox: BBoxQuery = None, units: UnitsQuery = "K",
                vmin: VminQuery = None, vmax: VmaxQuery = None,
                colour_map: MapQuery = DEFAULT_COLOUR_MAP,
                variable: VariableQuery = None) -> Response:
        return cog_response("rgb", time, bbox, units, variable, (vmin, vmax, colour_map))

    @app.get("/colour-scale", summary="The colour scale /cog/rgb and /tiles use by default")
    def colour_scale(time: TimeQuery, bbox: BBoxQuery = None, units: UnitsQuery = "K",
                     vmin: VminQuery = None, vmax: VmaxQuery = None,
                     colour_map: MapQuery = DEFAULT_COLOUR_MAP,
                     variable: VariableQuery = None) -> dict[str, object]:
        result, _ = service.result(time, bbox, units, variable)
        return service.scale(result, vmin, vmax, colour_map).as_dict()

    @app.get("/tiles/{z}/{x}/{y}.png", summary="Web Mercator PNG tile of the SR field",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def tile(z: int, x: int, y: int, time: TimeQuery, units: UnitsQuery = "K",
             vmin: VminQuery = None, vmax: VmaxQuery = None,
             colour_map: MapQuery = DEFAULT_COLOUR_MAP,
             variable: VariableQuery = None) -> Response:
        result, cached = service.result(time, None, units, variable)
        scale = service.scale(result, vmin, vmax, colour_map)
        cog = service.product(result, "sr", None)
        png, tile_cached = service.tiles.get(
            (result.key, z, x, y, scale), lambda: render_tile(cog, z, x, y, scale))
        extra = {"X-Tile-Cache": "hit" if tile_cached else "miss",
                 "Cache-Control": "public, max-age=3600"}
        return Response(png, media_type="image/png", headers={**headers(result, cached), **extra})

    @app.get("/tilejson.json", summary="TileJSON 3.0 for MapLibre, Leaflet and story tools")
    def tilejson(request: Request, time: TimeQuery, units: UnitsQuery = "K",
                 vmin: VminQuery = None, vmax: VmaxQuery = None,
                 colour_map: MapQuery = DEFAULT_COLOUR_MAP,
                 variable: VariableQuery = None) -> dict[str, object]:
        result, _ = service.result(time, None, units, variable)
        scale = service.scale(result, vmin, vmax, colour_map)
        west, south, east, north = geographic_bounds(service.product(result, "sr", None))
        query = f"time={result.key.time}&units={units}&vmin={scale.vmin}&vmax={scale.vmax}" \
                f"&colour_map={colour_map}&variable={result.key.variable}"
        base = str(request.base_url).rstrip("/")
        return {"tilejson": "3.0.0", "name": f"{result.sr.name} SR {result.key.time}",
                "tiles": [f"{base}/tiles/{{z}}/{{x}}/{{y}}.png?{query}"],
                "bounds": [west, south, east, north], "minzoom": 0, "maxzoom": MAX_ZOOM,
                "center": [(west + east) / 2, (south + north) / 2, 6],
                "colour_scale": scale.as_dict()}

    return app

