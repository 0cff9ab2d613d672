// personsearch web page: pick a query image, box the person, search the index, browse the hits.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  file: null,        // the query image as uploaded (File or Blob)
  image: null,       // its decoded HTMLImageElement
  size: null,        // {width, height}: the pixels boxes are given in (an indexed frame may be shown scaled)
  scale: 1,          // canvas pixels per box pixel
  people: [],        // proposals: detections [{box, score}] or a frame's indexed people [{box, score, id}]
  box: null,         // the query box [x1, y1, x2, y2] in box pixels
  boxSource: null,   // "drawn", "detected" or "indexed #id"
  personId: null,    // the indexed person searched for by id (their stored embedding), else null
  drag: null,        // {x0, y0, x1, y1} while the mouse draws a box
  maxUpload: Infinity,
  viewerHit: null,
  viewerFrame: null,
};

// ---- errors and requests -------------------------------------------------------------------
function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : text || response.statusText;
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return body;
}

function checkSize(file) {
  if (file.size > state.maxUpload) {
    const mb = (n) => (n / 1048576).toFixed(1);
    throw new Error(`${file.name || "the image"} is ${mb(file.size)} MB; the server accepts ${mb(state.maxUpload)} MB at most`);
  }
}

// ---- statistics ----------------------------------------------------------------------------
function count(n, singular, plural = `${singular}s`) {
  return `${n.toLocaleString()} ${n === 1 ? singular : plural}`;
}

function describeStats(stats) {
  const index = stats.index || {};
  const parts = [count(index.people || 0, "person", "people")];
  if (index.images) parts.push(count(index.images, "image"));
  if (index.videos) parts.push(`${count(index.frames || 0, "frame")} of ${count(index.videos, "video")}`);
  if (index.cameras && index.cameras.length) parts.push(count(index.cameras.length, "camera"));
  parts.push(`model ${stats.model} (${stats.dim}-d)`);
  if (stats.adding) parts.push("adding images…");
  return parts.join(" · ");
}

async function refreshStats() {
  try {
    const stats = await api("/api/stats");
    state.maxUpload = stats.max_upload_bytes;
    $("stats").textContent = describeStats(stats);
  } catch (err) {
    $("stats").textContent = "statistics unavailable";
    showError(`Index statistics: ${err.message}`);
  }
}

// ---- the query canvas ----------------------------------------------------------------------
const BOX_COLOUR = "#ff4020";
const PERSON_COLOUR = "#18b7d0";

function draw() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  if (!state.image) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    return;
  }
  ctx.drawImage(state.image, 0, 0, canvas.width, canvas.height);
  const rect = (box) => box.map((v) => v * state.scale);
  ctx.lineWidth = 2;
  ctx.setLineDash([6, 4]);
  ctx.strokeStyle = PERSON_COLOUR;
  ctx.font = "12px sans-serif";
  for (const person of state.people) {
    const [x1, y1, x2, y2] = rect(person.box);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = PERSON_COLOUR;
    ctx.fillText(person.score.toFixed(2), x1 + 3, y1 + 13);
  }
  ctx.setLineDash([]);
  const box = state.drag ? normalise(state.drag) : state.box;
  if (box) {
    const [x1, y1, x2, y2] = rect(box);
    ctx.lineWidth = 3;
    ctx.strokeStyle = BOX_COLOUR;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
}

function normalise(drag) {
  return [Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.max(drag.x0, drag.x1), Math.max(drag.y0, drag.y1)];
}

function setBox(box, source, personId = null) {
  state.box = box;
  state.boxSource = box ? source : null;
  state.personId = box ? personId : null;
  $("box-info").textContent = box ? `query box (${source}): ${box.map((v) => Math.round(v)).join(", ")}` : "no box: the most confident person will be used";
  draw();
}

function imagePoint(event) {
  const canvas = $("canvas");
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * canvas.width) / rect.width / state.scale;
  const y = ((event.clientY - rect.top) * canvas.height) / rect.height / state.scale;
  return [Math.max(0, Math.min(state.size.width, x)), Math.max(0, Math.min(state.size.height, y))];
}

function onPointerDown(event) {
  if (!state.image || event.button !== 0) return;
  const [x, y] = imagePoint(event);
  state.drag = { x0: x, y0: y, x1: x, y1: y };
  $("canvas").setPointerCapture(event.pointerId);
  event.preventDefault();
}

function onPointerMove(event) {
  if (!state.drag) return;
  [state.drag.x1, state.drag.y1] = imagePoint(event);
  draw();
}

function onPointerUp(event) {
  if (!state.drag) return;
  const box = normalise(state.drag);
  state.drag = null;
  const minSide = 4 / state.scale;  // a few screen pixels: less is a click, not a drag
  if (box[2] - box[0] >= minSide && box[3] - box[1] >= minSide) {
    setBox(box, "drawn");
    return;
  }
  const [x, y] = imagePoint(event);
  const inside = state.people.filter(({ box: b }) => x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]);
  inside.sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]));
  const person = inside[0];
  if (!person) draw();
  else if (person.id !== undefined) setBox(person.box.slice(), `indexed #${person.id}`, person.id);
  else setBox(person.box.slice(), "detected");
}

