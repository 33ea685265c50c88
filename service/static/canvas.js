// Drawing on canvases for the playground: freehand strokes, and a mask painted over an image.
// An ES module imported by app.js; no dependencies.

// Freehand drawing on a canvas with pointer events (mouse, pen, touch); `stroke(context, from,
// to)` draws each segment. Returns the canvas' 2D context.
export function drawable(canvas, stroke) {
  const context = canvas.getContext("2d");
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke(context, last, next);
    last = next;
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return context;
}

// A stroke function for `drawable`: round-capped lines of one colour and width.
export function line(color, width) {
  return (context, [x0, y0], [x1, y1]) => {
    context.strokeStyle = color;
    context.lineWidth = width;
    context.lineCap = "round";
    context.beginPath();
    context.moveTo(x0, y0);
    context.lineTo(x1, y1);
    context.stroke();
  };
}

// Fill a canvas with black, the background generated digits have.
export function clearCanvas(canvas) {
  const context = canvas.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
}

const ERASED_COLOR = "rgba(255, 40, 40, 1)";

function layerOf(canvas) {
  const layer = document.createElement("canvas");
  layer.width = canvas.width;
  layer.height = canvas.height;
  return layer;
}

// The picture to complete on a canvas: an image (from the grid or a file) or a drawing, with the
// pixels to fill in erased (shown red). The picture and the erased area are kept on two layers
// off screen, so that the mask never depends on the picture's colours. `tool` is "erase" or
// "draw" (white strokes on the picture, to draw part of a digit).
export class CompletionCanvas {
  constructor(canvas) {
    this.canvas = canvas;
    this.picture = layerOf(canvas);
    this.erased = layerOf(canvas);
    this.tool = "erase";
    this.ready = Promise.resolve();  // the picture being loaded, if any
    this.generation = 0;  // a load that a later load or blank() replaced draws nothing
    const eraser = line(ERASED_COLOR, 26);
    const pen = line("#fff", 22);
    drawable(canvas, (_, from, to) => {
      if (this.tool === "erase") {
        eraser(this.erased.getContext("2d"), from, to);
      } else {
        pen(this.picture.getContext("2d"), from, to);
      }
      this.render();
    });
    this.blank();
  }

  // Show the layers: the picture, the erased area over it.
  render() {
    const { width, height } = this.canvas;
    const context = this.canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, width, height);
    context.drawImage(this.picture, 0, 0);
    context.globalAlpha = 0.85;
    context.drawImage(this.erased, 0, 0);
    context.globalAlpha = 1;
  }

  // A black picture to draw on, nothing erased.
  blank() {
    this.generation += 1;
    clearCanvas(this.picture);
    this.unerase();
  }

  // Resolves once the image at `src` is the picture (scaled up, pixelated). The erased area is
  // cleared at once, so that what is erased while the image loads is kept for it.
  load(src) {
    this.unerase();
    const generation = ++this.generation;
    const loading = new Promise((resolve, reject) => {
      const image = new Image();
      image.onerror = () => reject(new Error("that file is not an image this browser can read"));
      image.onload = () => {
        if (generation !== this.generation) {
          resolve();
          return;
        }
        const context = this.picture.getContext("2d");
        clearCanvas(this.picture);
        context.imageSmoothingEnabled = false;
        context.drawImage(image, 0, 0, this.picture.width, this.picture.height);
        this.render();
        resolve();
      };
      image.src = src;
    });
    this.ready = loading.catch(() => {});  // `masked` waits for it; the caller sees the error
    return loading;
  }

  unerase() {
    this.erased.getContext("2d").clearRect(0, 0, this.erased.width, this.erased.height);
    this.render();
  }

  // Erase the bottom or the right half (what the measurements of docs/measurements.md erase).
  eraseHalf(which) {
    const { width, height } = this.erased;
    const context = this.erased.getContext("2d");
    context.fillStyle = ERASED_COLOR;
    if (which === "bottom") context.fillRect(0, height / 2, width, height / 2);
    else context.fillRect(width / 2, 0, width / 2, height);
    this.render();
  }

  // {png: a PNG blob of the picture, `resolution` pixels square, with alpha 0 wherever the
  // erased area touches a pixel (POST /complete's convention: transparent = missing), missing:
  // how many pixels that is}.
  async masked(resolution) {
    await this.ready;
    const small = (layer, smooth) => {
      const out = document.createElement("canvas");
      out.width = out.height = resolution;
      const context = out.getContext("2d");
      context.imageSmoothingEnabled = smooth;
      context.drawImage(layer, 0, 0, resolution, resolution);
      return [out, context.getImageData(0, 0, resolution, resolution)];
    };
    // Smoothed, as digits are: a drawing's strokes become grey edges, not jagged steps.
    const [out, pixels] = small(this.picture, true);
    const [, mask] = small(this.erased, true);
    let missing = 0;
    for (let i = 3; i < mask.data.length; i += 4) {
      if (mask.data[i] > 0) {
        pixels.data[i] = 0;
        missing += 1;
      }
    }
    out.getContext("2d").putImageData(pixels, 0, 0);
    return new Promise((resolve) => out.toBlob((png) => resolve({ png, missing }), "image/png"));
  }
}
