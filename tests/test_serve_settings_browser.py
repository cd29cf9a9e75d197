"""The page offers every setting the server takes, also those it has no control of its own for, in Chromium.

A setting that declares the web form among its drivers (``stylize.core.request.fields``)
and that the page has no hand-made input for gets one under "More settings",
made from the catalogue (its help, type and choices); what is chosen there is
in the job request the page sends, and "run again" puts a result's value back.
"""
from __future__ import annotations

import pytest

from stylize.core.request.fields import FORM, offered_by
from stylize.core.request.settings import Settings
from stylize.serve.config import ServeConfig
from stylize.serve.server import Server

from .test_serve_browser import browser, wait  # noqa: F401  (browser is a fixture)


@pytest.fixture
def page_server(tmp_path):
    server = Server(ServeConfig(port=0, work=tmp_path / "work", preview_every=0.0, threads=1)).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_every_form_setting_has_an_input_and_reaches_the_job_request(browser, page_server):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(page_server.url)
    wait(browser, lambda: browser.execute_script("return MORE.length") > 0, what="the generated settings")
    for name in offered_by(Settings, FORM):
        if name != "losses":  # the loss checkboxes
            assert browser.find_elements(By.ID, f"set-{name}"), name
    more = browser.execute_script("return MORE")
    assert {"ladder", "bit_depth"} <= set(more)
    assert "scheduler" not in more and not browser.find_elements(By.ID, "set-scheduler")  # the server's, not a visitor's
    box = browser.find_element(By.ID, "more-settings-box")
    box.find_element(By.TAG_NAME, "summary").click()
    label = browser.find_element(By.ID, "set-ladder").find_element(By.XPATH, "..")
    assert "octave" in label.get_attribute("title")
    request = browser.execute_script("return jobRequest()")["settings"]
    assert request["ladder"] == "octave" and request["bit_depth"] == 8 and "scheduler" not in request
    Select(browser.find_element(By.ID, "set-ladder")).select_by_value("sqrt2")
    Select(browser.find_element(By.ID, "set-bit_depth")).select_by_value("16")
    request = browser.execute_script("return jobRequest()")["settings"]
    assert (request["ladder"], request["bit_depth"]) == ("sqrt2", 16)
