"""`sr-serve` and `sr-app` as installed commands: the real process on a free 127.0.0.1 port,
one-line errors, the extras named when missing, and the runtime importable without them."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")
pytest.importorskip("rio_tiler", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")

import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from rio_cogeo.cogeo import cog_validate

from tests.runtime.serve.conftest import WHEN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def python(code: str, *env_blocked: str) -> subprocess.CompletedProcess:
    blocker = textwrap.dedent(f"""
        import sys
        BLOCKED = {set(env_blocked)!r}

        class Blocker:  # as if the extra were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked for this test")
                return None

        sys.meta_path.insert(0, Blocker())
    """)
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("command", "module", "blocked", "extra"), [
    ("sr-serve", "sr_runtime.serve.cli", "fastapi", "serve"),
    ("sr-serve", "sr_runtime.serve.cli", "rio_tiler", "serve"),
    ("sr-app", "sr_runtime.app.cli", "gradio", "app"),
])
def test_without_the_extra_the_command_names_it_in_one_line(command, module, blocked, extra):
    result = python(f"""
        sys.argv = [{command!r}]
        from {module} import main
        main()
    """, blocked)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'sr-edge[{extra}]'" in lines[0] and "Traceback" not in result.stderr


def test_the_runtime_imports_without_gradio_fastapi_or_uvicorn():
    result = python("""
        import sr_runtime, sr_runtime.api, sr_runtime.results, sr_runtime.render
        import sr_runtime.products, sr_runtime.app, sr_runtime.serve, sr_runtime.cli
        import sr_runtime.app.cli, sr_runtime.serve.cli
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       {"gradio", "fastapi", "uvicorn", "starlette", "rio_tiler"})
        print("HEAVY", heavy)
    """, "gradio", "fastapi", "uvicorn", "rio_tiler")
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_no_model_is_one_line_at_start(tmp_path):
    missing = tmp_path / "missing.onnx"
    result = subprocess.run([sys.executable, "-m", "sr_runtime.serve.cli", "--model",
                             str(missing), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stderr.startswith("error:")


def test_sr_serve_process_serves_a_cog_and_cleans_up(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sr_runtime.serve.cli", "--port",
                                str(port), "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    before = set(Path(tempfile.gettempdir()).glob("sr-serve-*"))
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.2)
        response = httpx.get(url + "/cog/sr", params={"time": WHEN}, timeout=60)
        assert response.status_code == 200
        (tmp_path / "sr.tif").write_bytes(response.content)
        assert cog_validate(str(tmp_path / "sr.tif"))[0]
        mine = set(Path(tempfile.gettempdir()).glob("sr-serve-*")) - before
        assert len(mine) == 1
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit says why it stopped
    assert process.returncode in (0, -signal.SIGTERM), output
    assert not any(path.exists() for path in mine)  # its private folder is gone
    assert "Traceback" not in output
