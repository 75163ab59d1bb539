"""What INT8 would give a model with static HR inputs (the default model), before building it in.

    python -m benchmarks.probe_int8_static [--rounds 5] [--model M.onnx]

``sr-export quantize`` refuses models with static or clock inputs (its calibration and gate read
LR fields alone). This probe measures whether lifting that is worth it on the machine at hand:
every conv quantized by ``sr-export quantize``'s recipe (ONNX Runtime QDQ, uint8 activations,
int8 per-channel weights, 7-bit where the CPU has no VNNI, MinMax calibrated on 12 sample steps
with their clock channels and static fields), its RMSE against the FP32 model on 16 other steps
(the gate's limit is 0.05 K), and 1-thread process CPU time, median of ``--rounds`` interleaved
rounds, at LR 32 and 128, for ONNX Runtime FP32 and INT8 and for OpenVINO FP32, BF16 and the
same QDQ graph (where OpenVINO is installed). Needs the ``export`` extra (onnx, for ONNX
Runtime's quantizer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_end_to_end import load_average, sample_range_inputs  # noqa: E402

MAX_RMSE_K = 0.05


def quantize_all_convs(model: Path, out: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """``sr-export quantize``'s recipe (:func:`sr_export.quantize.quantize_to_proto`) with
    every conv in INT8 and every other node in FP32."""
    import onnx

    from sr_export.quantize import quantize_to_proto

    nodes = onnx.load(str(model), load_external_data=False).graph.node
    if any(not node.name for node in nodes):
        raise SystemExit(f"{model} has unnamed nodes; re-export it with `sr-export to-onnx`")
    keep = [node.name for node in nodes if node.op_type != "Conv"]
    quantized, _ = quantize_to_proto(model, feeds, keep_fp32=keep)
    onnx.save(quantized, str(out))


def runners(fp32: Path, int8: Path) -> dict[str, Callable[[dict], np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    found: dict[str, Callable[[dict], np.ndarray]] = {}
    for label, path in (("ONNX Runtime FP32", fp32), ("ONNX Runtime INT8 (all convs)", int8)):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        found[label] = lambda feeds, s=session: s.run(None, feeds)[0]
    try:
        import openvino as ov
    except ImportError:
        return found
    core = ov.Core()
    for label, path, precision in (("OpenVINO FP32", fp32, "f32"), ("OpenVINO BF16", fp32, "bf16"),
                                   ("OpenVINO on the INT8 graph", int8, "f32")):
        if precision == "bf16" and "BF16" not in core.get_property("CPU",
                                                                   "OPTIMIZATION_CAPABILITIES"):
            continue
        compiled = core.compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def run(feeds: dict, r=request) -> np.ndarray:
            r.infer(feeds)
            return r.get_output_tensor(0).data.copy()

        found[label] = run
    return found


def main(argv: list[str] | None = None) -> int:
    import onnx

    from sr_runtime.defaults import DEFAULT_MODEL
    from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
    from sr_runtime.machine import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    proto = onnx.load(str(args.model), load_external_data=False)
    description = ModelDescription.from_metadata(
        {p.key: p.value for p in proto.metadata_props}, str(args.model))
    if not description.static_inputs:
        raise SystemExit(f"{args.model.name} has no static inputs: use sr-export quantize")
    inputs, statics = sample_range_inputs(description)

    def feeds(lr: np.ndarray, repeat: int = 1) -> dict[str, np.ndarray]:
        tile = (1, 1, repeat, repeat)
        return {LR_INPUT: np.tile(lr[None], tile).astype(np.float32),
                HR_STATIC_INPUT: np.tile(statics[None], tile).astype(np.float32)}

    print(f"machine: {machine_info().line()}\nload average at start {load_average()}\n"
          f"{args.model.name}: calibration steps 0, 4, ..., 44; accuracy on steps 1, 4, ..., 46")
    with tempfile.TemporaryDirectory(prefix="sr-edge-int8-probe-") as scratch:
        int8 = Path(scratch) / "model.int8.onnx"
        quantize_all_convs(args.model, int8, [feeds(inputs[i]) for i in range(0, 48, 4)])
        run = runners(args.model, int8)
        reference = run["ONNX Runtime FP32"]
        held_out = [feeds(inputs[i]) for i in range(1, 48, 3)]
        expected = [reference(f) for f in held_out]
        print("\n| engine | RMSE vs FP32 (K) | gate (<= 0.05 K) | LR 32 ms | LR 128 ms |")
        print("| --- | ---: | --- | ---: | ---: |")
        timings: dict[str, dict[int, list[float]]] = {name: {32: [], 128: []} for name in run}
        for lr_size in (32, 128):
            timed = feeds(inputs[0], lr_size // inputs[0].shape[-1])
            for fn in run.values():
                fn(timed)  # warm-up: compile, allocate
            for _ in range(args.rounds):
                for name, fn in run.items():
                    started = time.process_time()
                    fn(timed)
                    timings[name][lr_size].append(time.process_time() - started)
        for name, fn in run.items():
            rmse = max(float(np.sqrt(np.mean((fn(f) - e) ** 2)))
                       for f, e in zip(held_out, expected, strict=True))
            ms = {size: 1e3 * float(np.median(t)) for size, t in timings[name].items()}
            verdict = "passes" if rmse <= MAX_RMSE_K else "FAILS"
            print(f"| {name} | {rmse:.4f} | {verdict} | {ms[32]:.1f} | {ms[128]:.1f} |")
    print(f"\nRMSE: the largest over the held-out steps. load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
