// The playground page. It uses only the service's public HTTP API, as any client would:
// GET /v1/models and /v1/models/{name}, POST /generate, POST /animate, POST /score, and
// POST /complete when a model's card lists it (an image erased in part, completed). No framework, no build step: an ES module that
// imports the drawing helpers of canvas.js.
import { CompletionCanvas, clearCanvas, drawable, line } from "/static/canvas.js";

const MAX_SEED = 4294967295;
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem("gan-api-key") || "",
  models: [],        // GET /v1/models
  detail: null,      // GET /v1/models/{name} of the chosen model
  psiParam: "psi",   // the truncation query parameter of GET /generate (from /openapi.json)
  gridRequest: 0,    // the latest grid request; older answers are dropped
  selected: null,    // {seed, label, url} of the image clicked in the grid
  completionStarted: false,  // the completion canvas got its first image
};

class ApiError extends Error {}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// fetch() with the API key, turning an error answer ({"error", "detail"}) into an ApiError.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.key) headers.set("Authorization", "Bearer " + state.key);
  const response = await fetch(path, { ...options, headers });
  if (response.ok) return response;
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = body.detail || detail;
  } catch (_) { /* not JSON */ }
  if (response.status === 401) {
    $("key-form").hidden = false;
    $("api-key").focus();
    throw new ApiError(state.key ? "The API key was refused; enter another."
                                 : "This service needs an API key: enter it above.");
  }
  throw new ApiError(`${response.status}: ${detail}`);
}

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function report(error) {
  setStatus(error instanceof ApiError ? error.message : String(error), true);
}

// --- choices ---------------------------------------------------------------------------------

function currentModel() {
  return state.models.find((m) => m.name === $("model").value) || state.models[0];
}

function classNames(model) {
  const names = state.detail && state.detail.metadata && state.detail.metadata.class_names;
  return Array.from({ length: model.num_classes }, (_, i) => (names && names[i]) || String(i));
}

function fillSelect(select, entries, keep) {
  const previous = keep ? select.value : null;
  select.replaceChildren(...entries.map(([value, text]) => new Option(text, value)));
  if (previous !== null && entries.some(([value]) => value === previous)) select.value = previous;
}

function chosenClass() {
  const value = $("class").value;
  return value === "" ? null : Number(value);
}

function seedValue(input, room = 1) {
  let seed = Math.floor(Number(input.value));
  if (!Number.isFinite(seed) || seed < 0) seed = 0;
  seed = Math.min(seed, MAX_SEED - room + 1);
  input.value = String(seed);
  return seed;
}

function modelQuery() {
  const model = currentModel();
  return { model: model.name, version: Number($("version").value) };
}

// --- models and the model card ---------------------------------------------------------------

async function loadModels() {
  const response = await api("/v1/models");
  state.models = (await response.json()).models;
  const preferred = state.models.find((m) => m.default) || state.models[0];
  fillSelect($("model"), state.models.map((m) => [m.name, m.name]), false);
  $("model").value = preferred.name;
  await chooseModel();
}

async function chooseModel() {
  const model = currentModel();
  fillSelect($("version"), model.served_versions.slice().reverse().map((v) => [String(v), `v${v}`]), false);
  state.detail = await (await api(`/v1/models/${encodeURIComponent(model.name)}`)).json();
  const conditional = model.num_classes > 0;
  const classes = classNames(model).map((name, i) => [String(i), name]);
  fillSelect($("class"), [["", "by seed (seed mod classes)"], ...classes], false);
  fillSelect($("walk-class-to"), [["", "same as the first"], ...classes], false);
  fillSelect($("score-class"), classes, false);
  fillSelect($("complete-class"), [["", "find it"], ...classes], false);
  for (const id of ["class-field", "walk-class-field", "score-class-field"]) $(id).hidden = !conditional;
  $("complete-class").closest(".field").hidden = !conditional;
  showCard(state.detail);
  showCompletion(state.detail);
  await refreshGrid();
}

