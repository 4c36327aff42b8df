"""The app loads in a real browser, runs without an exception and stays offline."""

from tests.e2e.helpers import assert_no_exception, external_requests, screenshot, wait_idle


def test_app_loads_offline(page, app_server):
    page.goto("/")
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector('[data-testid="stMain"]')
    wait_idle(page, timeout=60000)
    assert_no_exception(page)
    assert page.errors == []
    assert external_requests(page.requests, app_server) == []
    assert screenshot(page, "smoke").exists()
