"""A small page object over Selenium for the console's tests: open, sign in, find, wait, screenshot."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

PATH = "/_keyplane/console/"


class Console:
    def __init__(self, driver: WebDriver, base_url: str, shots: Path, name: str) -> None:
        self.driver = driver
        self.url = base_url + PATH
        self.shots = shots
        self.name = name
        self.count = 0

    # -- navigation ------------------------------------------------------------------------------

    def open(self, hash_: str = "") -> None:
        self.driver.get(self.url + hash_)

    def go(self, hash_: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", hash_)
        self.wait_idle()

    def clear_session(self) -> None:
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.url)

    def sign_in(self, username: str, password: str) -> None:
        for name, value in (("username", username), ("password", password)):
            el = self.wait_for(f"input[name={name}]")
            el.clear()
            el.send_keys(value)
        self.css("form button[type=submit]").click()
        self.wait_for("#who .user")

    def sign_in_with_key(self, encoded: str) -> None:
        self.wait_for("#m-key").click()
        self.css("input[name=api_key]").send_keys(encoded)
        self.css("form button[type=submit]").click()
        self.wait_for("#who .user")

    # -- finding and waiting ---------------------------------------------------------------------

    def css(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, selector: str, timeout: float = 10) -> WebElement:
        found: WebElement = WebDriverWait(self.driver, timeout).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
        )
        return found

    def wait_text(self, selector: str, text: str, timeout: float = 10) -> WebElement:
        WebDriverWait(self.driver, timeout).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))
        return self.css(selector)

    def wait_until(self, check: Any, timeout: float = 10) -> Any:
        # A table re-rendered between finding an element and reading it is read again on the next poll.
        wait = WebDriverWait(
            self.driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
        )
        return wait.until(lambda _d: check())

    def wait_idle(self) -> None:
        """Until the page has rendered after a navigation (its heading is there)."""
        self.wait_for("main h1")

    def button(self, text: str, within: str = "main") -> WebElement:
        for el in self.all(f"{within} button, {within} a.button"):
            if text in el.text.strip():
                return el
        raise AssertionError(f"no button [{text}] in {within}")

    def field(self, label: str, within: str = "main") -> WebElement:
        """The control a visible label names."""
        for el in self.all(f"{within} label"):
            if el.text.strip() == label and el.is_displayed():
                target = el.get_attribute("for")
                return self.css(f"[id='{target}']")
        raise AssertionError(f"no field labelled [{label}] in {within}")

    def fill(self, label: str, value: str, within: str = "main") -> WebElement:
        el = self.field(label, within)
        # Typed as a person would (select all, delete, type), so the page sees its input events.
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.DELETE)
        if value:
            el.send_keys(value)
        return el

    def set_text(self, label: str, value: str, within: str = "main") -> WebElement:
        """Sets a (long) text area's value at once and tells the page it changed."""
        el = self.field(label, within)
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
            el,
            value,
        )
        return el

    def select(self, label: str, value: str, within: str = "main") -> None:
        Select(self.field(label, within)).select_by_value(value)

    def confirm(self, accept: bool = True) -> None:
        dialog = self.wait_for("dialog.confirm")
        self.shot("confirm")
        dialog.find_element(By.CSS_SELECTOR, "button.danger" if accept else "button:not(.danger)").click()
        self.wait_until(lambda: not self.all("dialog.confirm"))

    def status(self) -> str:
        return str(self.css("#status").text)

    def errors(self) -> list[str]:
        return [e.text for e in self.all("main .error") if e.is_displayed()]

    def nav(self) -> list[str]:
        return [a.text for a in self.all("#nav a")]

    # -- records -----------------------------------------------------------------------------------

    def unlabelled(self) -> list[str]:
        """Visible controls that a screen reader could not name (no label, no aria-label, no text)."""
        found: list[str] = self.driver.execute_script(
            """
            return [...document.querySelectorAll("input, select, textarea, button")]
              .filter((el) => el.offsetParent !== null && el.type !== "hidden")
              .filter((el) => el.tagName === "BUTTON"
                ? !el.textContent.trim() && !el.getAttribute("aria-label")
                : !(el.labels && el.labels.length)
                  && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
              .map((el) => el.outerHTML.slice(0, 160));
            """
        )
        return found

    def shot(self, step: str) -> Path:
        # Every page the tests look at must also be usable without sight of it.
        assert not self.unlabelled(), self.unlabelled()
        self.count += 1
        path = self.shots / f"{self.name}-{self.count:02d}-{step}.png"
        time.sleep(0.05)  # let the last paint land
        # The whole page, not just the window: chromium renders beyond the viewport on request.
        width, height = self.driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Script errors and CSP refusals the page logged (failed API calls the tests make on purpose aside)."""
        out = []
        for entry in self.driver.get_log("browser"):
            message = str(entry.get("message", ""))
            if entry.get("level") == "SEVERE" and "Failed to load resource" not in message:
                out.append(message)
        return out