function showCard(detail) {
  const meta = detail.metadata || {};
  const facts = [
    ["Name", detail.name],
    ["Version", meta.version],
    ["Architecture", meta.architecture],
    ["Loss", meta.loss],
    ["Data", meta.dataset],
    ["Images", `${detail.resolution}×${detail.resolution}, ${detail.channels === 1 ? "grayscale" : "RGB"}`],
    ["Classes", detail.num_classes ? (meta.class_names || []).join(", ") || detail.num_classes : "unconditional"],
    ["Latent size", detail.z_dim],
    ["Training steps", meta.steps],
    ["Images seen", meta.images_seen],
    ["Exported", meta.created_at],
  ].filter(([, value]) => value !== undefined && value !== null && value !== "");
  $("card-facts").replaceChildren(...facts.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "number" ? value.toLocaleString("en") : String(value);
    return [dt, dd];
  }));
  const metrics = Object.entries(meta.metrics || {}).filter(([, v]) => typeof v === "number");
  $("card-metrics").hidden = metrics.length === 0;
  $("card-metrics").tBodies[0].replaceChildren(...metrics.map(([name, value]) => {
    const row = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = Number.isInteger(value) ? String(value) : value.toPrecision(4);
    row.append(th, td);
    return row;
  }));
}

// The signatures a model card lists, as a list or as an object keyed by name.
function signatures(detail) {
  const listed = (detail.metadata || {}).signatures || [];
  return Array.isArray(listed) ? listed : Object.keys(listed);
}

function showCompletion(detail) {
  $("complete").hidden = !signatures(detail).includes("complete");
  $("complete-img").hidden = true;
  $("complete-result").textContent = "";
}

// --- the grid --------------------------------------------------------------------------------

function imageUrl(seed, label) {
  const params = new URLSearchParams({ seed: String(seed) });
  params.set(state.psiParam, $("psi").value);
  if (label !== null) params.set("class_label", String(label));
  const { model, version } = modelQuery();
  params.set("model", model);
  params.set("version", String(version));
  return new URL("/generate?" + params, location.href).href;
}

async function refreshGrid() {
  const count = Number($("grid-size").value);
  const seed = seedValue($("seed"), count);
  const request = ++state.gridRequest;
  const label = currentModel().num_classes > 0 ? chosenClass() : null;
  const body = {
    seeds: count === 1 ? [seed] : `${seed}-${seed + count - 1}`,
    truncation_psi: Number($("psi").value),
    response: "json",
    ...modelQuery(),
  };
  if (label !== null) body.class_label = label;
  $("grid").setAttribute("aria-busy", "true");
  try {
    const answer = await (await postJson("/generate", body)).json();
    if (request !== state.gridRequest) return;  // a newer request is on its way
    const columns = Math.ceil(Math.sqrt(count));
    $("grid").style.gridTemplateColumns = `repeat(${columns}, 1fr)`;
    $("grid").replaceChildren(...answer.images.map((image) => gridCell(image)));
    // Something to erase from the start: the first grid's first image.
    if (!state.completionStarted && answer.images.length) {
      state.completionStarted = true;
      completion.load("data:image/png;base64," + answer.images[0].png_base64).catch(report);
    }
    setStatus(`${answer.images.length} images from ${answer.model} v${answer.version}`);
  } catch (error) {
    if (request === state.gridRequest) report(error);
  } finally {
    if (request === state.gridRequest) $("grid").setAttribute("aria-busy", "false");
  }
}

function gridCell(image) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cell";
  button.setAttribute("role", "listitem");
  button.setAttribute("aria-pressed", "false");
  const label = image.class_label === null || image.class_label === undefined ? null : image.class_label;
  button.dataset.seed = String(image.seed);
  const img = document.createElement("img");
  img.src = "data:image/png;base64," + image.png_base64;
  img.alt = `Seed ${image.seed}` + (label === null ? "" : `, class ${label}`);
  button.append(img);
  button.addEventListener("click", () => select(button, image.seed, label, img.src));
  return button;
}

