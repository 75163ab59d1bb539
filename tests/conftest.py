"""Fixtures: tiny models, tiny checkpoints in every accepted format, tiny EDH-layout stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sr_runtime.description import (
    HR_OUTPUT,
    HR_STATIC_INPUT,
    LR_INPUT,
    ModelDescription,
    StaticSpec,
    VariableSpec,
)


@pytest.fixture(scope="session", autouse=True)
def private_check_cache(tmp_path_factory):
    """The load-time graph checks are remembered on disk; tests (and the processes they start)
    keep theirs in a folder of their own, never in the user's cache."""
    import os

    from sr_runtime.engines.graph_check import CHECK_CACHE_ENV

    folder = tmp_path_factory.mktemp("graph-checks")
    before = os.environ.get(CHECK_CACHE_ENV)
    os.environ[CHECK_CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CHECK_CACHE_ENV, None)
    else:
        os.environ[CHECK_CACHE_ENV] = before


EDH_LR_LAT = np.linspace(-90, 90, 512)
EDH_LR_LON = np.linspace(-180, 180, 1025)
DEMO_STATS = {"lr_mean": 10.0072, "lr_std": 4.3036, "hr_mean": 10.0942, "hr_std": 4.2342}


def analytic_t2m(time_hours: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A field whose every cell is different and predictable: easy to locate in outputs."""
    t = time_hours[:, None, None]
    return (280.0 + 0.5 * lat[None, :, None] + 0.07 * lon[None, None, :]
            + 0.01 * t).astype(np.float32)


#: CF attributes of the variables as the Earth Data Hub stores carry them
#: (/work/shared/reference/edh-climate-dt.md; the sample's stores have the same).
EDH_ATTRS = {
    "t2m": {"units": "K", "standard_name": "air_temperature",
            "long_name": "2 metre temperature", "GRIB_paramId": 167, "GRIB_shortName": "2t"},
    "d2m": {"units": "K", "standard_name": "dew_point_temperature",
            "long_name": "2 metre dewpoint temperature", "GRIB_paramId": 168,
            "GRIB_shortName": "2d"},
    "orog": {"units": "m", "long_name": "Orography", "GRIB_paramId": 228002,
             "GRIB_shortName": "orog"},
    "lsm": {"units": "(0 - 1)", "standard_name": "land_binary_mask", "long_name": "Land-sea mask",
            "GRIB_paramId": 172, "GRIB_shortName": "lsm"},
}
#: The dew point sits this far below the analytic t2m in the fixture stores.
DEW_POINT_DEPRESSION_K = 4.0
EDH_HR_LAT = np.linspace(-90, 90, 4096)
EDH_HR_LON = np.linspace(-180, 180, 8193)
LR_SLICES = (slice(360, 376), slice(526, 550))  # the default LR window of write_edh_store


def analytic_orog(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Terrain-like heights (m, 0..~2000) whose every HR cell differs: easy to locate."""
    return (900.0 + 600.0 * np.sin(3.0 * lat[:, None]) * np.cos(2.0 * lon[None, :])
            + 40.0 * lat[:, None] - 25.0 * lon[None, :]).clip(0.0, None).astype(np.float32)


def analytic_lsm(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A land fraction in 0..1: sea to the south-west of (40 N, 9 E), land to the north-east."""
    return np.clip(0.5 + 0.8 * (lat[:, None] - 40.0) + 0.6 * (lon[None, :] - 9.0),
                   0.0, 1.0).astype(np.float32)


def _edh_variables(variables: Sequence[str], base: np.ndarray) -> dict[str, tuple]:
    """t2m = ``base``, d2m = ``base`` minus the dew-point depression, with their EDH attributes."""
    data = {"t2m": base, "d2m": base - np.float32(DEW_POINT_DEPRESSION_K)}
    return {name: (("time", "latitude", "longitude"), np.asarray(data.get(name, base),
                                                                dtype=np.float32),
                   dict(EDH_ATTRS.get(name, EDH_ATTRS["t2m"]))) for name in variables}


def write_edh_store(path: Path, *, lat_slice: slice = LR_SLICES[0],
                    lon_slice: slice = LR_SLICES[1], start: str = "2024-10-11T00",
                    hours: int = 6, variables: Sequence[str] = ("t2m",),
                    zarr_format: int = 3, consolidated: bool = True,
                    values: np.ndarray | None = None) -> Path:
    """A small store with the Earth Data Hub layout and real EDH LR coordinate values.

    ``values`` (time, latitude, longitude), ascending latitude as on the Hub, replaces the
    analytic field (t2m; d2m is it minus :data:`DEW_POINT_DEPRESSION_K`).
    """
    lat, lon = EDH_LR_LAT[lat_slice], EDH_LR_LON[lon_slice]
    times = np.datetime64(start, "ns") + np.arange(hours) * np.timedelta64(1, "h")
    if values is None:
        values = analytic_t2m(np.arange(hours, dtype=np.float64), lat, lon)
    values = np.asarray(values, dtype=np.float32)
    ds = xr.Dataset(_edh_variables(variables, values),
                    coords={"time": times, "latitude": lat, "longitude": lon})
    ds.to_zarr(path, zarr_format=zarr_format, consolidated=consolidated, mode="w")
    return path


def hr_window(lr_slice: slice, lr_axis: np.ndarray, hr_axis: np.ndarray,
              margin: int = 1) -> slice:
    """The HR cells whose centres lie in the extent of the LR cells ``lr_slice``, plus
    ``margin`` cells on each side (negative: fewer)."""
    step = float(lr_axis[1] - lr_axis[0])
    low, high = lr_axis[lr_slice][0] - step / 2, lr_axis[lr_slice][-1] + step / 2
    first = int(np.searchsorted(hr_axis, low)) - margin
    last = int(np.searchsorted(hr_axis, high)) + margin
    return slice(max(first, 0), min(last, hr_axis.size))


def write_edh_high_store(path: Path, *, lr_slices: tuple[slice, slice] = LR_SLICES,
                         start: str = "2024-10-11T00", hours: int = 6,
                         variables: Sequence[str] = ("t2m", "d2m"),
                         statics: Sequence[str] = ("orog", "lsm"), static_time: bool = False,
                         margin: int = 1, change: Callable[[xr.Dataset], xr.Dataset] | None = None,
                         ) -> Path:
    """The Earth Data Hub "high-maps" store over the region of an LR fixture store: real EDH
    HR coordinates (np.linspace(-90, 90, 4096), np.linspace(-180, 180, 8193)), t2m/d2m hourly
    (the analytic fields on the HR grid), static ``orog`` (m) and ``lsm`` (0 - 1) as 2-D
    (latitude, longitude) variables, or along the store's time axis (``static_time``),
    chunks (24, 512, 512), Zarr v3, consolidated. ``margin``: extra HR cells around the LR
    region (negative: a store that does not quite cover it); ``change`` alters the dataset
    before it is written (wrong units, NaN...)."""
    lat_window = hr_window(lr_slices[0], EDH_LR_LAT, EDH_HR_LAT, margin)
    lon_window = hr_window(lr_slices[1], EDH_LR_LON, EDH_HR_LON, margin)
    lat, lon = EDH_HR_LAT[lat_window], EDH_HR_LON[lon_window]
    times = np.datetime64(start, "ns") + np.arange(hours) * np.timedelta64(1, "h")
    data = _edh_variables(variables, analytic_t2m(np.arange(hours, dtype=np.float64), lat, lon))
    fields = {"orog": analytic_orog(lat, lon), "lsm": analytic_lsm(lat, lon)}
    for name in statics:
        values = fields[name]
        dims: tuple[str, ...] = ("latitude", "longitude")
        if static_time:  # the store's time axis, the same field at every step
            values, dims = np.repeat(values[None], hours, axis=0), ("time", *dims)
        data[name] = (dims, values, dict(EDH_ATTRS[name]))
    coords = {"time": times, "latitude": lat, "longitude": lon}
    ds = xr.Dataset(data, coords=coords)
    if change is not None:
        ds = change(ds)
    encoding = {}
    for name, var in ds.data_vars.items():
        sizes = {"time": 24, "latitude": 512, "longitude": 512}
        encoding[name] = {"chunks": tuple(min(sizes.get(str(d), n), n)
                                          for d, n in zip(var.dims, var.shape, strict=True))}
    ds.to_zarr(path, zarr_format=3, consolidated=True, mode="w", encoding=encoding)
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


def _graph_model(path: Path, nodes: list, initializers: list, description: ModelDescription,
                 channels_in: int = 1, input_name: str = LR_INPUT) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                       ["batch", channels_in, "h", "w"])],
        [helper.make_tensor_value_info(HR_OUTPUT, TensorProto.FLOAT, ["batch", None, "H", "W"])],
        initializer=initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    return save_described_model(proto, description, path)


def conv_model(path: Path, *, lr_kernels: Sequence[int] = (9, 9), hr_kernel: int = 0,
               claimed_halo: int | None = None, scale: int = 8, graph_scale: int | None = None,
               seed: int = 0, nan_weights: bool = False, input_name: str = LR_INPUT,
               variables: Sequence[str] = ("t2m",)) -> Path:
    """A random CNN on physical kelvin: x + 5 K * convs((x - 280) / 10), nearest x``scale``.

    Its receptive field is known by construction: each LR conv adds ``k // 2`` LR cells, an HR
    conv after the upsampling reaches ``ceil((k // 2) / scale)`` LR cells further. The
    description claims ``claimed_halo`` (default: the true value) and ``scale``;
    ``graph_scale`` makes the graph upsample by another factor; ``nan_weights`` corrupts a
    weight.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    graph_scale = graph_scale or scale
    inits = [numpy_helper.from_array(np.float32(280.0), "offset"),
             numpy_helper.from_array(np.float32(10.0), "spread"),
             numpy_helper.from_array(np.float32(5.0), "gain"),
             helper.make_tensor("scales", TensorProto.FLOAT, [4],
                                [1.0, 1.0, graph_scale, graph_scale])]
    nodes = [helper.make_node("Sub", [input_name, "offset"], ["centred"]),
             helper.make_node("Div", ["centred", "spread"], ["x0"])]
    width, current = 4, "x0"
    kernels = list(lr_kernels)
    for i, k in enumerate(kernels):
        c_in = 1 if i == 0 else width
        c_out = 1 if i == len(kernels) - 1 else width
        weight = rng.normal(0, 1.0 / np.sqrt(c_in * k * k), (c_out, c_in, k, k))
        if nan_weights and i == 0:
            weight[0, 0, k // 2, k // 2] = np.nan
        inits += [numpy_helper.from_array(weight.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, c_out).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"],
                                      pads=[k // 2] * 4))
        current = f"c{i}"
        if i < len(kernels) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    nodes += [helper.make_node("Mul", [current, "gain"], ["detail"]),
              helper.make_node("Add", [input_name, "detail"], ["y"]),
              helper.make_node("Resize", ["y", "", "scales"],
                               ["up" if hr_kernel else HR_OUTPUT], mode="nearest",
                               coordinate_transformation_mode="asymmetric",
                               nearest_mode="floor")]
    if hr_kernel:
        smooth = np.full((1, 1, hr_kernel, hr_kernel), 1.0 / hr_kernel**2, np.float32)
        inits.append(numpy_helper.from_array(smooth, "smooth"))
        nodes.append(helper.make_node("Conv", ["up", "smooth"], [HR_OUTPUT],
                                      pads=[hr_kernel // 2] * 4))
    true_halo = sum(k // 2 for k in kernels) + -(-(hr_kernel // 2) // scale)
    description = ModelDescription(
        scale=scale, architecture="RandomCNN",
        variables=tuple(VariableSpec(v, "K", 280.0, 10.0, 280.0, 10.0) for v in variables),
        halo_lr=true_halo if claimed_halo is None else claimed_halo)
    return _graph_model(path, nodes, inits, description, input_name=input_name)


def nan_where_cold_model(path: Path, threshold_k: float) -> Path:
    """Nearest x8 of ``lr + 0 * sqrt(lr - threshold)``: NaN wherever the input is colder than
    ``threshold_k``, finite elsewhere. Its description says "LR mean threshold + 20 K, std
    1 K", so the load-time probe (typical input from those statistics) sees finite output;
    only a check of the output written from colder data can catch it."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.float32(threshold_k), "threshold"),
             numpy_helper.from_array(np.float32(0.0), "zero"),
             helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 8.0, 8.0])]
    nodes = [helper.make_node("Sub", [LR_INPUT, "threshold"], ["excess"]),
             helper.make_node("Sqrt", ["excess"], ["root"]),
             helper.make_node("Mul", ["root", "zero"], ["nothing"]),
             helper.make_node("Add", [LR_INPUT, "nothing"], ["y"]),
             helper.make_node("Resize", ["y", "", "scales"], [HR_OUTPUT], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
    warm = threshold_k + 20.0
    description = ModelDescription(scale=8, architecture="NaNWhereCold",
                                   variables=(VariableSpec("t2m", "K", warm, 1.0, warm, 1.0),))
    return _graph_model(path, nodes, inits, description)


#: Normalization of the tiny static models' inputs (K; m; land fraction), near the sample's.
STATIC_VARIABLES = {"t2m": VariableSpec("t2m", "K", 283.0, 6.0, 283.0, 6.0),
                    "d2m": VariableSpec("d2m", "K", 278.0, 6.0, 278.0, 6.0)}
STATIC_SPECS = (StaticSpec("orog", "m", 700.0, 600.0), StaticSpec("lsm", "(0 - 1)", 0.7, 0.4))


def static_sr_model(path: Path, *, variables: Sequence[str] = ("t2m",), seed: int = 0,
                    lr_kernel: int = 5, hr_kernel: int = 3, static_kernel: int = 1,
                    scale: int = 8,
                    statics: Sequence[StaticSpec] = STATIC_SPECS,
                    claimed_halo: int | None = None) -> Path:
    """A tiny torch network taking (``lr``, ``hr_static``) -> ``hr`` as the issue-16 contract
    says, exported by torch.onnx.export (dynamo, dynamic N/h/w) with an sr-edge description:

    ``hr = nearest(lr) + 0.5 K * conv_hr([nearest(relu(conv_lr(norm lr))),
    conv_static(norm hr_static)])``, each variable and static field normalized inside the graph.
    Its receptive field is known by construction: ``lr_kernel // 2`` LR cells plus
    ``ceil((hr_kernel // 2) / scale)`` for the LR input, ``ceil((static_kernel // 2 +
    hr_kernel // 2) / scale)`` LR cells for the static input; the description claims the larger
    (or ``claimed_halo``).
    """
    import torch
    from torch import nn
    from torch.nn import functional

    specs = tuple(STATIC_VARIABLES[v] for v in variables)
    channels, static_count = len(specs), len(statics)

    class TinyStaticSR(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lr_conv = nn.Conv2d(channels, 4, lr_kernel, padding=lr_kernel // 2)
            self.static_conv = nn.Conv2d(static_count, static_count, static_kernel,
                                         padding=static_kernel // 2)
            self.hr_conv = nn.Conv2d(4 + static_count, channels, hr_kernel,
                                     padding=hr_kernel // 2)
            self.register_buffer("lr_mean", torch.tensor([v.lr_mean for v in specs])
                                 .view(1, -1, 1, 1))
            self.register_buffer("lr_std", torch.tensor([v.lr_std for v in specs])
                                 .view(1, -1, 1, 1))
            self.register_buffer("static_mean", torch.tensor([s.mean for s in statics])
                                 .view(1, -1, 1, 1))
            self.register_buffer("static_std", torch.tensor([s.std for s in statics])
                                 .view(1, -1, 1, 1))

        def forward(self, lr: torch.Tensor, hr_static: torch.Tensor) -> torch.Tensor:
            features = torch.relu(self.lr_conv((lr - self.lr_mean) / self.lr_std))
            up = functional.interpolate(features, scale_factor=scale, mode="nearest")
            static = self.static_conv((hr_static - self.static_mean) / self.static_std)
            detail = self.hr_conv(torch.cat([up, static], dim=1))
            return functional.interpolate(lr, scale_factor=scale, mode="nearest") + 0.5 * detail

    torch.manual_seed(seed)
    net = TinyStaticSR().eval()
    lr = torch.full((1, channels, 6, 7), 283.0)
    static = torch.full((1, static_count, 6 * scale, 7 * scale), 0.5)
    batch, height, width = (torch.export.Dim("batch"), torch.export.Dim("height", min=1),
                            torch.export.Dim("width", min=1))
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net, (lr, static), dynamo=True, external_data=False, verbose=False,
            input_names=[LR_INPUT, HR_STATIC_INPUT], output_names=[HR_OUTPUT],
            dynamic_shapes={"lr": {0: batch, 2: height, 3: width},
                            "hr_static": {0: batch, 2: scale * height, 3: scale * width}})
    proto = program.model_proto
    halo = max(lr_kernel // 2 + -(-(hr_kernel // 2) // scale),
               -(-(static_kernel // 2 + hr_kernel // 2) // scale))
    description = ModelDescription(
        scale=scale, variables=specs, architecture="TinyStaticSR",
        arch_params={"n_channels": 4, "static_channels": static_count, "conservation": "none"},
        halo_lr=halo if claimed_halo is None else claimed_halo, static_inputs=tuple(statics))
    return save_described_model(proto, description, path)


@pytest.fixture(scope="session")
def static_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny (lr, hr_static) ONNX models: ``one`` predicts t2m, ``two`` t2m and d2m."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("static-models")
    return {"one": static_sr_model(folder / "static-t2m.onnx"),
            "two": static_sr_model(folder / "static-t2m-d2m.onnx", variables=("t2m", "d2m"),
                                   seed=1)}


@pytest.fixture
def nan_model(tmp_path: Path) -> Path:
    """A model whose weights contain NaN (a corrupt file): every output value is NaN."""
    return conv_model(tmp_path / "nan.onnx", lr_kernels=(3,), nan_weights=True)


@pytest.fixture
def nearest_model(tmp_path: Path) -> Path:
    return resize_model(tmp_path / "nearest.onnx")


@pytest.fixture
def tiny_config():
    from sr_export.model import SRResNetConfig

    return SRResNetConfig(n_channels=8, n_blocks=1)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """What the demo's own training leaves behind (real Lightning): best .ckpt, .pt, config.json."""
    from tests.export.demo_reference import train_demo

    return train_demo(tmp_path_factory.mktemp("demo-run"))


@pytest.fixture
def make_demo_checkpoint(tmp_path: Path, demo_run) -> Callable[..., tuple[Path, Path]]:
    """A checkpoint in the demo's layout (its Lightning .ckpt or plain .pt) and config.json.

    The .ckpt is the demo run's real Lightning checkpoint (epoch, global_step, loops,
    callbacks, optimizer_states, lr_schedulers, ...) with this network's weights; config.json
    has the demo's exact shape, with ``config_overrides`` ("section.key": value, None deletes).
    """

    def make(kind: str = "lightning", n_channels: int = 8, n_blocks: int = 1,
             seed: int = 0, config_overrides: dict | None = None) -> tuple[Path, Path]:
        import torch

        from tests.export.demo_reference import SRResNet, demo_config

        torch.manual_seed(seed)
        net = SRResNet(n_channels=n_channels, n_blocks=n_blocks)
        with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        state = net.state_dict()
        if kind == "lightning":
            ckpt = tmp_path / "best-val-ssim-epoch=42-val_ssim=0.55.ckpt"
            raw = torch.load(demo_run.ckpt, weights_only=True)
            raw["state_dict"] = {f"model.{k}": v for k, v in state.items()}
            torch.save(raw, ckpt)
        else:
            ckpt = tmp_path / "best_model.pt"
            torch.save(state, ckpt)
        config = demo_config(n_channels, n_blocks)
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


def assert_one_line_error(result, exit_code: int) -> str:
    """A CLI result that failed the way sr-edge must: the exit code, one ``error:`` line, no
    traceback, no exception escaping the CLI. Returns the message."""
    text = result.output.strip()
    assert result.exit_code == exit_code, text
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("error: "), text
    return text


def copy_model_folder(folder: Path, dst: Path, model: str = "model.onnx") -> Path:
    """A private copy of a module-scoped model folder (a model, its variants, its tune record),
    free to be modified by one test; returns the copy's ``model``."""
    import shutil

    for path in folder.iterdir():
        shutil.copy(path, dst / path.name)
    return dst / model


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: to prove nothing was written."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}
