"""The playground page in headless Chromium against a real ``gan-serve``: the grid, a new seed,
a latent walk, scoring a dropped image, the image URL, completing a digit erased in part (on
the bundled model, wide and at phone width), and no console errors on the way."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageSequence

from tests.integration.browser import Chromium, find_chromium
from tests.integration.processes import ServiceProcess

GRID_IMAGES = "Array.from(document.querySelectorAll('#grid img'))"
LOADED = f"{GRID_IMAGES}.filter(i => i.complete && i.naturalWidth > 0).map(i => i.src)"

# A PNG from the grid, dropped on the drop zone as a file (what a drag from the desktop gives).
DROP_FIRST_IMAGE = """(async () => {
  const src = document.querySelector('#grid img').src;  // a data: URL of a PNG
  const blob = new Blob([Uint8Array.from(atob(src.split(',')[1]), c => c.charCodeAt(0))]);
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
  const drop = document.getElementById('drop');
  drop.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true,
                                                cancelable: true}));
  drop.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true,
                                            cancelable: true}));
  return true;
})()"""

WALK_BYTES = """(async () => {
  const blob = await (await fetch(document.getElementById('walk-img').src)).blob();
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
})()"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    if find_chromium() is None:
        pytest.skip(
            "chromium is not installed (Debian: apt-get install chromium); "
            "the playground's browser test needs it"
        )
    with Chromium(tmp_path) as chromium:
        chromium.viewport(1000, 900)
        yield chromium


def _set(field: str, value: str, event: str = "input") -> str:
    return (
        f"(() => {{ const e = document.getElementById('{field}'); e.value = '{value}'; "
        f"e.dispatchEvent(new Event('{event}', {{bubbles: true}})); return true; }})()"
    )