function select(button, seed, label, src) {
  for (const cell of $("grid").children) cell.setAttribute("aria-pressed", String(cell === button));
  const url = imageUrl(seed, label);
  state.selected = { seed, label, src };
  $("details").hidden = false;
  $("details-img").src = src;
  $("details-img").alt = `Seed ${seed}`;
  $("details-seed").textContent = String(seed);
  $("details-class").textContent = label === null ? "none" : String(label);
  $("details-url").href = url;
  $("details-url").textContent = url;
  $("walk-from").value = String(seed);
  if (!$("complete").hidden) completion.load(src).catch(report);
}

// --- the latent walk -------------------------------------------------------------------------

async function playWalk(event) {
  event.preventDefault();
  const model = currentModel();
  const from = seedValue($("walk-from"));
  const to = seedValue($("walk-to"));
  const frames = Math.max(2, Math.min(120, Math.floor(Number($("walk-frames").value)) || 32));
  $("walk-frames").value = String(frames);
  const body = {
    seeds: [from, to],
    frames,
    fps: 15,
    loop: true,
    truncation_psi: Number($("psi").value),
    format: "webp",
    scale: 1,  // the page enlarges it (pixelated): the service then encodes the fewest pixels
    ...modelQuery(),
  };
  if (model.num_classes > 0) {
    const first = chosenClass() ?? from % model.num_classes;
    const second = $("walk-class-to").value === "" ? first : Number($("walk-class-to").value);
    body.class_label = [first, second];
  }
  $("walk-play").disabled = true;
  try {
    const response = await postJson("/animate", body);
    const blob = await response.blob();
    const img = $("walk-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.alt = `A latent walk from seed ${from} to seed ${to} and back, ${frames} frames`;
    img.dataset.frames = response.headers.get("X-Frames") || "";
    img.hidden = false;
    $("walk-caption").textContent = `Seed ${from} → ${to} → ${from}, ${frames} frames, ${(blob.size / 1024).toFixed(0)} KiB WebP`;
  } catch (error) {
    report(error);
  } finally {
    $("walk-play").disabled = false;
  }
}

// --- scoring ---------------------------------------------------------------------------------

async function scoreBlob(blob, name) {
  const params = new URLSearchParams(Object.entries(modelQuery()).map(([k, v]) => [k, String(v)]));
  if (currentModel().num_classes > 0) params.set("class_label", $("score-class").value || "0");
  $("score-result").textContent = "Scoring…";
  try {
    const response = await api("/score?" + params, {
      method: "POST",
      headers: { "Content-Type": blob.type || "application/octet-stream" },
      body: blob,
    });
    const score = (await response.json()).scores[0];
    const percentile = score.real_percentile === null
      ? "no calibration in this model"
      : `percentile ${score.real_percentile.toFixed(1)} among real images`;
    $("score-result").textContent = `${name}: logit ${score.logit.toFixed(3)}, ${percentile}`;
  } catch (error) {
    $("score-result").textContent = "";
    report(error);
  }
}

function setUpDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) scoreBlob(file, file.name || "dropped image");
  });
  $("score-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) scoreBlob(file, file.name);
  });
}

// --- completion (models whose card lists the `complete` signature) -------------------------

const completion = new CompletionCanvas($("mask"));

