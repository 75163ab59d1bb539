"""`sr-app` end to end in a real headless browser (Debian's chromium driven by Playwright; no
browser is downloaded): pick a time, run inference, wait for the maps, see an error in the
page, download the SR COG and validate it; the page's screenshot is kept as a test artifact
(``$SR_EDGE_TEST_ARTIFACTS``, default: pytest's temporary folder)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rio_cogeo.cogeo import cog_validate

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not "
                       "installed (apt-get install -y chromium); no browser is downloaded"),
]
pytest.importorskip("gradio", reason="the app extra is not installed: pip install "
                    "'sr-edge[app]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed: pip install "
                            "'sr-edge[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: "
                               "pip install 'sr-edge[browser-test]'")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def app_url():
    """``sr-app`` as users start it, on a free 127.0.0.1 port; stopped (and checked) after."""
    port = free_port()
    before = set(Path(tempfile.gettempdir()).glob("sr-app-*"))
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "-m", "sr_runtime.app.cli", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sr-app did not start: {process.communicate()[0]}")
        time.sleep(0.3)
    mine = set(Path(tempfile.gettempdir()).glob("sr-app-*")) - before
    yield url
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
    assert not any(path.exists() for path in mine), "sr-app left its files behind"


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
            headless=True, accept_downloads=True, viewport={"width": 1500, "height": 1150})
        try:
            page = context.new_page()
            page.set_default_timeout(90_000)  # a loaded 2-core machine is slow, not broken
            yield page
        finally:
            context.close()


def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SR_EDGE_TEST_ARTIFACTS")
                  or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fill_kept(page, elem_id: str, text: str) -> None:
    """Fill a textbox and make sure the value stays: a closed accordion mounts its textboxes
    only when opened, and a box filled in that moment is replaced by an empty one."""
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input")
    for _ in range(10):
        box.fill(text)
        box.press("Tab")
        page.wait_for_timeout(300)
        if box.input_value() == text:
            return
    raise AssertionError(f"#{elem_id} did not keep {text!r}: the page replaced the box")


def pick(page, dropdown: str, option: str) -> None:
    page.click(f"#{dropdown} input")
    page.get_by_role("option", name=option, exact=True).click()


def test_pick_run_look_download(app_url, page, tmp_path, tmp_path_factory):
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith((app_url, "data:", "blob:")) else None)
    page.goto(app_url)
    page.wait_for_selector("#run")

    # a time from the pickers, which hold only the cube's steps
    pick(page, "date", "2024-10-25")
    page.wait_for_function("document.querySelector('#hour input').value.startsWith('00:00')")
    pick(page, "hour", "12:00 UTC (HR truth)")
    page.click("#run")
    page.wait_for_function("document.querySelector('#info') && "
                           "document.querySelector('#info').innerText.includes('RMSE')")
    info = page.inner_text("#info")
    assert "2024-10-25 12:00 UTC" in info and "onnxruntime (fp32)" in info
    rmse = float(info.split("RMSE vs HR truth")[1].split()[0])
    assert 0 < rmse < 1.0
    maps = page.wait_for_selector("#maps img")
    source = maps.get_attribute("src")
    assert source.startswith("data:image/png;base64,")
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))
    assert picture.shape[1] > 1000 and len(np.unique(picture.reshape(-1, 4), axis=0)) > 200

    # the SR data COG, downloaded as a user would
    page.click("#make-sr")
    link = page.wait_for_selector("#file-sr a")
    with page.expect_download() as download:
        link.click()
    cog = tmp_path / download.value.suggested_filename
    download.value.save_as(cog)
    assert cog.name == "t2m_sr_20241025T1200_K.tif"
    is_valid, errors, _ = cog_validate(str(cog))
    assert is_valid, errors
    with rasterio.open(cog) as data:
        assert data.tags()["valid_time"] == "2024-10-25T12:00:00Z"
        assert data.shape == (256, 256) and data.dtypes[0] == "float32"

    page.screenshot(path=str(artifacts(tmp_path_factory) / "sr-app.png"), full_page=True)

    # the model's second variable, from the same inference
    pick(page, "variable", "d2m")
    page.click("#run")
    page.wait_for_function("document.querySelector('#info').innerText.includes('d2m (of')")
    info = page.inner_text("#info")
    assert "served from the cache" in info and "t2m, d2m" in info
    assert 0 < float(info.split("RMSE vs HR truth")[1].split()[0]) < 1.0
    pick(page, "variable", "t2m")

    # an error is one line in the page
    page.fill("#bbox textarea, #bbox input", "100,10,110,20")
    page.click("#run")
    message = page.get_by_text("contains no grid cell").first
    message.wait_for()
    assert "Traceback" not in page.content()
    # so is a model that does not exist (the page takes sr-run's --model)
    page.fill("#bbox textarea, #bbox input", "")
    page.get_by_text("Source, model, backend (as sr-run)").click()
    fill_kept(page, "model", str(tmp_path / "missing.onnx"))
    page.click("#run")
    page.get_by_text("model not found").first.wait_for()
    assert "Traceback" not in page.content()
    assert outside == [], f"the page fetched from outside: {outside}"