@pytest.mark.slow
def test_the_playground_generates_walks_and_scores(service: ServiceProcess, browser: Chromium):
    browser.navigate(service.url + "/")
    assert browser.evaluate("document.title") == "GAN playground"

    # The default grid: 9 images, all decoded.
    first = browser.wait_for(f"(() => {{ const s = {LOADED}; return s.length === 9 && s; }})()")
    assert len(set(first)) == 9  # nine different seeds, nine different images

    # A new seed gives new images (the answer replaces the grid).
    browser.evaluate(_set("seed", "100"))
    second = browser.wait_for(
        f"(() => {{ const s = {LOADED}; return s.length === 9 && s[0] !== {first[0]!r} && s; }})()"
    )
    assert set(second).isdisjoint(first)

    # A smaller grid, and an image's details: its seed and a URL that serves it.
    browser.evaluate(_set("grid-size", "4", "change"))
    browser.wait_for(f"{LOADED}.length === 4 && {GRID_IMAGES}.length === 4")
    browser.evaluate("document.querySelector('#grid .cell').click()")
    assert browser.evaluate("document.getElementById('details-seed').textContent") == "100"
    status = browser.evaluate(
        "fetch(document.getElementById('details-url').href)"
        ".then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert status == "200 image/png"

    # A latent walk plays: an animated WebP with the asked number of frames, all different.
    browser.evaluate(_set("walk-frames", "8"))
    browser.evaluate("document.getElementById('walk-play').click()")
    browser.wait_for(
        "(() => { const i = document.getElementById('walk-img'); "
        "return !i.hidden && i.complete && i.naturalWidth > 0 && i.dataset.frames === '8'; })()"
    )
    animation = Image.open(io.BytesIO(base64.b64decode(browser.evaluate(WALK_BYTES))))
    frames = [frame.convert("RGB").tobytes() for frame in ImageSequence.Iterator(animation)]
    assert animation.format == "WEBP" and len(frames) == 8 and len(set(frames)) > 1

    # A dropped image gets a score and a percentile.
    browser.evaluate(DROP_FIRST_IMAGE)
    result = browser.wait_for(
        "(() => { const t = document.getElementById('score-result').textContent; "
        "return /logit -?[0-9.]+/.test(t) && t; })()"
    )
    assert result.startswith("dropped.png: logit")

    # The keyboard reaches the controls: Enter on "Random" draws new seeds.
    shown = browser.evaluate(LOADED)
    browser.evaluate("document.getElementById('random-seed').focus()")
    browser.press_enter()
    browser.wait_for(
        f"(() => {{ const s = {LOADED}; return s.length === 4 && s[0] !== {shown[0]!r}; }})()"
    )

    # The model card is shown; completion stays hidden for a model without that signature.
    assert browser.evaluate("document.getElementById('card-facts').children.length") > 4
    assert browser.evaluate("document.getElementById('complete').hidden") is True

    # At phone width nothing sticks out sideways.
    browser.viewport(390, 844, mobile=True)
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert browser.errors() == []


# The pixels of an image on the page (a data: URL), as [width, height, grey levels]. Decoded
# through an <img>: the page's content security policy lets it fetch no data: URL.
PIXELS_OF = """(async (src) => {
  const image = new Image();
  await new Promise((resolve, reject) => { image.onload = resolve; image.onerror = reject;
                                           image.src = src; });
  const canvas = new OffscreenCanvas(image.naturalWidth, image.naturalHeight);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, image.naturalWidth, image.naturalHeight).data;
  const grey = [];
  for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
  return [image.naturalWidth, image.naturalHeight, grey];
})"""

# A pointer stroke over the completion canvas, from (x0, y0) to (x1, y1) in fractions of its size.
STROKE = """((x0, y0, x1, y1) => {
  const canvas = document.getElementById('mask');
  const box = canvas.getBoundingClientRect();
  const at = (x, y) => ({clientX: box.left + x * box.width, clientY: box.top + y * box.height,
                         pointerId: 1, bubbles: true});
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(x0, y0)));
  for (let i = 1; i <= 10; i++) {
    canvas.dispatchEvent(new PointerEvent('pointermove',
      at(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)));
  }
  canvas.dispatchEvent(new PointerEvent('pointerup', at(x1, y1)));
  return true;
})"""

# The first grid image given to the completion's file input, as choosing a file does.
OPEN_FIRST_IMAGE = """(async () => {
  const src = document.querySelector('#grid img').src;  // a data: URL of a PNG
  const blob = new Blob([Uint8Array.from(atob(src.split(',')[1]), c => c.charCodeAt(0))]);
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], 'digit.png', {type: 'image/png'}));
  const input = document.getElementById('complete-file');
  input.files = transfer.files;
  input.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
})()"""

COMPLETED = (
    "(() => { const i = document.getElementById('complete-img'); "
    "return !i.hidden && i.complete && i.naturalWidth > 0 && "
    "/^Completed/.test(document.getElementById('complete-result').textContent) && "
    "document.getElementById('complete-result').textContent; })()"
)


def _click(element_id: str) -> str:
    return f"document.getElementById('{element_id}').click() || true"


def _completed(browser: Chromium, shown: str = "") -> str:
    """Wait for a new completion (another image than ``shown``); its caption."""
    browser.wait_for(
        "(() => { const i = document.getElementById('complete-img'); "
        f"return i.src !== {json.dumps(shown)} && i.src.startsWith('data:'); }})()",
        timeout=60,
    )
    return str(browser.wait_for(COMPLETED, timeout=60))


@pytest.mark.slow
def test_the_playground_completes_a_half_erased_digit(
    bundled_service: ServiceProcess, browser: Chromium
):
    browser.navigate(bundled_service.url + "/")
    # The bundled model completes: the panel is there, with the grid's first image to erase.
    browser.wait_for("!document.getElementById('complete').hidden")
    browser.evaluate(_set("class", "7", "change"))  # a grid of sevens
    browser.wait_for(
        f"{LOADED}.length === 9 && /class 7/.test(document.querySelector('#grid img').alt)"
    )
    browser.evaluate("document.querySelector('#grid .cell').click()")
    original = browser.evaluate(f"{PIXELS_OF}(document.querySelector('#grid img').src)")

    # Its bottom half erased, no class given: the completion keeps the top half as it was and
    # says which class it found.
    browser.evaluate(_click("erase-bottom"))
    assert browser.evaluate("document.getElementById('complete-class').value") == ""
    browser.evaluate(_click("complete-run"))
    caption = _completed(browser)
    assert caption.endswith("class found: 7."), caption
    width, height, completed = browser.evaluate(
        f"{PIXELS_OF}(document.getElementById('complete-img').src)"
    )
    side = original[0]
    assert (width, height) == (side, original[1])
    top = side * (side // 2)
    # The page scales the image up by a whole factor and back down: every observed pixel goes
    # back as it came, and the service keeps observed pixels byte for byte.
    assert completed[:top] == original[2][:top]
    assert completed[top:] != original[2][top:]  # the bottom half is the model's

    # A file opened, a stroke erased by hand over its right side, the class given.
    shown = browser.evaluate("document.getElementById('complete-img').src")
    browser.evaluate(OPEN_FIRST_IMAGE)
    browser.evaluate(f"{STROKE}(0.75, 0.1, 0.75, 0.9)")
    browser.evaluate(_set("complete-class", "7", "change"))
    browser.evaluate(_click("complete-run"))
    assert _completed(browser, shown).endswith("as class 7.")

    # At phone width: nothing sticks out sideways; the top of a digit drawn by hand on a blank
    # canvas, its bottom half erased, is completed and its class found.
    browser.viewport(390, 844, mobile=True)
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert (
        browser.evaluate("document.getElementById('complete-run').getBoundingClientRect().right")
        <= 390
    )
    shown = browser.evaluate("document.getElementById('complete-img').src")
    browser.evaluate(_click("complete-blank"))
    browser.evaluate(_set("complete-class", "", "change"))
    browser.evaluate(f"{STROKE}(0.3, 0.25, 0.7, 0.25)")  # the bar of a 7
    browser.evaluate(f"{STROKE}(0.7, 0.25, 0.55, 0.5)")  # and its stem's top
    browser.evaluate(_click("erase-bottom"))
    browser.evaluate(_click("complete-run"))
    assert "class found:" in _completed(browser, shown)
    assert browser.errors() == []


@pytest.mark.slow
def test_completion_asks_for_an_erased_part_first(
    bundled_service: ServiceProcess, browser: Chromium
):
    browser.navigate(bundled_service.url + "/")
    browser.wait_for(f"!document.getElementById('complete').hidden && {LOADED}.length === 9")
    browser.evaluate(_click("complete-run"))
    browser.wait_for(
        "document.getElementById('complete-result').textContent === "
        "'Erase the part to fill in first.'"
    )
    assert browser.evaluate("document.getElementById('complete-img').hidden") is True
    assert browser.errors() == []


def test_the_browser_client_reports_console_errors(browser: Chromium):
    # The check above means something only if errors do reach it.
    browser.navigate("data:text/html,<script>console.error('boom'); null.x;</script>")
    errors = browser.wait_for("true") and browser.errors()
    assert any("boom" in e for e in errors) and any("TypeError" in e for e in errors)
