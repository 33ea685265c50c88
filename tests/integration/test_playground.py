"""The playground page in headless Chromium against a real ``gan-serve``: the grid, a new seed,
a latent walk, scoring a dropped image, the image URL, and no console errors on the way."""

from __future__ import annotations

import base64
import io
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


# Before the page's scripts: the model card lists `complete`, and POST /complete (a separate
# endpoint) is stood in for by an echo that keeps what the page sent.
FAKE_COMPLETION = """(() => {
  const real = window.fetch.bind(window);
  window.fetch = async (url, options) => {
    const path = String(url);
    if (path.startsWith('/complete')) {
      window.completeSent = options.body;
      return new Response(options.body, {headers: {'Content-Type': 'image/png'}});
    }
    const response = await real(url, options);
    if (!path.startsWith('/v1/models/')) return response;
    const card = await response.json();
    card.metadata.signatures = ['generate', 'score', 'encode', 'complete'];
    return new Response(JSON.stringify(card), {headers: {'Content-Type': 'application/json'}});
  };
})()"""

# The alpha channel of the PNG the page sent: [width, height, transparent pixels].
SENT_ALPHA = """(async () => {
  const bitmap = await createImageBitmap(window.completeSent);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  let missing = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] === 0) missing++;
  return [bitmap.width, bitmap.height, missing];
})()"""

PAINT_MASK = """(() => {
  const canvas = document.getElementById('mask');
  const box = canvas.getBoundingClientRect();
  const at = (x, y) => ({clientX: box.left + x * box.width, clientY: box.top + y * box.height,
                         pointerId: 1, bubbles: true});
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(0.1, 0.1)));
  canvas.dispatchEvent(new PointerEvent('pointermove', at(0.5, 0.5)));
  canvas.dispatchEvent(new PointerEvent('pointerup', at(0.5, 0.5)));
  return true;
})()"""


@pytest.mark.slow
def test_completion_appears_when_the_model_card_lists_it(
    service: ServiceProcess, browser: Chromium
):
    browser.add_init_script(FAKE_COMPLETION)
    browser.navigate(service.url + "/")
    browser.wait_for("!document.getElementById('complete').hidden")
    browser.wait_for(f"{LOADED}.length === 9")
    browser.evaluate("document.querySelector('#grid .cell').click()")
    browser.evaluate(PAINT_MASK)
    browser.evaluate("document.getElementById('complete-run').click()")
    browser.wait_for(
        "(() => { const i = document.getElementById('complete-img'); "
        "return !i.hidden && i.complete && i.naturalWidth > 0; })()"
    )
    width, height, missing = browser.evaluate(SENT_ALPHA)
    resolution = browser.evaluate("Number(document.querySelector('#grid img').naturalWidth)")
    # The image went at the model's resolution, transparent where the mask was painted (a
    # diagonal stroke over part of it), opaque elsewhere.
    assert width == height == resolution
    assert 0 < missing < resolution * resolution
    assert browser.errors() == []


def test_the_browser_client_reports_console_errors(browser: Chromium):
    # The check above means something only if errors do reach it.
    browser.navigate("data:text/html,<script>console.error('boom'); null.x;</script>")
    errors = browser.wait_for("true") and browser.errors()
    assert any("boom" in e for e in errors) and any("TypeError" in e for e in errors)
