"""The app loads in a real browser, runs without an exception, stays offline and passes axe-core."""

from tests.e2e.helpers import assert_no_exception, check_a11y, external_requests, screenshot, wait_idle


def test_app_loads_offline(page, app_server):
    page.goto("/")
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector('[data-testid="stMain"]')
    wait_idle(page, timeout=60000)
    assert_no_exception(page)
    assert page.evaluate("() => document.documentElement.lang") == "en"  # Streamlit's page says its language
    assert page.errors == []
    assert external_requests(page.requests, app_server) == []
    assert screenshot(page, "smoke").exists()
    check_a11y(page, "smoke")
