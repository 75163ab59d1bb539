"""sr-edge runtime: DataCube -> super-resolution engine -> Cloud-Optimized GeoTIFF.

This package never imports torch, lightning or tensorrt at import time; those live behind extras.
"""

__version__ = "0.1.0"
