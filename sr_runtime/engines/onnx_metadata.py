"""``metadata_props`` of an ONNX file, read straight from its protobuf wire format.

Why not ONNX Runtime or the ``onnx`` package: ``onnx`` is not part of the runtime install, and
opening an ONNX Runtime session only to read the metadata costs about 40 ms and a second
session per model at every ``sr-run`` start. The metadata is a top-level field of
``ModelProto`` (field 14, repeated ``StringStringEntryProto``: key = 1, value = 2); every other
top-level field, the graph and its weights included, is skipped by its length without being
parsed (slices of one ``memoryview``, no copies): reading the shipped model's metadata takes
well under a millisecond.
"""

from __future__ import annotations

from pathlib import Path

from sr_runtime.errors import UsageError

#: ``ModelProto.metadata_props`` and the two fields of ``StringStringEntryProto``.
METADATA_PROPS, ENTRY_KEY, ENTRY_VALUE = 14, 1, 2
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class _WireError(ValueError):
    pass


def _varint(data: memoryview | bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise _WireError("truncated or overlong varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: memoryview | bytes):
    """(field number, wire type, payload or value) of each field of one message."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == VARINT:
            value, at = _varint(data, at)
            yield number, wire, value
        elif wire == LENGTH_DELIMITED:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise _WireError("a field runs past the end of the file")
            yield number, wire, data[at:at + size]
            at += size
        elif wire in (FIXED64, FIXED32):
            at += 8 if wire == FIXED64 else 4
            if at > len(data):
                raise _WireError("truncated fixed-size field")
        else:
            raise _WireError(f"wire type {wire} is not used by ONNX")


def parse_metadata(data: memoryview | bytes) -> dict[str, str]:
    """The metadata of a serialized ``ModelProto`` (later keys win, as in ONNX)."""
    found: dict[str, str] = {}
    for number, wire, payload in _fields(data):
        if number != METADATA_PROPS or wire != LENGTH_DELIMITED:
            continue
        key = value = ""
        for sub, sub_wire, text in _fields(payload):
            if sub_wire == LENGTH_DELIMITED and sub in (ENTRY_KEY, ENTRY_VALUE):
                decoded = bytes(text).decode("utf-8")
                key, value = (decoded, value) if sub == ENTRY_KEY else (key, decoded)
        found[key] = value
    return found


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of the ONNX file at ``path``; a file that is not ONNX is a one-line
    :class:`UsageError`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model not found: {path}")
    try:
        data = path.read_bytes()
        if not data:
            raise _WireError("the file is empty")
        return parse_metadata(memoryview(data))
    except (_WireError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not an ONNX model ({exc}); export one with "
                         "`sr-export to-onnx`") from None
