"""The TensorRT backend, one job per module (imports nothing heavy; tensorrt, cuda-python and
onnx are imported only when an engine is built or run):

- ``profiles``: optimization-profile shapes and how ``--tile``/``--min/--opt/--max`` give them
- ``fingerprint``: what an engine was built from and for (the sidecar), checked before loading
- ``cache``: engines keyed by fingerprint, timing caches
- ``gate``: the accuracy gate (numpy)
- ``fp16``: FP16 ONNX graph with FP32 islands for strongly typed TensorRT 11 (needs onnx)
- ``builder``: TensorRT 10 / 11 builds per precision recipe, retried until one passes the gate
- ``build``: ONNX -> gated engine + sidecar (``sr-export to-trt``, runtime rebuilds)
- ``runner``: ``TensorRTEngine`` (double-buffered CUDA streams) and ``load_tensorrt``
- ``ort_provider``: ONNX Runtime's TensorRT execution provider (``--backend ort-tensorrt``)
"""
