"""`sr-run` ends without the interpreter's teardown, and loses nothing by it: the exit code, what
was printed into a pipe, the atexit handlers and threads still at work are all kept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

SCRIPT = """
import atexit, sys, threading, time
from sr_runtime.clikit import exit_quickly

atexit.register(lambda: print("atexit handler ran"))

def entry():
    print("x" * 200_000)  # more than a pipe's buffer: written out at exit
    {body}

exit_quickly(entry)
"""


def run_script(body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(SCRIPT).format(body=body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("body", "code"), [("return None", 0), ("sys.exit(3)", 3),
                                            ("sys.exit(None)", 0),
                                            ("sys.exit('no such time')", 1)])
def test_exit_code_output_and_atexit_are_kept(body, code):
    done = run_script(body)
    assert done.returncode == code, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["x" * 200_000, "atexit handler ran"]
    if isinstance(code, int) and "'" in body:
        assert done.stderr.strip() == "no such time"


def test_a_thread_still_at_work_is_waited_for(tmp_path):
    marker = tmp_path / "finished"
    done = run_script(f"""
    def work():
        time.sleep(0.5)
        open({str(marker)!r}, "w").write("done")
    threading.Thread(target=work).start()  # not a daemon
    """.replace("\n    ", "\n    "))
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"


def test_sr_run_is_the_quick_exit_script_and_keeps_its_output(tmp_path):
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "sr-run"]
    assert script.value == "sr_runtime.cli:script"
    out = tmp_path / "sr.tif"
    done = subprocess.run([sys.executable, "-m", "sr_runtime.cli", "--time", "2024-10-11T12:00",
                           "--out", str(out), "--quiet", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["steps"] == 1 and summary["outputs"] == [str(out)]
    assert out.is_file()

    again = subprocess.run([sys.executable, "-m", "sr_runtime.cli", "--time",
                            "2024-10-11T12:00", "--out", str(out), "--quiet"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode != 0
    assert "already exists" in again.stderr and "--overwrite" in again.stderr
