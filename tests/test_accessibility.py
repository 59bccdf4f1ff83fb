"""Every page in every language, in a real browser: axe-core's WCAG 2.2 A/AA rules, the
language switcher, keyboard use and 200 % zoom.

axe-core comes from npm (tests/axe, installed by scripts/setup-tests); it is injected into
each page from a context that bypasses the pages' strict CSP (the pages themselves are
unchanged). Without it these tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from booth.i18n.catalogues import shipped
from booth.store.captures import CLIP
from booth.store.passwords import set_password
from tests.conftest import ROOT, unavailable
from tests.test_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    PASSWORD,
    PEOPLE,
    PHONE,
    TIMEOUT_MS,
    Booth,
    booth,
    browser,
)
from tests.test_clips import clip  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LANGUAGES = shipped().codes


@pytest.fixture(scope="module")
def axe_source() -> Path:
    if not AXE.is_file():
        unavailable(f"axe-core is missing at {AXE} (run scripts/setup-tests, or npm ci "
                     "--prefix tests/axe)")
    return AXE


def axe_violations(page, axe: Path) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe))
    result = page.evaluate("""tags => axe.run(document, {runOnly: {type: "tag", values: tags},
                                                       resultTypes: ["violations"]})""", WCAG)
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]]


def open_page(page, url: str, status: int) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, (url, response and
                                                                  response.status)
    page.evaluate("() => document.fonts.ready.then(() => true)")


def check(page, axe: Path, code: str, where: str) -> None:
    assert page.evaluate("() => document.documentElement.lang") == code.replace("_", "-"), where
    violations = axe_violations(page, axe)
    assert violations == [], f"{where} in {code}:\n" + "\n".join(violations)


@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.slow
def test_every_page_has_no_axe_violations_in_every_language(
        booth: Booth, browser, axe_source: Path, code: str, clip):  # noqa: F811 (fixtures)
    """The photo, clip, delete, deleted, not-found, staff login, gallery (with a clip) and
    purge pages; the language comes from the browser's Accept-Language (its locale)."""
    kept, doomed = booth.publish(PEOPLE[0]), booth.publish(PEOPLE[1])
    video = booth.store.publish(clip.file, ttl_seconds=3600, thumb_jpeg=clip.thumb,
                                kind=CLIP, poster_jpeg=clip.poster)
    locale = code.replace("_", "-")
    phone = browser.new_context(**PHONE, locale=locale, bypass_csp=True)
    desktop = browser.new_context(**DESKTOP, locale=locale, bypass_csp=True)
    try:
        phone.set_default_timeout(TIMEOUT_MS)
        desktop.set_default_timeout(TIMEOUT_MS)
        page = phone.new_page()
        open_page(page, f"{booth.base}/staff", 200)  # no password yet: how to set one
        check(page, axe_source, code, "staff locked")
        set_password(booth.store, PASSWORD)
        for path, status, where in ((f"/p/{kept.token}", 200, "photo"),
                                    (f"/p/{video.token}", 200, "clip"),
                                    (f"/p/{video.token}/delete", 200, "clip delete"),
                                    (f"/p/{doomed.token}/delete", 200, "delete"),
                                    (f"/p/{secrets.token_urlsafe(16)}", 404, "not found"),
                                    ("/", 200, "home")):
            open_page(page, booth.base + path, status)
            check(page, axe_source, code, where)
        open_page(page, f"{booth.base}/p/{doomed.token}/delete", 200)
        with page.expect_navigation():
            page.locator("form.actions button[type=submit]").click()
        assert not doomed.path.exists()
        check(page, axe_source, code, "deleted")
        open_page(page, f"{booth.base}/p/{video.token}/delete", 200)
        with page.expect_navigation():
            page.locator("form.actions button[type=submit]").click()
        assert not video.path.exists()
        check(page, axe_source, code, "clip deleted")
        video = booth.store.publish(clip.file, ttl_seconds=3600, thumb_jpeg=clip.thumb,
                                    kind=CLIP, poster_jpeg=clip.poster)  # for the gallery

        staff = desktop.new_page()
        open_page(staff, f"{booth.base}/staff", 200)
        check(staff, axe_source, code, "staff login")
        staff.fill("#password", "not the password")
        with staff.expect_navigation():
            staff.locator("form.login button[type=submit]").click()
        check(staff, axe_source, code, "staff login, wrong password")
        staff.fill("#password", PASSWORD)
        with staff.expect_navigation():
            staff.locator("form.login button[type=submit]").click()
        staff.locator("ul.gallery").wait_for()
        check(staff, axe_source, code, "gallery")
        with staff.expect_navigation():
            staff.locator(f"button[form=delete-one][value='{kept.id}']").click()
        staff.locator("ul.flash").wait_for()
        check(staff, axe_source, code, "gallery with a message")
        open_page(staff, f"{booth.base}/staff/purge", 200)
        check(staff, axe_source, code, "purge")
    finally:
        phone.close()
        desktop.close()


