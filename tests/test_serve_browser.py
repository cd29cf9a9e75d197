"""The page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) via Selenium.

The browser is the one ``scripts/setup.sh`` installs from Debian; Selenium is
pointed at it and at its driver explicitly, so nothing is downloaded at run
time. The job is real: the VGG19 weights, a small image, a few iterations.
The screenshot lands in ``out/stylize-serve.png`` (the README's picture is a
copy of it, ``docs/stylize-serve.png``).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from stylize.serve.config import ServeConfig
from stylize.serve.server import Server

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "images"
SCREENSHOT = ROOT / "out" / "stylize-serve.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with downloads going to ``tmp_path / "downloads"``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[test]' installs selenium")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            pytest.fail(f"{path} missing: run `make setup` (it installs Debian's chromium and chromium-driver)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1350", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path, vgg19_weights):
    server = Server(ServeConfig(port=0, work=tmp_path / "work", preview_every=0.0, threads=2)).start()
    yield server
    server.stop()


def wait(driver, condition, timeout: float = 60, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    driver.save_screenshot(str(SCREENSHOT.with_name("stylize-serve-failed.png")))
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_the_page_runs_a_job_with_a_live_preview_in_chromium(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    browser.get(server.url)
    wait(browser, lambda: len(find("#set-backend").find_elements(By.TAG_NAME, "option")) > 1, what="the forms")
    assert "caffe-vgg19" in [o.text for o in find("#set-backend").find_elements(By.TAG_NAME, "option")]
    assert find("#opt-adam-lr") if find("#set-optimizer").get_attribute("value") == "adam" else True
    assert find("#opt-content-weight")  # every loss's generic weight, from the declared options

    # A non-image is refused with a clear message on the page, and nothing is chosen.
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n" * 10)
    find("#content-file").send_keys(str(text))
    wait(browser, lambda: "not an image file" in find("#message").text, what="the upload error")
    assert find("#message").is_displayed() and not find("#content-choice").find_elements(By.CSS_SELECTOR, "img")

    # The bundled images, uploaded through the file inputs.
    find("#content-file").send_keys(str(IMAGES / "astronaut.jpg"))
    wait(browser, lambda: find("#content-choice").find_elements(By.CSS_SELECTOR, ".thumb-card"), what="the content")
    find("#style-files").send_keys(str(IMAGES / "the_scream.jpg"))
    wait(browser, lambda: find("#style-list").find_elements(By.CSS_SELECTOR, ".thumb-card"), what="the style")
    assert "the_scream.jpg" in find("#style-list").text

    # The quality choice fills in the iterations, and normal puts the default back.
    from stylize.core.request.presets import QUALITIES
    from stylize.core.request.settings import Settings
    for quality, iterations in (("draft", QUALITIES["draft"]["iterations"]), ("normal", Settings.iterations)):
        Select(find("#set-quality")).select_by_value(quality)
        assert find("#set-iterations").get_attribute("value") == str(iterations), quality

    # A small job: the real VGG19, 160 px, a few iterations, one level.
    assert find("#set-tol").get_attribute("value") == str(Settings.tol)  # the stop rule, shown and settable
    for field, value in (("#set-length", "160"), ("#set-iterations", "8"), ("#set-scales", "1"), ("#set-tol", "0.5")):
        find(field).clear()
        find(field).send_keys(value)
    Select(find("#set-init")).select_by_value("fast")  # the feed-forward start, with its own option
    assert find("#opt-fast-level").get_attribute("value") == "0"
    find("#start").click()

    seen, captions = [], []  # the preview's distinct images and their captions, in order

    def finished():
        source = find("#preview").get_attribute("src") or ""
        if source.startswith("data:image/jpeg") and (not seen or seen[-1] != source):
            seen.append(source)
            captions.append(find("#preview-caption").text)
        return find("#job-state").get_attribute("data-state") in ("finished", "failed", "cancelled")
    wait(browser, finished, timeout=240, what="the job to finish")
    assert find("#job-state").get_attribute("data-state") == "finished", find("#job-state").text
    assert len(seen) >= 3, f"the preview changed {len(seen) - 1} times"  # at least twice while it ran
    assert captions[0] == "start (160x160)" and captions[1].startswith("iteration")  # the picture at once
    assert int(find("#preview").get_attribute("data-count")) >= 3
    assert find("#stat-step").text == "8/8" and find("#legend").text.split() == ["total", "content", "gram"]

    # The result: downloaded through the page's link, a PNG with its settings.
    link = find("#download")
    wait(browser, link.is_displayed, what="the download link")
    link.click()
    downloaded = wait(browser, lambda: [p for p in browser.downloads.iterdir() if p.suffix == ".png"],
                      what="the download")[0]
    wait(browser, lambda: downloaded.stat().st_size > 0 and not list(browser.downloads.glob("*.crdownload")),
         what="the download to complete")
    image = Image.open(downloaded)
    assert image.size == (160, 160) and json.loads(image.text["stylize:settings"])["iterations"] == 8
    assert json.loads(image.text["stylize:settings"])["tol"] == 0.5
    assert downloaded.read_bytes() == next(server.web.work.results.glob("*.png")).read_bytes()

    # It appears in the gallery with its settings.
    wait(browser, lambda: find("#gallery").find_elements(By.CSS_SELECTOR, ".card"), what="the gallery")
    assert "caffe-vgg19" in find("#gallery .card .settings").text and "160px" in find("#gallery .card").text

    # A reload reattaches to the job (it is over: its final image and state come back).
    browser.refresh()
    wait(browser, lambda: find("#job-state").get_attribute("data-state") == "finished", what="the reattach")
    wait(browser, lambda: (find("#preview").get_attribute("src") or "").startswith("data:image/jpeg"),
         what="the final image after the reload")
    wait(browser, lambda: "astronaut.jpg" in find("#content-choice").text, what="the job's inputs back in the form")
    assert "the_scream.jpg" in find("#style-list").text and find("#set-length").get_attribute("value") == "160"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, height + 150)  # the whole page, gallery included
    time.sleep(0.3)
    browser.save_screenshot(str(SCREENSHOT))
    shutil.copy(SCREENSHOT, tmp_path / SCREENSHOT.name)
    assert Image.open(SCREENSHOT).size[0] >= 1200
