"""The README stays short, and every relative link in it and in docs/ leads to a file (and,
for a #fragment, to a heading of that file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "locales" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Markdown links and images, and the <img src="..."> the README uses to size a picture.
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img [^>]*src=\"([^\"]+)\"")


def anchors(page: Path) -> set[str]:
    """The #fragments GitHub gives a page's headings."""
    headings = re.findall(r"^#+\s+(.*)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(page):
    broken = []
    for a, b in LINK.findall(page.read_text(encoding="utf-8")):
        target = a or b
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:...
        path, _, fragment = target.partition("#")
        file = page.parent / path if path else page
        if not file.exists() or (fragment and file.suffix == ".md"
                                 and fragment not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to what does not exist: {broken}"


def test_the_reverse_proxy_example_sets_every_forwarded_header_the_booth_believes():
    """With trusted_proxies set, ProxyFix believes X-Forwarded-For, -Proto and -Host
    (booth/webapp/security.py): a proxy that does not set one passes the phone's own on, so
    the deployment guide's nginx example must set all three."""
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    block = re.search(r"```nginx\n(.*?)```", guide, re.S).group(1)
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert re.search(rf"^\s*proxy_set_header {header} \$", block, re.M), header