// Show ``blob`` on the canvas as the query image; boxes are in ``size`` pixels (default: the image's own).
async function showQueryImage(blob, name, size = null) {
  const url = URL.createObjectURL(blob);
  const image = new Image();
  try {
    image.src = url;
    await image.decode();
  } catch (_) {
    throw new Error(`${name} cannot be shown as an image`);
  }
  state.file = blob;
  state.image = image;
  state.size = size || { width: image.width, height: image.height };
  state.people = [];
  const wrap = $("canvas-wrap");
  const maxWidth = Math.max(320, Math.min(960, wrap.clientWidth || 640));
  state.scale = Math.min(1.5, maxWidth / state.size.width, 720 / state.size.height);
  const canvas = $("canvas");
  canvas.width = Math.round(state.size.width * state.scale);
  canvas.height = Math.round(state.size.height * state.scale);
  $("placeholder").hidden = true;
  $("query-name").textContent = `${name} (${state.size.width}×${state.size.height})`;
  $("search").disabled = false;
  setBox(null);
}

async function loadQuery(blob, name) {
  clearError();
  checkSize(blob);
  await showQueryImage(blob, name);
  await detectPeople();
}

async function detectPeople() {
  const form = new FormData();
  form.append("image", state.file, "query");
  $("box-info").textContent = "looking for people…";
  try {
    const result = await api("/api/detect", { method: "POST", body: form });
    state.people = result.people;
    if (!state.box && state.people.length) setBox(state.people[0].box.slice(), "detected");
    else setBox(state.box, state.boxSource);
    if (!state.people.length && !state.box) $("box-info").textContent = "no person found: draw a box around the person";
  } catch (err) {
    setBox(state.box, state.boxSource);
    showError(`Detection: ${err.message}`);
  }
}

// ---- search and results --------------------------------------------------------------------
function place(hit) {
  const parts = [hit.source.split(/[\\/]/).pop()];
  if (hit.frame !== null && hit.frame !== undefined) parts.push(`frame ${hit.frame}`);
  if (hit.timestamp !== null && hit.timestamp !== undefined) parts.push(`${hit.timestamp.toFixed(1)} s`);
  if (hit.camera) parts.push(`camera ${hit.camera}`);
  return parts.join(" · ");
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${(seconds - 60 * minutes).toFixed(1).padStart(4, "0")}`;
}

// Sightings: one row per video, a bar per passage (from its first to its last hit); click = best hit.
function renderSightings(result) {
  const box = $("sightings");
  box.replaceChildren();
  const sightings = result.sightings || [];
  box.hidden = sightings.length === 0;
  if (!sightings.length) return;
  const t0 = Math.min(...sightings.map((s) => s.start));
  const span = Math.max(1e-6, Math.max(...sightings.map((s) => s.end)) - t0);
  const best = Math.max(...sightings.map((s) => s.similarity));
  const worst = Math.min(...sightings.map((s) => s.similarity));
  box.append(element("h3", "", `${sightings.length} sightings · ${clock(t0)} to ${clock(t0 + span)}`));
  const sources = [...new Set(sightings.map((s) => s.source))];
  for (const source of sources) {
    const row = element("div", "sighting-row");
    row.append(element("span", "sighting-source", source));
    const track = element("div", "sighting-track");
    for (const s of sightings.filter((x) => x.source === source)) {
      const bar = element("button", "sighting");
      bar.style.left = `${((s.start - t0) / span) * 100}%`;
      bar.style.width = `max(6px, ${((s.end - s.start) / span) * 100}%)`;
      const strength = best === worst ? 1 : (s.similarity - worst) / (best - worst);
      bar.style.opacity = (0.35 + 0.65 * strength).toFixed(2);
      bar.title = `${source}${s.camera ? " camera " + s.camera : ""}: ${clock(s.start)}-${clock(s.end)}, `
        + `${s.hit_ids.length} hits, best similarity ${s.similarity.toFixed(3)}`;
      const hit = result.hits.find((h) => h.id === s.best_id);
      if (hit) bar.addEventListener("click", () => openViewer(hit));
      track.append(bar);
    }
    row.append(track);
    box.append(row);
  }
}

function renderHits(result) {
  renderSightings(result);
  const list = $("hits");
  list.replaceChildren();
  $("no-results").hidden = result.hits.length > 0;
  $("no-results").textContent = "No indexed person to show: the index is empty. Add images below.";
  const who = result.person_id === null || result.person_id === undefined ? "" : ` · person #${result.person_id}`;
  $("results-info").textContent = `${result.hits.length} hits${who} · ${Math.round(result.took_ms)} ms`;
  result.hits.forEach((hit, rank) => {
    const item = element("li", "hit");
    item.dataset.id = hit.id;
    item.dataset.box = hit.box.map((v) => Math.round(v)).join(",");
    const thumb = element("img", "thumb");
    thumb.src = hit.thumbnail_url;
    thumb.alt = `person ${hit.id}`;
    const frame = element("img", "frame");
    frame.src = hit.image_url;
    frame.alt = `frame of person ${hit.id}, box drawn`;
    frame.loading = "lazy";
    const meta = element("div", "meta");
    const head = element("div", "head");
    head.append(element("span", "rank", `#${rank + 1}`), element("span", "sim", hit.similarity.toFixed(3)));
    const bar = element("div", "bar");
    const fill = element("i");
    fill.style.width = `${Math.max(0, Math.min(1, hit.similarity)) * 100}%`;
    bar.append(fill);
    meta.append(head, bar, element("div", "place", place(hit)),
      element("div", "muted", `id ${hit.id} · box ${item.dataset.box} · det ${hit.det_score.toFixed(2)}`));
    item.append(thumb, frame, meta);
    item.tabIndex = 0;
    item.addEventListener("click", () => openViewer(hit));
    item.addEventListener("keydown", (e) => { if (e.key === "Enter") openViewer(hit); });
    list.append(item);
  });
}

