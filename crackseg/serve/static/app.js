// The crackseg page: send each dropped or chosen image to POST /api/predict, one at a time,
// and show its overlay, measurements and a mask download. No dependencies, no build step.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const num = (x, digits = 1) => (x == null ? "–" : Number(x).toFixed(digits));
let limits = null;
const queue = [];
let busy = false;

async function loadHealth() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    limits = health.limits;
    $("#model").textContent = `Model ${health.model} on ${health.device}, threshold ${health.threshold}`;
    const formats = health.formats || ["PNG", "JPEG", "WebP", "BMP", "TIFF"];
    const listed = `${formats.slice(0, -1).join(", ")} or ${formats[formats.length - 1]}`;
    $("#limits").textContent = `${listed}, up to ${mib(limits.max_upload_bytes)} ` +
      `and ${(limits.max_pixels / 1e6).toFixed(1)} megapixels`;
    if (health.mm_per_px) {
      $("#mm").placeholder = String(health.mm_per_px);
      $("#mm").title = `Empty: the server's default, ${health.mm_per_px} mm per pixel`;
    }
  } catch (err) {
    $("#model").textContent = `The server is not reachable (${err.message}).`;
  }
}

function newCard(name, batch) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = name;
  batch.append(card);
  return card;
}

function fail(card, message) {
  $(".status", card).textContent = "";
  const error = $(".error", card);
  error.textContent = message;
  error.hidden = false;
}

function row(tbody, cells, header = false) {
  const tr = tbody.insertRow();
  cells.forEach((text, i) => {
    const cell = document.createElement(header && i === 0 ? "th" : "td");
    if (header && i === 0) cell.scope = "row";
    cell.textContent = text;
    tr.append(cell);
  });
}

function pngUrl(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
}

function show(card, result) {
  const m = result.measurements;
  const unit = m.mm_per_px ? "mm" : "px";
  const key = (name) => m.mm_per_px ? name.replace("_px", "_mm") : name;
  const img = $(".overlay", card);
  img.src = `data:image/png;base64,${result.overlay_png_base64}`;
  img.alt = `${result.filename}: ${m.count} crack(s) coloured by width`;

  const summary = $(".summary tbody", card);
  row(summary, ["Cracks", String(m.count)], true);
  row(summary, ["Total length", `${num(m[key("total_length_px")])} ${unit}`], true);
  row(summary, ["Max width", `${num(m[key("max_width_px")])} ${unit}`], true);
  row(summary, ["Crack area", `${num(100 * m.area_fraction, 2)} %`], true);
  if (m.ignored_count) {
    row(summary, ["Specks ignored", `${m.ignored_count} (under ${m.min_area_px} px)`], true);
  }
  if (m.dropped_slivers) {
    row(summary, ["Slivers dropped", `${m.dropped_slivers} (under ${m.min_length_px} px long)`],
      true);
  }
  if (m.bridged_gaps) {
    row(summary, ["Gaps bridged", `${m.bridged_gaps} (up to ${m.gap_px} px)`], true);
  }
  row(summary, ["Image", `${result.width} × ${result.height} px`], true);

  const cracks = $(".cracks tbody", card);
  for (const c of m.cracks) {
    row(cracks, [String(c.id), `${num(c[key("length_px")])} ${unit}`,
      `${num(c[key("mean_width_px")], 2)} ${unit}`, `${num(c[key("max_width_px")], 2)} ${unit}`,
      `${num(c.orientation_deg)}°`]);
  }
  if (!m.cracks.length) {
    const cell = cracks.insertRow().insertCell();
    cell.colSpan = 5;
    cell.className = "empty";
    cell.textContent = "No cracks found.";
  }
  const link = $(".download", card);
  link.href = pngUrl(result.mask_png_base64);
  link.download = `${result.filename.replace(/\.[^.]*$/, "")}_mask.png`;
  $(".status", card).textContent = `Analysed in ${num(result.seconds, 2)} s.`;
  $(".body", card).hidden = false;
}

async function analyse(file, card, tries = 0) {
  if (limits && file.size > limits.max_upload_bytes) {
    return fail(card, `${file.name}: ${mib(file.size)} is over the ${mib(limits.max_upload_bytes)} upload limit.`);
  }
  $(".status", card).textContent = "Analysing…";
  const form = new FormData();
  form.append("file", file, file.name);
  const mm = $("#mm").value.trim();
  if (mm) form.append("mm_per_px", mm);
  let response, body;
  try {
    response = await fetch("/api/predict", { method: "POST", body: form });
    body = await response.json();
  } catch (err) {
    return fail(card, `Upload failed: ${err.message}`);
  }
  if (response.status === 503 && tries < 20) {  // the server is full: wait as it asks, then retry
    const wait = Math.max(1, Number(response.headers.get("Retry-After")) || 2);
    $(".status", card).textContent = `Server busy: retrying in ${wait} s…`;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    return analyse(file, card, tries + 1);
  }
  if (!response.ok) return fail(card, body.error || `Error ${response.status}`);
  show(card, body);
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const [file, card] = queue.shift();
    await analyse(file, card);
  }
  busy = false;
}

function add(files) {
  const batch = document.createDocumentFragment();  // newest batch on top, in the chosen order
  for (const file of files) {
    const card = newCard(file.name, batch);
    $(".status", card).textContent = "Waiting…";
    queue.push([file, card]);
  }
  $("#results").prepend(batch);
  pump();
}

const input = $("#files");
input.addEventListener("change", () => { add(input.files); input.value = ""; });
const drop = $("#drop");
document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
document.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  add(e.dataTransfer.files);
});
loadHealth();
