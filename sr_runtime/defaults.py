"""Where the embedded sample DataCube and the default model live (package data)."""

from __future__ import annotations

from pathlib import Path

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
