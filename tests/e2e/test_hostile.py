"""What students throw at the app, in a real browser: files that are not pictures, a broken JPEG,
a hostile link and hostile model files. Each ends in a plain message (never an exception box or a
script running), the next good upload works, no request leaves the machine, and every state passes
axe-core (no critical or serious accessibility failure)."""

import io
import re
from urllib.parse import quote

import numpy as np
from PIL import Image

from cnnviz import images
from cnnviz import model as M
from tests.e2e.helpers import assert_no_exception, check_a11y, external_requests, screenshot, wait_idle

TIMEOUT = 60000  # ms; the machine is shared


def _png(colour, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    y, x = np.mgrid[0:64, 0:64]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x * 4, y * 4, (x + y) * 2], -1).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _step(page, k: int, title: str) -> None:
    page.get_by_role("heading", name=f"{k}. {title}").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)


def _upload(page, name: str, data: bytes, mime: str) -> None:
    """Choose a file in the (only) st.file_uploader on the page, as a student's file dialog would."""
    field = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    field.wait_for(state="attached", timeout=TIMEOUT)
    field.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def _watch_dialogs(page) -> list:
    """An alert() from injected script would open a dialog: record (and dismiss) any."""
    seen = []

    def on_dialog(d):
        seen.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return seen


def test_bad_uploads_give_a_message_and_the_next_good_upload_works(page, app_server):
    dialogs = _watch_dialogs(page)
    page.goto("/")
    _step(page, 1, "Pixels")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Upload", exact=True).click()
    wait_idle(page, timeout=TIMEOUT)

    _upload(page, "notes.png", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "image/png")
    page.get_by_text(images.NOT_A_PICTURE).wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    assert page.get_by_text(images.NOT_A_PICTURE).count() == 1
    assert sidebar.get_by_text("Now showing: cat-chelsea").count() == 1  # the previous picture stays
    screenshot(page, "hostile-html-as-png")
    check_a11y(page, "hostile-html-as-png")

    jpeg = _jpeg()
    _upload(page, "half.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")
    page.get_by_text(images.BROKEN).wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    assert page.get_by_text(images.NOT_A_PICTURE).count() == 0  # only the latest file's message
    screenshot(page, "hostile-truncated-jpeg")
    check_a11y(page, "hostile-truncated-jpeg")

    _upload(page, "green.png", _png((20, 200, 60)), "image/png")
    sidebar.get_by_text("Now showing: green.png").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    assert page.get_by_text(images.BROKEN).count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, "hostile-good-png-after")
    check_a11y(page, "hostile-good-png-after")

    # A 1x1024 strip is a fine picture, but drawn at a column's width it would be 300,000 pixels tall.
    strip = io.BytesIO()
    Image.new("RGB", (1, 1024), (200, 120, 40)).save(strip, "PNG")
    _upload(page, "strip.png", strip.getvalue(), "image/png")
    sidebar.get_by_text("Now showing: strip.png").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    heights = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMain"], '
        + '[data-testid="stSidebarContent"]')].map(e => e.scrollHeight)""")
    assert max(heights) < 4000, heights
    screenshot(page, "hostile-strip")
    check_a11y(page, "hostile-strip")

    assert dialogs == [] and page.errors == []
    assert external_requests(page.requests, app_server) == []


def test_a_hostile_link_falls_back_to_step_one_and_the_default_sample(page, app_server):
    dialogs = _watch_dialogs(page)
    page.goto(f"/?step={quote('<script>alert(1)</script>')}&sample={quote('../../etc/passwd')}")
    _step(page, 1, "Pixels")
    assert_no_exception(page)
    page.locator('[data-testid="stSidebar"]').get_by_text("Now showing: cat-chelsea").wait_for(timeout=TIMEOUT)
    page.wait_for_url(re.compile(r"step=1&sample=cat-chelsea"), timeout=TIMEOUT)  # the link is rewritten
    assert "script" not in page.url and "passwd" not in page.url
    screenshot(page, "hostile-link")
    check_a11y(page, "hostile-link")
    assert dialogs == [] and page.errors == []
    assert external_requests(page.requests, app_server) == []


def test_model_file_page_refuses_a_hostile_file_then_walks_through_a_good_one(page, app_server):
    dialogs = _watch_dialogs(page)
    page.goto("/model")
    page.get_by_role("heading", name="Your own model file").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)

    _upload(page, "evil.npz", b"<html><script>alert(1)</script></html>", "application/octet-stream")
    page.get_by_text("We cannot use this file").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    assert page.get_by_role("button", name="Walk through this network").count() == 0
    screenshot(page, "model-file-refused")
    check_a11y(page, "model-file-refused")

    buf = io.BytesIO()
    M.save_model(M.tiny_vgg(["apple", "banana", "cherry"], (4, 4, 8, 8), input_size=(16, 16), seed=1), buf)
    _upload(page, "fruit.npz", buf.getvalue(), "application/octet-stream")
    page.get_by_role("button", name="Walk through this network").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    assert page.get_by_text("We cannot use this file").count() == 0
    screenshot(page, "model-file-accepted")
    check_a11y(page, "model-file-accepted")

    page.get_by_role("button", name="Walk through this network").click()
    _step(page, 1, "Pixels")
    page.get_by_text(re.compile(r"Prediction: (apple|banana|cherry).*network: fruit")).wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    page.locator('[data-testid="stImage"] img').nth(2).wait_for(timeout=TIMEOUT)
    assert_no_exception(page)
    assert "/model" not in page.url
    screenshot(page, "model-file-walkthrough")
    check_a11y(page, "model-file-walkthrough")
    assert dialogs == [] and page.errors == []
    assert external_requests(page.requests, app_server) == []
