"""Every `sr-export` command in a runtime-only install (no torch, lightning, onnx): one line.

The export extra is made unimportable in a subprocess; each command either works on ONNX
Runtime alone (inspect, tune) or says in one line what to install, writing nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import folder_state
from tests.runtime.test_runtime_without_torch import blocker

EXPORT_BLOCKER = blocker({"torch", "lightning", "pytorch_lightning", "tensorrt", "torchmetrics",
                          "onnx", "onnxscript", "skimage"})
INSTALL = "pip install 'sr-edge[export]'"


def run_commands(commands: list[list[str]]) -> list[dict]:
    """Run each sr-export command line in one blocked interpreter; exit code and output."""
    script = EXPORT_BLOCKER + textwrap.dedent(f"""
        import contextlib, io, json, sys
        from typer.main import get_command
        from sr_export.cli import app

        results = []
        for argv in {commands!r}:
            err, out = io.StringIO(), io.StringIO()
            code = 0
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    get_command(app).main(args=argv, prog_name="sr-export")
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException as exc:
                    import traceback
                    traceback.print_exc()
                    code = -1
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                           {{"torch", "onnx", "lightning"}})
            results.append({{"argv": argv, "code": code, "stderr": err.getvalue(),
                             "stdout": out.getvalue(), "heavy": heavy}})
        print("RESULTS" + json.dumps(results))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULTS"))
    return json.loads(line.removeprefix("RESULTS"))


def test_export_commands_without_the_export_extra(tmp_path, nearest_model,
                                                  make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint()
    model = tmp_path / "nearest.onnx"
    assert model == nearest_model
    needs_extra = [
        ["to-onnx", str(ckpt), "--config", str(config)],
        ["to-trt", str(ckpt), "--config", str(config)],
        ["to-trt", str(model)],
        ["train", "--out-dir", str(tmp_path / "run"), "--cpu-minutes", "0.01"],
        ["evaluate", "--model", str(model)],
        ["quantize", str(model), "--source", "synthetic"],
    ]
    works = [["inspect", str(model)], ["tune", str(model), "--tiles", "16", "--repeats", "1"]]
    before = folder_state(tmp_path)
    results = run_commands(needs_extra + works)
    for result in results[:len(needs_extra)]:
        text = result["stderr"].strip()
        assert result["code"] == 1, result
        assert "Traceback" not in text and len(text.splitlines()) == 1, result
        assert text.startswith(f"error: sr-export {result['argv'][0]} needs ") and INSTALL in text
    for result in results[len(needs_extra):]:
        assert result["code"] == 0, result
        assert "Traceback" not in result["stderr"]
    assert results[-1]["heavy"] == []  # nothing of the export extra was imported
    assert "NearestResize x8" in results[-2]["stdout"]
    after = folder_state(tmp_path)
    assert set(after) - set(before) == {"nearest.tune.json"}  # only tune wrote its record
    assert {k: v for k, v in after.items() if k in before} == before