def test_switcher_changes_and_remembers_the_language_by_keyboard(
        booth: Booth, browser):  # noqa: F811 (fixtures)
    """A German phone picks Español with the keyboard alone; the choice sticks on every
    later page, over the browser's Accept-Language."""
    capture = booth.publish(PEOPLE[0])
    context = browser.new_context(**PHONE, locale="de-DE")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        url = f"{booth.base}/p/{capture.token}"
        page.goto(url)
        assert page.evaluate("() => document.documentElement.lang") == "de"
        assert page.locator("h1").inner_text() == "Dein Foto auf dem Mars"
        current = page.locator(".langs a[aria-current]")
        assert current.inner_text() == "Deutsch"

        # Tab: first the skip link, then the switcher, in document order.
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip"
        names = []
        for _ in range(len(LANGUAGES)):
            page.keyboard.press("Tab")
            names.append(page.evaluate("() => document.activeElement.textContent"))
        assert names == [shipped()[c].name for c in LANGUAGES]
        while page.evaluate("() => document.activeElement.textContent") != "Español":
            page.keyboard.press("Shift+Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == url  # the same page, without the ?lang query
        assert page.evaluate("() => document.documentElement.lang") == "es"
        assert page.locator("h1").inner_text() == "Tu foto en Marte"
        assert page.locator(".langs a[aria-current]").inner_text() == "Español"

        page.goto(f"{booth.base}/p/{secrets.token_urlsafe(16)}")
        assert page.locator("h1").inner_text() == "No encontrada o caducada"
        cookie = next(c for c in context.cookies() if c["name"] == "booth_lang")
        assert cookie["value"] == "es" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert cookie["expires"] > 300 * 86400  # remembered across visits, not a session

        # The rest of the photo page by keyboard: download and delete are reachable.
        page.goto(url)
        reached = set()
        for _ in range(12):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("() => document.activeElement.id || "
                                      "document.activeElement.textContent"))
        assert {"download", "Borrar mi foto ahora"} <= reached
    finally:
        context.close()


@pytest.mark.parametrize("code", LANGUAGES)
def test_pages_reflow_at_200_percent_zoom(
        booth: Booth, browser, code: str, clip):  # noqa: F811 (fixtures)
    """200 % zoom on a 390-pixel phone leaves 195 CSS pixels, and on a 1280-pixel desktop
    640: nothing may need sideways scrolling, and the actions stay on screen."""
    capture = booth.publish(PEOPLE[2])
    video = booth.store.publish(clip.file, ttl_seconds=3600, kind=CLIP, poster_jpeg=clip.poster)
    set_password(booth.store, PASSWORD)
    locale = code.replace("_", "-")
    for width, height, scale in ((195, 422, 4), (640, 400, 2)):
        context = browser.new_context(viewport={"width": width, "height": height},
                                      device_scale_factor=scale, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            for path in (f"/p/{capture.token}", f"/p/{video.token}", f"/p/{capture.token}/delete",
                         f"/p/{secrets.token_urlsafe(16)}", "/staff"):
                page.goto(booth.base + path)
                page.evaluate("() => document.fonts.ready.then(() => true)")
                overflow = page.evaluate("""() => {
                    const w = document.documentElement.clientWidth;
                    return [...document.querySelectorAll('body *')]
                        .filter(e => e.getClientRects().length &&
                                     e.getBoundingClientRect().right > w + 1)
                        .map(e => e.tagName + '.' + e.className + ': ' +
                                  (e.textContent || '').trim().slice(0, 40));
                }""")
                assert overflow == [], f"{path} at {width}px in {code}: {overflow}"
                assert page.evaluate("() => document.documentElement.scrollWidth") <= width
                for button in page.locator(".button:visible").all():
                    box = button.bounding_box()
                    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, path
        finally:
            context.close()
