"""The web page's first screen on a fresh server, in headless Chromium: only what a person can use then.

Before any job there is nothing to download, cancel or queue, and the
picture form offers no `temporal` loss (only `stylize video` can feed it the
previous frame). The screenshot lands in ``out/stylize-serve-first-screen.png``.
"""
from __future__ import annotations

import pytest

from .test_serve_browser import SCREENSHOT, browser, server, wait  # noqa: F401 (fixtures)


@pytest.mark.slow
def test_the_first_screen_shows_only_what_can_be_used(browser, server):  # noqa: F811
    from selenium.webdriver.common.by import By

    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    browser.get(server.url)
    wait(browser, lambda: find("#losses").find_elements(By.TAG_NAME, "input"), what="the forms")
    losses = [box.get_attribute("value") for box in find("#losses").find_elements(By.TAG_NAME, "input")]
    assert "gram" in losses and "temporal" not in losses, losses
    for unusable in ("#download", "#cancel", "#queue", "#queue-title", "#progress", "#chart", "#stats"):
        assert not find(unusable).is_displayed(), f"{unusable} is shown before any job"
    assert "no jobs yet" not in find("body").text
    assert find("#start").is_displayed() and find("#job-state").text.startswith("no job yet")
    browser.save_screenshot(str(SCREENSHOT.with_name("stylize-serve-first-screen.png")))
