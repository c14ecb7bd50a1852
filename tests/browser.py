"""Playwright helpers: Debian's Chromium, logging in through Airflow's own login page, and the ML tabs.

Tests drive Airflow's React UI the way a person does: open the home page, then click (the DAG in
the DAG list, a run, the "ML" tab, a task) rather than going to URLs directly. The ML views are
iframes inside Airflow's pages: :func:`frame_of_tab` returns the iframe's content to assert on.

Needs ``pip install playwright`` but no ``playwright install``: the system Chromium is used
(``MLOPS_CHROMIUM``, default ``/usr/bin/chromium``). Screenshots go to ``$MLOPS_TEST_ARTIFACTS``
(default ``<repo>/test-artifacts/ui``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("MLOPS_TEST_ARTIFACTS") or REPO / "test-artifacts" / "ui")
#: Milliseconds for every Playwright wait and ``expect()`` (a 2-core machine also running Airflow).
TIMEOUT_MS = 30_000


def browser_missing() -> str | None:
    """Why a browser test cannot run here (for ``pytest.skip``), or ``None``."""
    if importlib.util.find_spec("playwright") is None:
        return "needs Playwright for Python: pip install playwright (the browser is the system Chromium)"
    if not CHROMIUM.exists():
        return f"needs Chromium at {CHROMIUM}: apt-get install chromium (or set MLOPS_CHROMIUM)"
    return None


def require_browser() -> None:
    """Skip the calling test or fixture when Playwright or Chromium is missing; fail it instead
    where ``MLOPS_REQUIRE_BROWSER`` is set (CI: a UI tier that silently skipped would pass)."""
    if reason := browser_missing():
        if os.environ.get("MLOPS_REQUIRE_BROWSER"):
            pytest.fail(f"MLOPS_REQUIRE_BROWSER is set: {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def chromium_page(base_url: str, *, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A headless Chromium page (Debian's binary) whose relative URLs resolve against ``base_url``."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, base_url=base_url
            )
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def login(page: Any, base_url: str, user: str, password: str) -> None:
    """Log in through the auth manager's own login page: open the home page, which sends an
    anonymous visitor to ``/auth/login``, fill in the form and submit it. Works for the simple auth
    manager's page and FAB's (both name their fields ``username`` and ``password``)."""
    page.goto(base_url.rstrip("/") + "/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    cookies = [c["name"] for c in page.context.cookies()]
    assert "_token" in cookies, f"no _token cookie after logging in as {user!r}: {cookies}"


def click_to(page: Any, link: Any, arrived: Callable[[str], bool], attempts: int = 3) -> None:
    """Click ``link`` until the page's URL satisfies ``arrived``. On a loaded 2-core machine a
    click that lands while Airflow's React page re-renders can be lost (seen: the DAG page stayed
    on its Overview tab after "Runs" was clicked); a person clicks again, and so does this."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for attempt in range(1, attempts + 1):
        link.click()
        try:
            page.wait_for_url(lambda url: arrived(urlsplit(url).path), timeout=TIMEOUT_MS // attempts)
            return
        except PlaywrightTimeoutError:
            if attempt == attempts:
                raise


def open_run(page: Any, dag_id: str, run_id: str) -> None:
    """Home page -> Dags -> the DAG -> Runs -> the run, by clicks only."""
    from playwright.sync_api import expect

    dag_path = f"/dags/{dag_id}"
    page.goto("/")
    click_to(page, page.get_by_role("link", name="Dags", exact=True).first, lambda p: p.endswith("/dags"))
    click_to(page, page.get_by_role("link", name=dag_id, exact=True).first, lambda p: p.startswith(dag_path))
    runs = f"{dag_path}/runs"
    click_to(page, page.get_by_role("link", name="Runs", exact=True).first, lambda p: p.rstrip("/") == runs)
    run_link = page.get_by_role("link", name=run_id, exact=True).first
    click_to(page, run_link, lambda p: p.startswith(f"{runs}/") and len(p) > len(runs) + 1)
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()


def open_task(page: Any, dag_id: str, run_id: str, task_id: str, *, mapped: bool = False) -> None:
    """:func:`open_run`, then the task in the run's task-instance list (the grid's links); for an
    unmapped task, wait for its page's heading (a mapped one shows its instances instead)."""
    from playwright.sync_api import expect

    open_run(page, dag_id, run_id)
    task_link = page.get_by_role("link", name=task_id, exact=True)
    task_link.and_(page.locator('a[href*="/runs/"]')).first.click()
    if not mapped:
        expect(page.get_by_role("heading", name=task_id)).to_be_visible()


def click_link(page: Any, name: str, href_suffix: str | None = None) -> None:
    """Click the visible link named ``name`` (exactly); ``href_suffix`` tells apart links of the
    same name (e.g. the "ML" tab of a run, ``/plugin/mlops_run``, from the "ML" nav entry)."""
    link = page.get_by_role("link", name=name, exact=True)
    if href_suffix is not None:
        link = link.and_(page.locator(f'a[href$="{href_suffix}"]'))
    link.first.click()


def open_ml_tab(page: Any, url_route: str) -> Any:
    """Click the "ML" tab whose plugin route is ``url_route`` (``mlops_dag``, ``mlops_run``,
    ``mlops_task``; ``ml`` is the nav entry); returns the iframe's content frame."""
    click_link(page, "ML", f"/plugin/{url_route}")
    # Airflow's UI appends the view's own path once it loaded: /plugin/ml -> /plugin/ml/mlops/.
    page.wait_for_url(re.compile(rf"/plugin/{re.escape(url_route)}(/.*)?$"))
    return frame_of_tab(page)


def frame_of_tab(page: Any) -> Any:
    """The content frame of the plugin tab's iframe (a ``FrameLocator``-like object to assert on)."""
    from playwright.sync_api import expect

    iframe = page.locator("iframe")
    expect(iframe).to_have_count(1)
    return iframe.content_frame


def screenshot(page: Any, name: str) -> Path:
    """Save a PNG of the page to ``ARTIFACTS/<name>.png``; returns the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), type="png")
    return target


@contextlib.contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Run the block; if it raises, save a screenshot named ``name`` and add its path to the error."""
    try:
        yield
    except BaseException as error:
        try:
            path = screenshot(page, name)
        except Exception as shot_error:  # the browser itself may be what failed
            note = f"(no screenshot: {shot_error!r})"
        else:
            note = f"screenshot: {path} (page {page.url})"
        print(note)  # shown with the failure's captured output, also on Python 3.10
        if hasattr(error, "add_note"):
            error.add_note(note)
        raise
