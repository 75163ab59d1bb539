"""Is a Winograd 3x3 conv worth writing as plain ONNX ops? One conv against F(2x2, 3x3) in graph.

    python -m benchmarks.probe_winograd [--channels 64 --outputs 256 --size 128] [--rounds 7]

The demo configuration's exact path runs at about 90 % of the measured FP32 peak, half of its
time in one 3x3 conv (64 -> 256 at 4x LR), so only fewer FLOPs could speed it up. Winograd
F(2x2, 3x3) needs 2.25x fewer multiplications in its GEMM part; here it is written as the ops
an sr-edge export could contain, on ONNX Runtime, one thread, process CPU time:

- ``conv``: the Conv node (ONNX Runtime's blocked direct convolution);
- ``winograd``: the input transform as a grouped 4x4 stride-2 Conv (one 16-channel kernel
  group per input channel, weights B^T d B), a Transpose to (16, C, tiles), one batched MatMul
  with the transformed kernels (G g G^T), a MatMul with the output transform (A^T m A) and a
  Transpose back to the image.

Both are checked against each other (the transform is exact up to rounding) before timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

# F(2x2, 3x3) (Lavin and Gray, 2016): input, kernel and output transforms.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def graphs(weight: np.ndarray, bias: np.ndarray, size: int):
    """(conv, winograd) ONNX models of the same 'same' 3x3 conv on (1, C, size, size)."""
    from onnx import TensorProto, helper, numpy_helper

    outputs, channels = weight.shape[:2]
    if size % 2:
        raise ValueError(f"--size must be even for 2x2 output tiles, not {size}")
    tiles = size // 2

    def constant(name: str, value: np.ndarray):
        return numpy_helper.from_array(np.asarray(value), name)

    def model(nodes, initializers):
        graph = helper.make_graph(
            nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                           [1, channels, size, size])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    conv = model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
                 [constant("w", weight), constant("b", bias)])
    kernels = np.einsum("pa,kcab,qb->pqkc", G, weight.astype(np.float64), G)
    inputs = np.einsum("pa,qb->pqab", B_T, B_T).reshape(16, 1, 4, 4)
    output = np.einsum("ip,jq->ijpq", A_T, A_T).reshape(4, 16)
    nodes = [
        helper.make_node("Conv", ["x", "bt"], ["v"], group=channels, strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["v", "s1"], ["v1"]),
        helper.make_node("Transpose", ["v1"], ["v2"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["u", "v2"], ["m"]),
        helper.make_node("Reshape", ["m", "s2"], ["m2"]),
        helper.make_node("MatMul", ["at", "m2"], ["o"]),
        helper.make_node("Reshape", ["o", "s3"], ["o2"]),
        helper.make_node("Transpose", ["o2"], ["o3"], perm=[2, 3, 0, 4, 1]),
        helper.make_node("Reshape", ["o3", "s4"], ["o4"]),
        helper.make_node("Add", ["o4", "b4"], ["y"])]
    winograd = model(nodes, [
        constant("bt", np.tile(inputs, (channels, 1, 1, 1)).astype(np.float32)),
        constant("s1", np.array([channels, 16, tiles * tiles])),
        constant("u", kernels.reshape(16, outputs, channels).astype(np.float32)),
        constant("s2", np.array([16, outputs * tiles * tiles])),
        constant("at", output.astype(np.float32)),
        constant("s3", np.array([2, 2, outputs, tiles, tiles])),
        constant("s4", np.array([1, outputs, size, size])),
        constant("b4", bias.reshape(1, outputs, 1, 1))])
    return conv, winograd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--outputs", type=int, default=256)
    parser.add_argument("--size", type=int, default=128, help="input side (even)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    import onnxruntime as ort

    from benchmarks.bench_end_to_end import load_average
    from sr_runtime.machine import machine_info

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((args.outputs, args.channels, 3, 3))
              / np.sqrt(9 * args.channels)).astype(np.float32)
    bias = rng.standard_normal(args.outputs).astype(np.float32)
    x = rng.standard_normal((1, args.channels, args.size, args.size)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
                for name, model in zip(("conv", "winograd"), graphs(weight, bias, args.size),
                                       strict=True)}
    reference = sessions["conv"].run(None, {"x": x})[0]
    difference = float(np.abs(sessions["winograd"].run(None, {"x": x})[0] - reference).max())
    print(f"machine: {machine_info().line()}\nload average at start {load_average()}")
    print(f"conv {args.channels} -> {args.outputs}, 3x3, {args.size} x {args.size}; winograd "
          f"against conv: max abs difference {difference:.1e} (output scale "
          f"{float(np.abs(reference).max()):.1f})")
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            started = time.process_time()
            session.run(None, {"x": x})
            times[name].append(time.process_time() - started)
    conv_ms = 1e3 * float(np.median(times["conv"]))
    for name in sessions:
        ms = 1e3 * float(np.median(times[name]))
        print(f"{name}: {ms:.1f} ms (median of {args.rounds}, one thread, CPU time; "
              f"{conv_ms / ms:.2f}x the conv)")
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