async function complete() {
  const model = currentModel();
  const { png, missing } = await completion.masked(model.resolution);
  if (missing === 0) {
    $("complete-result").textContent = "Erase the part to fill in first.";
    return;
  }
  const params = new URLSearchParams(Object.entries(modelQuery()).map(([k, v]) => [k, String(v)]));
  const asked = $("complete-class").value;
  if (model.num_classes > 0 && asked !== "") params.set("class_label", asked);
  params.set("response", "json");
  $("complete-run").disabled = true;
  $("complete-result").textContent = asked === "" && model.num_classes > 0
    ? "Completing in every class…" : "Completing…";
  try {
    const response = await api("/complete?" + params, {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body: png,
    });
    const answer = await response.json();
    const first = answer.images[0];
    const img = $("complete-img");
    img.src = "data:image/png;base64," + first.png_base64;
    img.hidden = false;
    img.dataset.classLabel = first.class_label == null ? "" : String(first.class_label);
    let text = `Completed ${missing} of ${model.resolution * model.resolution} pixels`;
    if (first.class_label != null) {
      const name = classNames(model)[first.class_label];
      text += asked === "" ? `; class found: ${name}` : ` as class ${name}`;
    }
    img.alt = `The completed image${first.class_label == null ? "" : `, class ${first.class_label}`}`;
    $("complete-result").textContent = text + ".";
  } catch (error) {
    $("complete-result").textContent = "";
    report(error);
  } finally {
    $("complete-run").disabled = false;
  }
}

function setUpCompletion() {
  for (const radio of document.querySelectorAll('input[name="complete-tool"]')) {
    radio.addEventListener("change", () => { completion.tool = radio.value; });
  }
  $("complete-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const url = URL.createObjectURL(file);
    completion.load(url).catch(report).finally(() => URL.revokeObjectURL(url));
  });
  $("erase-bottom").addEventListener("click", () => completion.eraseHalf("bottom"));
  $("erase-right").addEventListener("click", () => completion.eraseHalf("right"));
  $("mask-clear").addEventListener("click", () => completion.unerase());
  $("complete-blank").addEventListener("click", () => {
    completion.blank();
    completion.tool = "draw";
    document.querySelector('input[name="complete-tool"][value="draw"]').checked = true;
  });
  $("complete-run").addEventListener("click", () => complete().catch(report));
}

// --- start -----------------------------------------------------------------------------------

async function discoverPsiParameter() {
  // GET /generate names its truncation parameter in the OpenAPI document; follow it.
  try {
    const doc = await (await fetch("/openapi.json")).json();
    const get = doc.paths && doc.paths["/generate"] && doc.paths["/generate"].get;
    const names = ((get && get.parameters) || []).map((p) => p.name);
    state.psiParam = ["truncation_psi", "psi"].find((n) => names.includes(n)) || state.psiParam;
  } catch (_) { /* keep the default */ }
}

function debounce(fn, ms) {
  let timer = 0;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

async function start() {
  const refresh = debounce(refreshGrid, 150);
  $("model").addEventListener("change", () => chooseModel().catch(report));
  $("version").addEventListener("change", refresh);
  $("class").addEventListener("change", refresh);
  $("seed").addEventListener("input", refresh);
  $("grid-size").addEventListener("change", refresh);
  $("psi").addEventListener("input", () => {
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
    refresh();
  });
  $("random-seed").addEventListener("click", () => {
    const count = Number($("grid-size").value);
    $("seed").value = String(Math.floor(Math.random() * (MAX_SEED - count + 1)));
    refreshGrid();
  });
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); refreshGrid(); });
  $("walk-form").addEventListener("submit", playWalk);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("api-key").value.trim();
    sessionStorage.setItem("gan-api-key", state.key);
    loadModels().then(() => setStatus("Key accepted.")).catch(report);
  });
  setUpDrop();
  clearCanvas($("draw"));
  drawable($("draw"), line("#fff", 22));
  $("draw-clear").addEventListener("click", () => clearCanvas($("draw")));
  $("draw-score").addEventListener("click", () => {
    $("draw").toBlob((blob) => scoreBlob(blob, "drawing"), "image/png");
  });
  setUpCompletion();
  await discoverPsiParameter();
  try {
    await loadModels();
  } catch (error) {
    report(error);
  }
}

document.addEventListener("DOMContentLoaded", start);
