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

const MASK_COLOR = "rgba(255, 40, 40, 1)";

// An image on a canvas with a mask painted over it. The strokes are also kept alone on a layer
// off screen, so that the mask never depends on the image's colours.
export class MaskPainter {
  constructor(canvas) {
    this.canvas = canvas;
    this.layer = document.createElement("canvas");
    this.layer.width = canvas.width;
    this.layer.height = canvas.height;
    const shown = line(MASK_COLOR, 26);
    const kept = line("#fff", 26);
    drawable(canvas, (context, from, to) => {
      shown(context, from, to);
      kept(this.layer.getContext("2d"), from, to);
    });
  }

  // Show the image at `src` (scaled up, pixelated) and clear the mask.
  show(src) {
    const image = new Image();
    image.onload = () => {
      const { width, height } = this.canvas;
      const context = this.canvas.getContext("2d");
      context.imageSmoothingEnabled = false;
      context.clearRect(0, 0, width, height);
      context.drawImage(image, 0, 0, width, height);
      this.layer.getContext("2d").clearRect(0, 0, width, height);
    };
    image.src = src;
  }

  // A PNG blob of the image at `src`, `resolution` pixels square, with alpha 0 wherever the
  // mask touches a pixel (the convention of POST /complete: transparent = missing).
  maskedPng(src, resolution) {
    const small = document.createElement("canvas");
    small.width = small.height = resolution;
    const maskContext = small.getContext("2d");
    maskContext.drawImage(this.layer, 0, 0, resolution, resolution);
    const mask = maskContext.getImageData(0, 0, resolution, resolution).data;
    const out = document.createElement("canvas");
    out.width = out.height = resolution;
    const context = out.getContext("2d");
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onerror = reject;
      image.onload = () => {
        context.drawImage(image, 0, 0, resolution, resolution);
        const pixels = context.getImageData(0, 0, resolution, resolution);
        for (let i = 3; i < mask.length; i += 4) {
          if (mask[i] > 0) pixels.data[i] = 0;
        }
        context.putImageData(pixels, 0, 0);
        out.toBlob(resolve, "image/png");
      };
      image.src = src;
    });
  }
}
