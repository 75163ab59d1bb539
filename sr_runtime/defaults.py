"""Where the embedded sample DataCube and the default model live (package data), and what a
run without a model says when the default model cannot run on a source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sr_runtime.errors import UsageError

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_DIR = DATA_DIR / "sample"
LR_STORE_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
HR_STORE_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-high-maps-v0.zarr"
#: The LR-only t2m model (SRResNet 32/8, bicubic skip), trained on the Alpine box itself.
LR_ONLY_MODEL = DATA_DIR / "models" / "sr-edge-t2m-x8.onnx"
#: The orography-aware t2m + d2m model with clock inputs, trained on boxes that exclude the
#: Alpine sample box; it wins there too (0.413 K against 0.431 K, models/README.md), so it is the
#: default. It needs t2m and d2m in the source and the static orog/lsm of the high store.
OROGRAPHY_MODEL = DATA_DIR / "models" / "sr-edge-t2m-d2m-orog-x8.onnx"
DEFAULT_MODEL = OROGRAPHY_MODEL


def sample_lr_store() -> Path:
    return SAMPLE_DIR / LR_STORE_NAME


def sample_hr_store() -> Path:
    return SAMPLE_DIR / HR_STORE_NAME


@contextmanager
def default_model_hint(model_given: bool) -> Iterator[None]:
    """A source the default model cannot run on (no d2m, no high-resolution store beside it)
    may suit the LR-only t2m model, which needs neither: a run without --model says so
    (sr-run, sr-serve, sr-app)."""
    try:
        yield
    except UsageError as error:
        if model_given or not LR_ONLY_MODEL.is_file():
            raise
        raise type(error)(f"{error}; or run the LR-only t2m model, which needs neither d2m nor "
                          f"static fields: --model {LR_ONLY_MODEL}") from error
