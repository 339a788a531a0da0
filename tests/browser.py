"""A real headless browser for the web page's tests: Debian's chromium through its chromedriver, driven by
selenium, with the console's messages kept (``goog:loggingPrefs``). Nothing is downloaded: selenium is
given the driver, so its manager never looks for one."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Where the tests leave what a person would want to look at (the page's screenshot); not in git.
ARTEFACTS = Path(__file__).resolve().parent / "artefacts"


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 1100, niceness: int = 0) -> Iterator[webdriver.Chrome]:
    """``niceness``: the browser's scheduling priority, below the worker's for a positive value
    (bench/web_cost.py), inherited by every process chromedriver starts."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER,
                      popen_kw={"preexec_fn": (lambda: os.nice(niceness)) if niceness else None})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The console's errors since the last call (the log is emptied as it is read)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


