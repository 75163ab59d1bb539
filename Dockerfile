# sr-serve on CPU: the HTTP service over the embedded sample DataCube with the shipped model.
# No torch, no GPU packages: only the runtime and the `serve` extra.
#
#   docker build -t sr-edge:cpu .
#   docker run --rm -p 127.0.0.1:8000:8000 sr-edge:cpu
#   curl -o sr.tif 'http://127.0.0.1:8000/cog/sr?time=2024-10-11T12:00'
#
# Inside the container the service listens on 0.0.0.0 (so Docker can forward the port);
# `-p 127.0.0.1:8000:8000` keeps it reachable from this machine only. GPUs: Dockerfile.trt.
FROM python:3.11.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRADIO_ANALYTICS_ENABLED=False

WORKDIR /opt/sr-edge
COPY pyproject.toml README.md ./
COPY sr_runtime ./sr_runtime
COPY sr_export ./sr_export

# rasterio and onnxruntime come as manylinux wheels (GDAL inside): no compiler, no apt packages.
RUN set -eux; \
    python -m pip install ".[serve]"; \
    python -c "import sr_runtime.serve.http, sr_runtime.results; print('sr-serve ready')"; \
    useradd --create-home --uid 10001 sr-edge

USER sr-edge
WORKDIR /home/sr-edge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["sr-serve", "--host", "0.0.0.0", "--port", "8000"]
