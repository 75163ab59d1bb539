"""Exported ONNX files carry no build-machine paths: the same checkpoint exported from two
folders gives the same bytes, and neither those folders nor the source tree appear in them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import sr_export
from sr_runtime.defaults import DEFAULT_MODEL

REPO = Path(sr_export.__file__).resolve().parents[1]
EXPORT = "import sys; from sr_export.cli import main; sys.argv[0] = 'sr-export'; main()"
TRACE_MARKERS = (b'File "', b"site-packages", b".py\", line")


def strings_in(path: Path) -> list[str]:
    """Every string field anywhere in the model (names, metadata, doc strings, attributes)."""
    found: list[str] = []

    def walk(message) -> None:
        for field, value in message.ListFields():
            repeated = (field.is_repeated if hasattr(field, "is_repeated")
                        else field.label == field.LABEL_REPEATED)
            values = value if repeated else [value]
            if field.message_type is not None:
                for child in values:
                    walk(child)
            elif field.type == field.TYPE_STRING:
                found.extend(values)
            elif field.type == field.TYPE_BYTES and field.name != "raw_data":
                found.extend(v.decode("utf-8", "replace") for v in values)

    walk(onnx.load(str(path)))
    return found


def export_in(folder: Path, checkpoint: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(checkpoint, folder / "model.ckpt")
    result = subprocess.run([sys.executable, "-c", EXPORT, "to-onnx", "model.ckpt", "--out",
                             "model.onnx"], cwd=folder, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder / "model.onnx"


def test_same_checkpoint_from_two_folders_gives_identical_files(tmp_path):
    pytest.importorskip("torch")
    from tests.runtime.engines.test_tensorrt_build import write_sr_edge_checkpoint

    checkpoint = write_sr_edge_checkpoint(tmp_path / "source.ckpt", seed=4)
    short = export_in(tmp_path / "a", checkpoint)
    long = export_in(tmp_path / "a-much-longer-folder-name" / "and-deeper", checkpoint)
    assert short.read_bytes() == long.read_bytes()
    for path in (short, long):
        data = path.read_bytes()
        for needle in (str(tmp_path), str(REPO), *TRACE_MARKERS):
            needle = needle.encode() if isinstance(needle, str) else needle
            assert needle not in data, (path, needle)
        texts = strings_in(path)
        assert texts  # names and the model description are there
        assert not [t for t in texts if str(tmp_path) in t or str(REPO) in t]
        assert not [t for t in texts if "stack_trace" in t or "pkg.torch" in t]


@pytest.mark.parametrize("model", sorted((DEFAULT_MODEL.parent).glob("*.onnx")),
                         ids=lambda p: p.name)
def test_shipped_models_carry_no_build_paths(model):
    data = model.read_bytes()
    for marker in TRACE_MARKERS:
        assert marker not in data, marker
    texts = strings_in(model)
    assert not [t for t in texts if t.startswith(("/", "C:\\")) or "/work/" in t
                or "site-packages" in t]
    proto = onnx.load(str(model), load_external_data=False)
    assert not [n.name for n in proto.graph.node if n.metadata_props or n.doc_string]
    keys = {p.key for p in proto.metadata_props}
    if model.name.endswith((".static-part.onnx", ".step-part.onnx")):
        assert keys == {"sr_edge.static_split"}  # the parts of the model beside them
    else:
        assert "sr_edge.description" in keys
