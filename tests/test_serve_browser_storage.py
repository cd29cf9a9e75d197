"""The page's storage line and delete buttons (issue 27) in headless Chromium, against a tiny-network server."""
from __future__ import annotations

import re

from .test_serve import CONTENT, STYLE, start_server  # noqa: F401 (fixture)
from .test_serve_browser import browser, wait  # noqa: F401 (fixture)


def test_the_page_shows_the_limit_and_deletes_an_upload_and_a_result(browser, start_server):
    from selenium.webdriver.common.by import By

    client = start_server(max_storage_bytes=300 << 20)
    content, style = client.uploaded(CONTENT), client.uploaded(STYLE)
    job = client.start(content, style, iterations=3)
    assert client.entries(job["id"])[-1]["state"] == "finished"
    find = lambda css: browser.find_elements(By.CSS_SELECTOR, css)  # noqa: E731
    browser.get(client.server.url)
    text = wait(browser, lambda: find("#storage") and find("#storage")[0].text, what="the storage line")
    used = client.get("/api/storage").json()["used"]
    shown = re.match(r"Server storage: ([\d.,]+) MiB of 300 MiB used", text)
    assert shown and abs(float(shown.group(1).replace(",", "")) - used / 1048576) <= 0.05, (text, used)

    card = wait(browser, lambda: find(f'.card[data-result="{job["id"]}"]'), what="the result")[0]
    card.find_element(By.XPATH, ".//button[text()='delete']").click()
    browser.switch_to.alert.accept()
    wait(browser, lambda: not find(f'.card[data-result="{job["id"]}"]'), what="the result to go")
    assert client.get(f"/api/jobs/{job['id']}/result").status_code == 404

    browser.find_element(By.CSS_SELECTOR, "#uploads-box summary").click()
    card = wait(browser, lambda: find(f'#uploads [data-upload="{style}"]'), what="the upload")[0]
    card.find_element(By.XPATH, ".//button[text()='delete']").click()
    browser.switch_to.alert.accept()
    wait(browser, lambda: not find(f'#uploads [data-upload="{style}"]'), what="the upload to go")
    assert [u["id"] for u in client.get("/api/uploads").json()["uploads"]] == [content]
    after = wait(browser, lambda: find("#storage")[0].text != text and find("#storage")[0].text, what="new usage")
    assert after.startswith("Server storage: ") and client.get("/api/storage").json()["used"] < used