// An indexed person is searched for by id; anyone else by uploading the query image and box.
function searchRequest() {
  const topK = $("top-k").value || "10";
  const rerank = $("rerank").checked ? "true" : "false";
  if (state.personId !== null) {
    const query = new URLSearchParams({ top_k: topK, rerank });
    return api(`/api/hits/${state.personId}/similar?${query}`);
  }
  const form = new FormData();
  form.append("image", state.file, "query");
  const k = state.image.naturalWidth / state.size.width;  // box pixels -> pixels of the uploaded image
  if (state.box) form.append("box", state.box.map((v) => (v * k).toFixed(1)).join(","));
  form.append("top_k", topK);
  form.append("rerank", rerank);
  return api("/api/query", { method: "POST", body: form });
}

async function runSearch() {
  if (!state.file) return;
  clearError();
  const button = $("search");
  button.disabled = true;
  button.textContent = "Searching…";
  try {
    const result = await searchRequest();
    const k = state.size.width / state.image.naturalWidth;  // uploaded image pixels -> box pixels
    if (result.box_source === "detected") setBox(result.box.map((v) => v * k), "detected");
    renderHits(result);
  } catch (err) {
    showError(`Search: ${err.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Search";
  }
}

// ---- adding images -------------------------------------------------------------------------
async function addImages(event) {
  event.preventDefault();
  clearError();
  const files = Array.from($("add-files").files);
  if (!files.length) {
    showError("Choose one or more images to add first.");
    return;
  }
  const form = new FormData();
  files.forEach((file) => form.append("images", file, file.name));
  const camera = $("add-camera").value.trim();
  if (camera) form.append("camera", camera);
  $("add-info").textContent = `adding ${files.length} image(s)…`;
  try {
    const total = files.reduce((sum, f) => sum + f.size, 0);
    if (total > state.maxUpload) throw new Error(`these files are ${(total / 1048576).toFixed(1)} MB together; the limit is ${(state.maxUpload / 1048576).toFixed(1)} MB`);
    const report = await api("/api/images", { method: "POST", body: form });
    const skipped = report.skipped.map((s) => `${s.file}: ${s.reason}`).join("; ");
    $("add-info").textContent = `added ${report.images} image(s) with ${report.people} people` +
      (report.already ? `, ${report.already} already indexed` : "") + (skipped ? `; skipped ${skipped}` : "");
    $("add-files").value = "";
  } catch (err) {
    $("add-info").textContent = "";
    showError(`Adding images: ${err.message}`);
  }
  refreshStats();
}

// ---- wiring --------------------------------------------------------------------------------
function pickFile(file) {
  if (!file) return;
  loadQuery(file, file.name).catch((err) => showError(err.message));
}

document.addEventListener("DOMContentLoaded", () => {
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  $("query-file").addEventListener("change", (e) => pickFile(e.target.files[0]));
  const wrap = $("canvas-wrap");
  wrap.addEventListener("dragover", (e) => { e.preventDefault(); wrap.classList.add("dropping"); });
  wrap.addEventListener("dragleave", () => wrap.classList.remove("dropping"));
  wrap.addEventListener("drop", (e) => {
    e.preventDefault();
    wrap.classList.remove("dropping");
    pickFile(e.dataTransfer.files[0]);
  });
  $("search").addEventListener("click", runSearch);
  $("clear-box").addEventListener("click", () => setBox(null));
  $("error-close").addEventListener("click", clearError);
  $("add-form").addEventListener("submit", addImages);
  $("viewer-close").addEventListener("click", () => $("viewer").close());
  $("viewer-query").addEventListener("click", queryFromViewer);
  refreshStats();
});
