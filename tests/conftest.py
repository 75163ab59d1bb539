"""Fixtures: tiny models, tiny checkpoints in every accepted format, tiny EDH-layout stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sr_runtime.description import HR_OUTPUT, LR_INPUT, ModelDescription, VariableSpec

EDH_LR_LAT = np.linspace(-90, 90, 512)
EDH_LR_LON = np.linspace(-180, 180, 1025)
DEMO_STATS = {"lr_mean": 10.0072, "lr_std": 4.3036, "hr_mean": 10.0942, "hr_std": 4.2342}


def analytic_t2m(time_hours: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A field whose every cell is different and predictable: easy to locate in outputs."""
    t = time_hours[:, None, None]
    return (280.0 + 0.5 * lat[None, :, None] + 0.07 * lon[None, None, :]
            + 0.01 * t).astype(np.float32)


def write_edh_store(path: Path, *, lat_slice: slice = slice(360, 376),
                    lon_slice: slice = slice(526, 550), start: str = "2024-10-11T00",
                    hours: int = 6, variables: Sequence[str] = ("t2m",),
                    zarr_format: int = 3, consolidated: bool = True) -> Path:
    """A small store with the Earth Data Hub layout and real EDH LR coordinate values."""
    lat, lon = EDH_LR_LAT[lat_slice], EDH_LR_LON[lon_slice]
    times = np.datetime64(start, "ns") + np.arange(hours) * np.timedelta64(1, "h")
    values = analytic_t2m(np.arange(hours, dtype=np.float64), lat, lon)
    data_vars = {name: (("time", "latitude", "longitude"), values,
                        {"units": "K", "standard_name": "air_temperature",
                         "long_name": "2 metre temperature"}) for name in variables}
    ds = xr.Dataset(data_vars, coords={"time": times, "latitude": lat, "longitude": lon})
    ds.to_zarr(path, zarr_format=zarr_format, consolidated=consolidated, mode="w")
    return path


@pytest.fixture
def edh_store(tmp_path: Path) -> Path:
    return write_edh_store(tmp_path / "lr.zarr")


def resize_model(path: Path, *, scale: int = 8, variables: Sequence[str] = ("t2m",),
                 lr_step_deg: float = 0.0) -> Path:
    """An ONNX model that upsamples by nearest neighbour: output cell = containing LR cell."""
    from onnx import TensorProto, helper

    channels = len(variables)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, scale, scale])
    node = helper.make_node("Resize", [LR_INPUT, "", "scales"], [HR_OUTPUT], mode="nearest",
                            coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    graph = helper.make_graph(
        [node], "nearest",
        [helper.make_tensor_value_info(LR_INPUT, TensorProto.FLOAT,
                                       ["batch", channels, "h", "w"])],
        [helper.make_tensor_value_info(HR_OUTPUT, TensorProto.FLOAT,
                                       ["batch", channels, "H", "W"])],
        initializer=[scales])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    description = ModelDescription(
        scale=scale, architecture="NearestResize",
        variables=tuple(VariableSpec(v, "K", 0.0, 1.0, 0.0, 1.0) for v in variables),
        lr_step_deg=lr_step_deg)
    return save_described_model(proto, description, path)


def save_described_model(proto, description: ModelDescription, path: Path) -> Path:
    """Store ``description`` in ``proto``'s metadata as sr-export does, check and save it."""
    import onnx

    for key, value in description.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return path


@pytest.fixture
def nearest_model(tmp_path: Path) -> Path:
    return resize_model(tmp_path / "nearest.onnx")


@pytest.fixture
def tiny_config():
    from sr_export.model import SRResNetConfig

    return SRResNetConfig(n_channels=8, n_blocks=1)


@pytest.fixture
def make_demo_checkpoint(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write a checkpoint in the demo's layout (Lightning or plain) and its config.json."""

    def make(kind: str = "lightning", n_channels: int = 8, n_blocks: int = 1,
             seed: int = 0, config_overrides: dict | None = None) -> tuple[Path, Path]:
        import torch

        from sr_export.model import SRResNet, SRResNetConfig

        torch.manual_seed(seed)
        net = SRResNet(SRResNetConfig(n_channels=n_channels, n_blocks=n_blocks,
                                      output_activation="relu"))
        with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        state = net.state_dict()
        if kind == "lightning":
            ckpt = tmp_path / "best-val-ssim-epoch=42-val_ssim=0.55.ckpt"
            torch.save({"epoch": 42, "global_step": 100, "pytorch-lightning_version": "2.4.0",
                        "state_dict": {f"model.{k}": v for k, v in state.items()}}, ckpt)
        else:
            ckpt = tmp_path / "best_model.pt"
            torch.save(state, ckpt)
        config = {
            "model": {"architecture": "SRResNet", "large_kernel_size": 9,
                      "small_kernel_size": 3, "n_channels": n_channels, "n_blocks": n_blocks,
                      "scaling_factor": 8},
            "training": {"learning_rate": 0.001, "batch_size": 32, "epochs": 100},
            "dataset": {"data_variable": ["t2m"], "data_target": ["t2m"],
                        "unit": "Temperature (C)", **DEMO_STATS},
        }
        for dotted, value in (config_overrides or {}).items():
            section, key = dotted.split(".")
            if value is None:
                config[section].pop(key, None)
            else:
                config[section][key] = value
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        return ckpt, config_path

    return make
