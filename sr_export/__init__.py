"""sr-edge export side: models, checkpoints, training and conversion (needs the `export` extra)."""

from sr_runtime import __version__

__all__ = ["__version__"]
