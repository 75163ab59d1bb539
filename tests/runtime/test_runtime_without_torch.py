"""The runtime imports and runs with torch, lightning and tensorrt unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def blocker(blocked: set[str]) -> str:
    """Python source that makes the top-level packages ``blocked`` unimportable (an import
    raises ImportError, as in an environment without them); it defines ``BLOCKED``."""
    return textwrap.dedent(f"""
        import sys
        BLOCKED = {sorted(blocked)!r}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked for this test")
                return None

        sys.meta_path.insert(0, Blocker())
    """)


BLOCKER = blocker({"torch", "lightning", "pytorch_lightning", "tensorrt", "torchmetrics"})


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_sr_run_works_without_torch(tmp_path, edh_store, nearest_model):
    out = tmp_path / "sr.tif"
    result = run_python(f"""
        import sys
        from sr_runtime.cli import main
        sys.argv = ["sr-run", "--time", "2024-10-11T01:00", "--out", {str(out)!r},
                    "--model", {str(nearest_model)!r}, "--source", {str(edh_store)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                        {{"torch", "lightning", "tensorrt"}})
        print("HEAVY", loaded)
    """)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert out.is_file()


def test_torch_backend_without_torch_says_what_to_install(tmp_path, edh_store):
    out = tmp_path / "sr.tif"
    result = run_python(f"""
        import sys
        from sr_runtime.cli import main
        sys.argv = ["sr-run", "--time", "2024-10-11T01:00", "--out", {str(out)!r},
                    "--model", "model.ckpt", "--backend", "torch",
                    "--source", {str(edh_store)!r}]
        main()
    """)
    assert result.returncode == 1
    assert "pip install 'sr-edge[export]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
