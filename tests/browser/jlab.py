"""Driving JupyterLab 4 like a participant: open a notebook, Run All, click widgets found by their text.

Nothing here depends on a notebook's cell layout: outputs are found by what they
contain (a button's text, a verdict box), cells by being the last one.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

CELLS = ".jp-Notebook .jp-Cell"
CODE_PROMPTS = ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt"
ERROR_OUTPUT = ".jp-Notebook .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"


def dismiss_toasts(page: Any) -> None:
    """Close JupyterLab's notifications (the 'official Jupyter news?' question) so they cover nothing."""
    for _ in range(3):
        no = page.locator(".jp-toast-button:has-text('No'), .Toastify__toast button:has-text('No')")
        if no.count() == 0:
            return
        try:
            no.first.click(timeout=2000)
        except Exception:  # noqa: BLE001 - a toast that went away by itself
            return


def open_notebook(page: Any, lab: Any, rel: str) -> None:
    page.goto(lab.url(f"lab/tree/{rel}?reset"))
    page.wait_for_selector(CELLS, timeout=90_000)
    page.wait_for_function("() => document.querySelector('.jp-Notebook') !== null")
    wait_idle(page, timeout=180)
    dismiss_toasts(page)


def kernel_idle(page: Any) -> bool:
    """The status bar says '<kernel> | Idle' (not 'No Kernel', 'Initializing', 'Busy' …)."""
    return bool(page.evaluate("""() => {
        const bar = Array.from(document.querySelectorAll('.jp-StatusBar-TextItem')).map(e => e.textContent).join(' ');
        return /\\|\\s*Idle/.test(bar) && !/No Kernel/.test(bar);
    }"""))


def wait_idle(page: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kernel_idle(page):
            return
        time.sleep(0.25)
    raise AssertionError(f"the kernel was not idle within {timeout:.0f} s")


def prompts(page: Any) -> list[str]:
    return page.eval_on_selector_all(CODE_PROMPTS, "els => els.map(e => e.textContent.trim())")


def run_all(page: Any, timeout: float = 600) -> float:
    """Run → Run All Cells, then wait until every code cell ran (or one failed); returns the seconds it took."""
    page.locator("li.lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator("li.lm-Menu-item", has_text="Run All Cells").first.click()
    t0 = time.monotonic()
    deadline = t0 + timeout
    time.sleep(1.0)
    while time.monotonic() < deadline:
        ps = prompts(page)
        busy = any("*" in p for p in ps)
        if not busy and kernel_idle(page) and (all(re.search(r"\[\d+\]", p) for p in ps) or errors(page)):
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"Run All did not finish within {timeout:.0f} s; prompts: {prompts(page)}")


def errors(page: Any) -> list[str]:
    return page.eval_on_selector_all(ERROR_OUTPUT, "els => els.map(e => e.innerText.slice(-1500))")


def output_with_button(page: Any, text: str | re.Pattern[str]) -> Any:
    """The output area holding a widget button with this text (an explorer, the playground)."""
    button = page.locator("button", has_text=text)
    return page.locator(".jp-OutputArea-output", has=button).first


def button(area: Any, text: str | re.Pattern[str]) -> Any:
    return area.locator("button", has_text=text).first


def click_and_wait_change(area: Any, text: str | re.Pattern[str], timeout: float = 30) -> str:
    """Click a button, wait until the widget's text changes (the kernel answered), return the new text."""
    before = area.inner_text()
    button(area, text).click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = area.inner_text()
        if now != before:
            time.sleep(0.3)  # let every panel of the same refresh arrive
            return area.inner_text()
        time.sleep(0.1)
    raise AssertionError(f"nothing changed within {timeout:.0f} s after clicking {text!r}")


def add_cell_and_run(page: Any, code: str, timeout: float = 300) -> Any:
    """Insert a code cell at the end, type ``code`` into it, run it; returns the cell (wait on its output)."""
    page.locator(CELLS).last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code)
    n = page.locator(CELLS).count()
    page.keyboard.press("Control+Enter")  # run in place: no new empty cell below
    cell = page.locator(CELLS).nth(n - 1)
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        prompt = cell.locator(".jp-InputArea-prompt").inner_text().strip()
        if re.search(r"\[\d+\]", prompt) and kernel_idle(page):
            return cell
        time.sleep(0.3)
    raise AssertionError(f"the new cell did not finish within {timeout:.0f} s")


def screenshot(page: Any, folder: Path, name: str, element: Any | None = None) -> Path:
    path = folder / f"{name}.png"
    if element is not None:
        element.scroll_into_view_if_needed()
        element.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    return path


def virtual_time(text: str) -> float | None:
    """The virtual time an explorer's status shows ('virtual time 66.6 s', or the playground's 't = 1.1 min')."""
    m = re.search(r"virtual time\s+([\d,.]+)\s*s", text)
    if m:
        return float(m.group(1).replace(",", ""))
    m = re.search(r"t = ([\d.]+) min", text)
    return float(m.group(1)) * 60 if m else None
