"""Every relative link of the documentation points at a file that exists, and at a heading of it.

The pages are those of :func:`tests.readme_commands.pages` (README.md, docs/*.md,
models/README.md). A link is a Markdown link or image, ``[text](target)``, or an HTML ``src`` or
``href``; web addresses are not followed. A target ``page.md#anchor`` (or ``#anchor`` within the
page) must name one of the page's headings as GitHub turns them into anchors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.readme_commands import page_name, pages

# [text](target) and ![alt](target); a target has no spaces (an optional "title" may follow).
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _prose(text: str) -> str:
    """The page without its fenced code blocks and inline code, where a link is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _links(text: str) -> list[str]:
    prose = _prose(text)
    return MARKDOWN_LINK.findall(prose) + HTML_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in it: its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings; a repeated heading gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def test_slugs_follow_github():
    assert slug("Incomplete images: `/complete` and `/encode`") == (
        "incomplete-images-complete-and-encode"
    )
    assert slug("Options chosen from the data (`--recipe auto`)") == (
        "options-chosen-from-the-data---recipe-auto"
    )
    assert slug("Processes (`GAN_WORKERS`)") == "processes-gan_workers"
    assert slug("TensorFlow's threads") == "tensorflows-threads"


@pytest.mark.parametrize("page", pages(), ids=page_name)
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in _links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif not file.is_relative_to(REPO_ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {page_name(file)}")
    assert not broken, f"{page_name(page)}: " + "; ".join(broken)


def test_the_pages_have_links():
    # Guard against a pattern that finds nothing: the README links into docs/.
    readme = _links((REPO_ROOT / "README.md").read_text())
    assert "docs/README.md" in readme and any("#" in link for link in readme)


# A source file named in code font (not the outputs a benchmark writes, which a clone lacks).
SOURCE_PATH = re.compile(
    r"`((?:service|training|gan_contract|tests|benchmarks|deploy)/[\w/.-]+\.py)`"
)


@pytest.mark.parametrize("page", pages(), ids=page_name)
def test_every_source_path_a_page_names_exists(page: Path) -> None:
    missing = [
        path
        for path in SOURCE_PATH.findall(page.read_text())
        if not (REPO_ROOT / path.rstrip("/")).exists()
    ]
    assert missing == [], f"{page.name} names files that do not exist"
