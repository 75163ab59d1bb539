"""ONNX Runtime's per-node time split before and after the exact rewrites.

    python benchmarks/profile_rewrites.py [--size 32] [--threads 1] [--runs 5] [--out FILE.md]

For the demo's configuration (64 channels, 16 blocks, seeded random weights) and the shipped
default model: the export with BatchNorm folding only (``export_onnx(optimize=False)``) against
the default export with every exact rewrite, each profiled by ONNX Runtime on the same LR tile.
Prints (and with ``--out`` writes) markdown tables by op type and by node.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.models import DEFAULT_CHECKPOINT, DEMO, random_checkpoint  # noqa: E402


def profile_model(label: str, loaded, size: int, threads: int, runs: int, workdir: Path) -> str:
    from sr_export.onnx_export import export_onnx
    from sr_export.tune import profile_nodes
    from sr_runtime.synthetic import sample_input

    lr = sample_input(loaded.description, shape=(size, size), batch=1, seed=size)
    sections = [f"## {label}, LR {size}x{size}, {threads} thread(s)", ""]
    for title, optimize in (("before: BatchNorm folded only", False),
                            ("after: every exact rewrite", True)):
        path = workdir / f"{label}-{'exact' if optimize else 'plain'}.onnx"
        export_onnx(loaded, path, optimize=optimize)
        profile = profile_nodes(path, lr, runs=runs, threads=threads)
        sections += [f"### {title}", "", profile.table(top=6), ""]
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="LR tile size")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--runs", type=int, default=5, help="profiled runs after one warm-up")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    if args.out:  # a bad path fails now, not after minutes of profiling
        from sr_runtime.errors import OutputError
        from sr_runtime.paths import check_output

        try:
            check_output(args.out, overwrite=True)
        except OutputError as exc:
            parser.error(str(exc))

    from sr_export.checkpoints import load_checkpoint

    models = [(DEMO.name, random_checkpoint(DEMO))]
    if DEFAULT_CHECKPOINT.is_file():
        models.append(("shipped", load_checkpoint(DEFAULT_CHECKPOINT)))
    with tempfile.TemporaryDirectory(prefix="sr-edge-profile-") as scratch:
        text = "\n\n".join(profile_model(label, loaded, args.size, args.threads, args.runs,
                                         Path(scratch)) for label, loaded in models)
    print(text)
    if args.out:
        from sr_runtime.paths import write_atomically

        write_atomically(f"# Per-node time split (ONNX Runtime profiling)\n\n{text}\n".encode(),
                         args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
