"""Layers: the runtime (``sr_runtime``) never imports the export side (``sr_export``).

Every module of sr_runtime is parsed with ``ast``, imports inside functions, ``try`` blocks and
``importlib.import_module("...")`` calls included, so a lazy import cannot slip through. The
checker itself is shown to fail on code that does import sr_export. A second check imports every
runtime module with onnx, torch, tensorrt and sr_export unimportable: ``import sr_runtime`` and
every backend probe need none of them (onnx comes with the ``gpu`` extra, for engine builds).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import sr_runtime
from tests.runtime.test_runtime_without_torch import blocker

FORBIDDEN = "sr_export"
RUNTIME_ROOT = Path(sr_runtime.__file__).parent
IMPORTERS = {"import_module", "__import__"}


def _is_forbidden(module: str | None, forbidden: str) -> bool:
    return module is not None and (module == forbidden or module.startswith(forbidden + "."))


def forbidden_imports(source: str, forbidden: str = FORBIDDEN) -> list[tuple[int, str]]:
    """(line, what) for each statement or call in ``source`` that imports ``forbidden``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {alias.name}") for alias in node.names
                      if _is_forbidden(alias.name, forbidden)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_forbidden(node.module, forbidden):
                found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (name in IMPORTERS and isinstance(first, ast.Constant)
                    and isinstance(first.value, str) and _is_forbidden(first.value, forbidden)):
                found.append((node.lineno, f"{name}({first.value!r})"))
    return found


def package_violations(root: Path, forbidden: str = FORBIDDEN) -> list[str]:
    """``module:line: what`` for every forbidden import in the package under ``root``."""
    violations = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for line, what in forbidden_imports(path.read_text(encoding="utf-8"), forbidden):
            violations.append(f"{module}:{line}: {what}")
    return violations


def test_sr_runtime_never_imports_sr_export():
    modules = list(RUNTIME_ROOT.rglob("*.py"))
    assert len(modules) > 40  # the whole package is parsed, subpackages included
    violations = package_violations(RUNTIME_ROOT)
    assert not violations, "sr_runtime imports sr_export:\n" + "\n".join(violations)


def test_the_checker_finds_every_kind_of_import():
    source = textwrap.dedent("""
        import os
        import sr_export
        import numpy as np, sr_export.model as m
        from sr_export.checkpoints import load_checkpoint
        from sr_runtime import errors

        def later():
            try:
                from sr_export import onnx_export
            except ImportError:
                pass
            return importlib.import_module("sr_export.torch_engine")

        class K:
            def m(self):
                __import__("sr_export")
        text = "sr_export is mentioned in a string"
        import sr_exporter
        from . import sr_export_like
    """)
    assert forbidden_imports(source) == [
        (3, "import sr_export"), (4, "import sr_export.model"),
        (5, "from sr_export.checkpoints import ..."), (10, "from sr_export import ..."),
        (13, "import_module('sr_export.torch_engine')"), (17, "__import__('sr_export')"),
    ]


def test_the_package_check_names_module_and_line(tmp_path):
    package = tmp_path / "fakeruntime"
    (package / "engines").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Clean."""\n')
    (package / "engines" / "__init__.py").write_text("")
    (package / "engines" / "lazy.py").write_text(
        "import numpy\n\n\ndef load():\n    from sr_export.checkpoints import x\n    return x\n")
    assert package_violations(package) == [
        "fakeruntime.engines.lazy:5: from sr_export.checkpoints import ..."]


def test_runtime_modules_import_without_onnx_torch_tensorrt_or_sr_export():
    code = blocker({"onnx", "torch", "tensorrt", "sr_export", "lightning"}) + textwrap.dedent("""
        import importlib, pkgutil

        import sr_runtime
        # fp16 is the ONNX graph pass: it needs onnx, and only builds import it
        skip = {"sr_runtime.engines.tensorrt.fp16"}
        names = [m.name for m in pkgutil.walk_packages(sr_runtime.__path__, "sr_runtime.")
                 if m.name not in skip]
        for name in names:
            importlib.import_module(name)
        from sr_runtime.engines.registry import ENGINES, load_engine
        reasons = {name: spec.available() for name, spec in ENGINES.items()}
        try:
            load_engine("torch", __import__("pathlib").Path("model.ckpt"))
        except Exception as exc:
            print("TORCH", type(exc).__name__, exc)
        print("COUNT", len(names))
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert int(lines["COUNT"]) > 40
    assert lines["HEAVY"] == "[]"
    # the torch backend's plugin cannot be imported here: one line that says what to install
    assert lines["TORCH"].startswith("EngineUnavailableError backend 'torch' is not usable here")
    assert "pip install 'sr-edge[export]'" in lines["TORCH"]
