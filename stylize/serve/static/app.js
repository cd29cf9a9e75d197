// stylize serve: the page. Plain JavaScript, no build step, no library.
// Everything the server sends is shown with textContent (never as HTML): upload
// names are whatever a sender called the file.
"use strict";

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const CSRF = meta("stylize-csrf");
const MODE = meta("stylize-mode");
const FIXED_JOB = meta("stylize-job");
const COLORS = ["#22262b", "#b4441f", "#2f6db4", "#2f7d32", "#8e44ad", "#c99a06", "#0e8a8a", "#7a5230"];
const FINAL = new Set(["finished", "failed", "cancelled", "interrupted"]);
const KINDS = { backends: "backend", losses: "loss", optimizers: "optimizer", starts: "start" };

const state = {
  catalogue: null,
  content: null,        // upload
  contentMask: null,    // upload
  styles: [],           // {upload, weight, mask}
  job: null,            // id of the job shown
  source: null,         // its EventSource
  points: [],           // {step, loss, terms}
  jobs: [],
  compare: [],          // ids of the gallery results ticked
  gallery: [],
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind === "info" ? " info" : "");
  box.hidden = !text;
  if (text && kind === "info") setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 4000);
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (init.method && init.method !== "GET") init.headers["X-Stylize-CSRF"] = CSRF;
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

const post = (path, data) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data || {}),
});

// -- numbers as people read them -------------------------------------------------------------
function seconds(value) {
  if (value === null || value === undefined) return "-";
  value = Math.round(value);
  if (value < 60) return `${value} s`;
  if (value < 3600) return `${Math.floor(value / 60)} min ${value % 60} s`;
  return `${Math.floor(value / 3600)} h ${Math.round((value % 3600) / 60)} min`;
}
const sci = (value) => (value === null || value === undefined ? "-" : Number(value).toPrecision(3));

// -- uploads ------------------------------------------------------------------------------------
async function upload(file) {
  const limit = state.catalogue && state.catalogue.limits.max_upload_bytes;
  if (limit && file.size > limit) {  // refused here: a browser may see only a closed connection otherwise
    say(`upload refused: ${file.name}: ${file.size.toLocaleString("en")} bytes, more than the ` +
        `${limit.toLocaleString("en")} this server takes`);
    return null;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  say(`uploading ${file.name}...`, "info");
  try {
    const result = await api("/api/uploads", { method: "POST", body: form });
    say(`${file.name}: uploaded (${result.width}x${result.height})`, "info");
    loadUploads();
    return result;
  } catch (error) {
    say(`upload refused: ${error.message}`);
    return null;
  }
}

function thumbCard(item, extra = []) {
  return el("div", { class: "thumb-card", "data-upload": item.id },
    el("img", { src: item.thumb, alt: item.name, loading: "lazy" }),
    el("span", { class: "name", title: item.name, text: item.name }), ...extra);
}

function renderInputs() {
  const content = $("content-choice");
  content.replaceChildren();
  if (state.content) content.append(thumbCard(state.content));
  const mask = $("content-mask-choice");
  mask.replaceChildren();
  if (state.contentMask) {
    mask.append(thumbCard(state.contentMask, [el("button", {
      type: "button", class: "small", text: "remove", onclick: () => { state.contentMask = null; renderInputs(); },
    })]));
  }
  const list = $("style-list");
  list.replaceChildren();
  state.styles.forEach((style, index) => {
    const weight = el("input", { type: "number", min: "0", step: "any", value: String(style.weight),
      title: "blend weight", "aria-label": `weight of ${style.upload.name}` });
    weight.addEventListener("input", () => { style.weight = Number(weight.value); });
    const maskInput = el("input", { type: "file", accept: "image/*", title: "style mask",
      "aria-label": `mask of ${style.upload.name}` });
    maskInput.addEventListener("change", async () => {
      if (!maskInput.files.length) return;
      const result = await upload(maskInput.files[0]);
      if (result) { style.mask = result; renderInputs(); }
    });
    const extras = [el("label", {}, "weight ", weight)];
    if (!$("masks-box").open && !style.mask) extras.push(el("span"));
    else extras.push(el("label", {}, style.mask ? `mask: ${style.mask.name} ` : "mask ", maskInput));
    extras.push(el("button", { type: "button", class: "small", text: "remove",
      onclick: () => { state.styles.splice(index, 1); renderInputs(); } }));
    list.append(thumbCard(style.upload, extras));
  });
}

async function loadUploads() {
  try {
    const { uploads } = await api("/api/uploads");
    const box = $("uploads");
    box.replaceChildren(...uploads.map((item) => thumbCard(item, [el("div", {},
      el("button", { type: "button", class: "small", text: "content",
        onclick: () => { state.content = item; renderInputs(); } }),
      " ",
      el("button", { type: "button", class: "small", text: "+ style",
        onclick: () => { state.styles.push({ upload: item, weight: 1, mask: null }); renderInputs(); } }),
      " ",
      el("button", { type: "button", class: "small", text: "delete", title: "delete this upload from the server",
        onclick: () => remove(`/api/uploads/${item.id}`, item.name) }))])));
  } catch (error) { say(error.message); }
  loadStorage();
}

// -- the work folder's limit, and deleting what it holds ---------------------------------------
const mib = (bytes) => `${(bytes / 1048576).toLocaleString("en", { maximumFractionDigits: 1 })} MiB`;

async function loadStorage() {
  if (MODE !== "full") return;
  try {
    const { used, limit } = await api("/api/storage");
    $("storage").textContent = `Server storage: ${mib(used)} of ${mib(limit)} used; the oldest uploads and ` +
      "results no queued or running job needs are deleted to stay under it.";
  } catch (error) { $("storage").textContent = ""; }
}

async function remove(path, name) {
  if (!confirm(`Delete ${name} from the server?`)) return;
  try {
    await api(path, { method: "DELETE" });
    say(`${name}: deleted`, "info");
  } catch (error) { say(`not deleted: ${error.message}`); }
  await Promise.all([loadUploads(), loadGallery(), refreshJobs()]);
}

// -- the settings form, generated from the installed plugins ------------------------------
const BASIC = ["length", "iterations", "tol", "ratio", "style_scale", "scales", "init", "seed", "preserve_colors",
  "match_colors", "mask_tolerance", "content_layers", "style_layers"];

// Settings the page has no control of its own for (a new field, --scheduler, --ladder ...): one input each in
// "More settings", made from the field's declaration in the catalogue (help, type, choices).
const MORE = [];

function buildMoreSettings(fields, defaults) {
  for (const [name, field] of Object.entries(fields)) {
    if ($(`set-${name}`) || field.type === "list") continue;
    let input;
    if (field.choices) {
      const options = field.choices.map((choice) => el("option", { value: String(choice), text: String(choice) }));
      input = el("select", { id: `set-${name}` }, ...options);
    } else if (field.type === "bool") input = el("input", { type: "checkbox", id: `set-${name}` });
    else if (field.type === "int" || field.type === "float") {
      input = el("input", { type: "number", id: `set-${name}`, step: field.type === "int" ? "1" : "any" });
    } else input = el("input", { type: "text", id: `set-${name}` });
    input.dataset.type = field.type;
    input.dataset.nullable = field.nullable ? "1" : "";
    const words = name.replace(/_/g, " ");
    $("more-settings").append(field.type === "bool"
      ? el("label", { class: "check", title: field.help }, input, words)
      : el("label", { title: field.help }, words, input));
    MORE.push(name);
    setField(name, defaults[name]);
  }
}

function moreSettings() {
  const values = {};
  for (const name of MORE) {
    const input = $(`set-${name}`);
    let value = input.type === "checkbox" ? input.checked : input.value.trim();
    if (value === "") {
      if (!input.dataset.nullable) continue;
      value = null;
    } else if (input.dataset.type === "int" || input.dataset.type === "float") value = Number(value);
    values[name] = value;
  }
  return values;
}

function setField(name, value) {
  const input = $(`set-${name}`);
  if (!input) return;
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value === null || value === undefined ? "" : String(value);
}

function buildForm(catalogue) {
  const defaults = catalogue.defaults;
  const presets = $("set-preset");
  for (const name of Object.keys(catalogue.presets)) presets.append(el("option", { value: name, text: name }));
  const quality = $("set-quality");
  for (const name of Object.keys(catalogue.qualities)) quality.append(el("option", { value: name, text: name }));
  quality.value = "normal";
  quality.addEventListener("change", () => {
    for (const [name, value] of Object.entries(catalogue.qualities[quality.value])) setField(name, value);
  });
  for (const init of catalogue.inits) {
    const start = (catalogue.starts || []).find((plugin) => plugin.name === init);
    $("set-init").append(el("option", { value: init, text: init, title: start ? start.doc : "" }));
  }
  $("set-init").addEventListener("change", renderPluginOptions);
  for (const backend of catalogue.backends) {
    $("set-backend").append(el("option", { value: backend.name, text: backend.name, title: backend.doc }));
  }
  for (const optimizer of catalogue.optimizers) {
    $("set-optimizer").append(el("option", { value: optimizer.name, text: optimizer.name, title: optimizer.doc }));
  }
  const losses = $("losses");
  for (const loss of catalogue.losses) {
    // content joins by itself; temporal needs the previous frame warped along the flow: only video feeds it
    if (loss.name === "content" || loss.name === "temporal") continue;
    const box = el("input", { type: "checkbox", id: `loss-${loss.name}`, value: loss.name });
    box.addEventListener("change", renderPluginOptions);
    losses.append(el("label", { title: loss.doc }, box, loss.name));
  }
  $("set-length").max = catalogue.limits.max_length;
  $("set-iterations").max = catalogue.limits.max_iterations;
  for (const name of BASIC) setField(name, defaults[name]);
  buildMoreSettings(catalogue.fields || {}, defaults);
  setField("backend", defaults.backend);
  setField("optimizer", defaults.optimizer);
  setLosses(defaults.losses);
  $("set-backend").addEventListener("change", renderPluginOptions);
  $("set-optimizer").addEventListener("change", renderPluginOptions);
  presets.addEventListener("change", () => {
    const values = catalogue.presets[presets.value] || {};
    for (const [name, value] of Object.entries(values)) {
      if (name === "losses") setLosses(value); else setField(name, value);
    }
    renderPluginOptions();
  });
  const broken = catalogue.broken.map((b) => `${b.kind} ${b.name}: ${b.message}`);
  $("broken-plugins").textContent = broken.length ? `Not loaded: ${broken.join("; ")}` : "";
  renderPluginOptions();
}

function setLosses(names) {
  for (const box of document.querySelectorAll("#losses input")) box.checked = names.includes(box.value);
}

function chosenLosses() {
  return [...document.querySelectorAll("#losses input:checked")].map((box) => box.value);
}

function pluginEntry(kind, name) {
  return (state.catalogue[kind] || []).find((plugin) => plugin.name === name);
}

// Each plugin the run uses gets a fieldset with one input per declared option, showing its default.
function renderPluginOptions() {
  const kept = currentOptionValues();
  const used = [["backends", $("set-backend").value], ["losses", "content"],
    ...chosenLosses().map((name) => ["losses", name]), ["optimizers", $("set-optimizer").value],
    ["starts", $("set-init").value]];
  const box = $("plugin-options");
  box.replaceChildren();
  for (const [kind, name] of used) {
    const plugin = pluginEntry(kind, name);
    if (!plugin || !plugin.options.length) continue;
    const grid = el("div", { class: "grid" });
    for (const option of plugin.options) grid.append(optionInput(plugin.name, option, kept));
    const title = `${KINDS[kind]} ${plugin.name}`;
    box.append(el("fieldset", { "data-plugin": plugin.name },
      el("legend", { text: title, title: plugin.doc }), grid));
  }
}

function optionInput(plugin, option, kept) {
  const id = `opt-${plugin}-${option.name}`;
  const common = { id, "data-plugin": plugin, "data-option": option.name, "data-type": option.type,
    title: option.help };
  let input;
  const fixed = Object.prototype.hasOwnProperty.call(option, "fixed");
  if (option.path || fixed) {
    input = el("input", { ...common, type: "text", disabled: true,
      value: fixed ? String(option.fixed) : "",
      placeholder: "server's default" });
    input.dataset.fixed = "1";
  } else if (option.choices) {
    input = el("select", common, ...option.choices.map((choice) => el("option", { value: choice, text: choice })));
    input.value = option.default === null ? option.choices[0] : String(option.default);
  } else if (option.type === "bool") {
    input = el("input", { ...common, type: "checkbox" });
    input.checked = Boolean(option.default);
  } else {
    const numeric = option.type === "float" || option.type === "int";
    input = el("input", { ...common, type: numeric ? "number" : "text", step: option.type === "int" ? "1" : "any",
      value: option.default === null ? "" : String(option.default),
      placeholder: option.default === null ? "default" : "" });
  }
  input.dataset.default = option.default === null ? "" : String(option.default);
  if (kept[id] !== undefined) {
    if (input.type === "checkbox") input.checked = kept[id]; else input.value = kept[id];
  }
  const label = el("label", { class: option.type === "bool" ? "check" : "" });
  if (option.type === "bool") label.append(input, ` ${option.name}`);
  else label.append(`${option.name}${option.generic ? "" : ""}`, input);
  if (option.help) label.append(el("span", { class: "help", text: option.help }));
  return label;
}

function currentOptionValues() {
  const values = {};
  for (const input of document.querySelectorAll("#plugin-options [data-option]")) {
    values[input.id] = input.type === "checkbox" ? input.checked : input.value;
  }
  return values;
}

// Options the user changed from their declared defaults, as {plugin: {option: value}}.
function changedOptions() {
  const options = {};
  for (const input of document.querySelectorAll("#plugin-options [data-option]")) {
    if (input.dataset.fixed) continue;
    let value;
    if (input.type === "checkbox") {
      if (String(input.checked) === input.dataset.default || (!input.checked && input.dataset.default === "")) continue;
      value = input.checked;
    } else {
      if (input.value.trim() === "" || input.value === input.dataset.default) continue;
      value = input.value.trim();
      if (input.dataset.type === "float" || input.dataset.type === "int") value = Number(value);
    }
    (options[input.dataset.plugin] = options[input.dataset.plugin] || {})[input.dataset.option] = value;
  }
  return options;
}

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function jobRequest() {
  const settings = {
    backend: $("set-backend").value, optimizer: $("set-optimizer").value, losses: chosenLosses(),
    length: numberOrNull("set-length"), iterations: numberOrNull("set-iterations"), tol: numberOrNull("set-tol"),
    ratio: numberOrNull("set-ratio"), style_scale: numberOrNull("set-style_scale"),
    scales: numberOrNull("set-scales"), seed: numberOrNull("set-seed"), init: $("set-init").value,
    preserve_colors: $("set-preserve_colors").checked, match_colors: $("set-match_colors").checked,
    mask_tolerance: numberOrNull("set-mask_tolerance"),
    content_layers: $("set-content_layers").value.trim() || null,
    style_layers: $("set-style_layers").value.trim() || null,
    options: changedOptions(),
    ...moreSettings(),
  };
  for (const key of ["length", "iterations", "tol", "ratio", "style_scale", "mask_tolerance"]) {
    if (settings[key] === null) delete settings[key];
  }
  const request = {
    content: state.content && state.content.id,
    styles: state.styles.map((style) => ({ upload: style.upload.id, weight: style.weight })),
    settings,
  };
  if ($("set-preset").value) request.preset = $("set-preset").value;
  if (state.contentMask || state.styles.some((style) => style.mask)) {
    request.content_mask = state.contentMask && state.contentMask.id;
    request.style_masks = state.styles.map((style) => style.mask && style.mask.id);
  }
  return request;
}

async function start() {
  if (!state.content) return say("choose a content image first");
  if (!state.styles.length) return say("choose at least one style image");
  $("start").disabled = true;
  try {
    const record = await post("/api/jobs", jobRequest());
    say(record.position > 1 ? `queued: position ${record.position}` : "started", "info");
    attach(record.id);
    refreshJobs();
  } catch (error) {
    say(`not started: ${error.message}`);
  } finally {
    $("start").disabled = false;
  }
}

// "Run again": a result's settings (from its PNG metadata) back into the form; also a
// reattached job's own request after a reload (quietly).
function loadRequest(request, quiet = false) {
  const uploads = new Map();
  const find = async (id) => {
    if (!uploads.size) for (const item of (await api("/api/uploads")).uploads) uploads.set(item.id, item);
    return uploads.get(id);
  };
  return (async () => {
    state.content = (await find(request.content)) || null;
    state.styles = [];
    for (const style of request.styles) {
      const item = await find(style.upload);
      if (item) state.styles.push({ upload: item, weight: style.weight, mask: null });
    }
    const settings = request.settings || {};
    for (const name of [...BASIC, ...MORE]) if (name in settings) setField(name, settings[name]);
    if (settings.backend) setField("backend", settings.backend);
    if (settings.optimizer) setField("optimizer", settings.optimizer);
    if (settings.losses) setLosses(settings.losses);
    $("set-preset").value = "";
    renderPluginOptions();
    for (const [plugin, values] of Object.entries(settings.options || {})) {
      for (const [name, value] of Object.entries(values)) {
        const input = $(`opt-${plugin}-${name}`);
        if (!input || input.dataset.fixed) continue;
        if (input.type === "checkbox") input.checked = Boolean(value); else input.value = String(value);
      }
    }
    renderInputs();
    if (quiet) return;
    $("setup").scrollIntoView({ behavior: "smooth" });
    say("settings loaded from the result: press Start to run it again", "info");
  })();
}

// -- one job, live ------------------------------------------------------------------------
function attach(id) {
  if (state.source) state.source.close();
  state.job = id;
  state.points = [];
  $("live").classList.remove("idle");
  if (MODE === "full") localStorage.setItem("stylize-job", id);
  $("preview").removeAttribute("src");
  $("preview").dataset.count = "0";
  $("preview-caption").textContent = "";
  $("download").hidden = true;
  $("progress").value = 0;
  for (const stat of ["level", "step", "elapsed", "eta", "loss"]) $(`stat-${stat}`).textContent = "-";
  const known = state.jobs.find((job) => job.id === id);
  $("job-label").textContent = known ? known.label : "";
  showState(known ? known.state : "queued", known);
  drawChart();
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.source = source;
  source.onopen = () => { $("connection").textContent = "live"; };
  source.onmessage = (message) => {
    if (state.source !== source) return;
    const entry = JSON.parse(message.data);
    handle(entry);
    if (entry.type === "state" && FINAL.has(entry.state)) {
      source.close();
      $("connection").textContent = "";
    }
  };
  source.onerror = () => {
    // The browser reconnects by itself (sending Last-Event-ID); a closed stream stays closed.
    $("connection").textContent = source.readyState === EventSource.CLOSED ? "" : "reconnecting...";
  };
  renderQueue();
}

function showState(name, info = {}) {
  const box = $("job-state");
  box.dataset.state = name;
  let text = name;
  if (name === "queued" && info && info.position) text = `queued: position ${info.position} in the queue`;
  if (name === "running") text = "running";
  if (info && info.message) text += `: ${info.message}`;
  box.textContent = text;
  $("cancel").disabled = !(name === "queued" || name === "running");
}

function handle(entry) {
  switch (entry.type) {
    case "state":
      showState(entry.state, entry);
      if (entry.state === "finished") {
        const link = $("download");
        link.href = `${entry.result}?download=1`;
        link.hidden = false;
        $("preview-caption").textContent = `result: ${entry.width}x${entry.height}, ${seconds(entry.seconds)}`;
        $("progress").value = 1;
        loadGallery();
      }
      if (FINAL.has(entry.state)) refreshJobs();
      break;
    case "started":
      $("stat-step").textContent = `${entry.first_step}/${entry.total}`;
      $("stat-eta").textContent = seconds(entry.seconds);
      $("stat-level").textContent = `0/${entry.levels.length}`;
      $("plan-line").textContent = entry.plan || "";
      $("plan-line").title = (entry.plan_table || []).join("\n");
      break;
    case "level":
      $("stat-level").textContent = `${entry.level + 1}/${entry.levels} (${entry.shape[1]}x${entry.shape[0]})`;
      break;
    case "step":
      state.points.push({ step: entry.step, loss: entry.loss, terms: entry.terms });
      $("progress").value = entry.total ? entry.step / entry.total : 0;
      $("stat-step").textContent = `${entry.step}/${entry.total}`;
      $("stat-elapsed").textContent = seconds(entry.elapsed);
      $("stat-eta").textContent = entry.eta === null ? "..." : seconds(entry.eta);
      $("stat-loss").textContent = sci(entry.loss);
      scheduleChart();
      break;
    case "preview": {
      const img = $("preview");
      img.src = `data:image/jpeg;base64,${entry.jpeg}`;
      img.dataset.count = String(Number(img.dataset.count) + 1);
      img.dataset.step = String(entry.step);
      if ($("job-state").dataset.state !== "finished") {
        const what = entry.start ? "start" : `iteration ${entry.step}`;  // the start's picture, before iteration 1
        $("preview-caption").textContent = `${what} (${entry.width}x${entry.height})`;
      }
      break;
    }
    case "warning":  // the run goes on: a checkpoint the disk refused, a damaged one replaced by the previous
      say(`warning: ${entry.message}`);
      break;
    default:
      break;
  }
}

let chartPending = false;
function scheduleChart() {
  if (chartPending) return;
  chartPending = true;
  requestAnimationFrame(() => { chartPending = false; drawChart(); });
}

// The loss curve: the total and each weighted term, log scale.
function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, pad = 34;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#6a6f76";
  const points = state.points;
  const names = ["total", ...new Set(points.flatMap((point) => Object.keys(point.terms)))];
  const legend = $("legend");
  legend.replaceChildren(...(points.length ? names : []).map((name, i) => {
    const swatch = el("span", { text: name });
    swatch.style.setProperty("--swatch", COLORS[i % COLORS.length]);  // CSSOM: allowed by the page's CSP
    return swatch;
  }));
  if (points.length < 1) {
    ctx.fillText("the loss curve appears here while a job runs", pad, height / 2);
    return;
  }
  const value = (point, name) => (name === "total" ? point.loss : point.terms[name]);
  const logs = [];
  for (const point of points) for (const name of names) {
    const v = value(point, name);
    if (v > 0) logs.push(Math.log10(v));
  }
  if (!logs.length) return;
  let low = Math.floor(Math.min(...logs)), high = Math.ceil(Math.max(...logs));
  if (high === low) high = low + 1;
  const first = points[0].step, last = Math.max(points[points.length - 1].step, first + 1);
  const x = (step) => pad + ((step - first) / (last - first)) * (width - pad - 8);
  const y = (v) => height - 18 - ((Math.log10(v) - low) / (high - low)) * (height - 28);
  ctx.strokeStyle = "#e6e0d4";
  ctx.lineWidth = 1;
  for (let e = low; e <= high; e++) {
    const yy = y(10 ** e);
    ctx.beginPath(); ctx.moveTo(pad, yy); ctx.lineTo(width - 8, yy); ctx.stroke();
    ctx.fillText(`1e${e}`, 2, yy + 4);
  }
  ctx.fillText(`iteration ${first}`, pad, height - 4);
  ctx.fillText(String(last), width - 30, height - 4);
  names.forEach((name, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = name === "total" ? 2 : 1.3;
    ctx.beginPath();
    let moved = false;
    for (const point of points) {
      const v = value(point, name);
      if (!(v > 0)) continue;
      if (moved) ctx.lineTo(x(point.step), y(v)); else { ctx.moveTo(x(point.step), y(v)); moved = true; }
    }
    ctx.stroke();
  });
}

// -- the queue ------------------------------------------------------------------------------
async function refreshJobs() {
  try {
    state.jobs = (await api("/api/jobs")).jobs;
  } catch (error) {
    $("connection").textContent = "server unreachable";
    return;
  }
  renderQueue();
}

function renderQueue() {
  if (MODE !== "full") return;
  const list = $("queue");
  const shown = state.jobs.slice().reverse().slice(0, 20);
  list.replaceChildren(...shown.map((job) => {
    const progress = job.total ? ` ${job.step}/${job.total}` : "";
    const where = job.state === "queued" && job.position ? ` #${job.position}` : "";
    const item = el("li", { class: job.id === state.job ? "current" : "", "data-job": job.id },
      el("span", { text: job.label }),
      el("span", { class: "job-state", text: `${job.state}${where}${progress}` }));
    if (job.id !== state.job) {
      item.append(el("button", { type: "button", class: "small", text: "watch", onclick: () => attach(job.id) }));
    }
    if (job.state === "queued" || job.state === "running") {
      item.append(el("button", { type: "button", class: "small", text: "cancel", onclick: () => cancel(job.id) }));
    }
    if (job.resumable) {
      item.append(el("button", { type: "button", class: "small", text: "resume", onclick: () => resume(job.id) }));
    }
    return item;
  }));
  list.hidden = $("queue-title").hidden = !shown.length;  // no "1. no jobs yet": nothing to show
}

async function cancel(id) {
  try {
    await post(`/api/jobs/${id}/cancel`);
    say("cancelling: the run stops after its current iteration", "info");
  } catch (error) { say(error.message); }
  refreshJobs();
}

async function resume(id) {
  try {
    await post(`/api/jobs/${id}/resume`);
    attach(id);
  } catch (error) { say(`not resumed: ${error.message}`); }
  refreshJobs();
}

// -- the gallery ------------------------------------------------------------------------------
function summary(settings) {
  const parts = [`${settings.backend}`, (settings.losses || []).join("+"), `${settings.length}px`,
    `${settings.iterations} it`, `ratio ${sci(settings.ratio)}`];
  return parts.filter(Boolean).join(" · ");
}

async function loadGallery() {
  if (MODE !== "full") return;
  try {
    state.gallery = (await api("/api/gallery")).results;
  } catch (error) { say(error.message); return; }
  state.compare = state.compare.filter((id) => state.gallery.some((item) => item.id === id));
  const box = $("gallery");
  box.replaceChildren(...state.gallery.map((item) => {
    const title = `${item.content.name} \u00d7 ${item.styles.map((style) => style.name).join(", ")}`;
    const tick = el("input", { type: "checkbox", "aria-label": `compare ${title}` });
    tick.checked = state.compare.includes(item.id);
    tick.addEventListener("change", () => toggleCompare(item.id, tick.checked));
    const again = el("button", { type: "button", class: "small", text: "Run again",
      disabled: !item.request, title: item.request ? "load these settings into the form"
        : "its input images are no longer uploaded here",
      onclick: () => loadRequest(item.request) });
    return el("div", { class: "card", "data-result": item.id },
      el("a", { href: item.url, target: "_blank", rel: "noopener" }, el("img", { src: item.url, alt: title, loading: "lazy" })),
      el("div", { class: "body" },
        el("div", { class: "title", title, text: title }),
        el("div", { class: "settings", text: summary(item.settings) }),
        el("div", { class: "row" }, el("label", {}, tick, " compare"), again,
          el("a", { href: `${item.url}?download=1`, download: "", text: "download" }),
          el("button", { type: "button", class: "small", text: "delete", title: "delete this result from the server",
            onclick: () => remove(`/api/jobs/${item.id}`, `result ${title}`) }))));
  }));
  if (!state.gallery.length) box.append(el("p", { class: "hint", text: "no results yet" }));
  renderCompare();
  loadStorage();
}

function toggleCompare(id, on) {
  state.compare = state.compare.filter((other) => other !== id);
  if (on) state.compare.push(id);
  while (state.compare.length > 2) state.compare.shift();
  loadGallery();
}

function flat(settings) {
  const rows = {};
  for (const [key, value] of Object.entries(settings)) {
    if (key === "options") {
      for (const [plugin, values] of Object.entries(value || {})) {
        for (const [name, v] of Object.entries(values)) rows[`${plugin}.${name}`] = v;
      }
    } else rows[key] = value;
  }
  return rows;
}

function renderCompare() {
  const box = $("compare");
  const items = state.compare.map((id) => state.gallery.find((item) => item.id === id)).filter(Boolean);
  if (items.length !== 2) { box.hidden = true; return; }
  box.hidden = false;
  const [a, b] = items;
  $("compare-a").src = a.url;
  $("compare-b").src = b.url;
  $("compare-a-caption").textContent = `${a.content.name} \u00d7 ${a.styles.map((s) => s.name).join(", ")}`;
  $("compare-b-caption").textContent = `${b.content.name} \u00d7 ${b.styles.map((s) => s.name).join(", ")}`;
  const left = flat(a.settings), right = flat(b.settings);
  const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
  const show = (v) => (v === undefined || v === null ? "-" : Array.isArray(v) ? v.join(", ") : String(v));
  $("compare-table").tBodies[0].replaceChildren(...keys.map((key) => el("tr",
    { class: show(left[key]) !== show(right[key]) ? "differs" : "" },
    el("td", { text: key }), el("td", { text: show(left[key]) }), el("td", { text: show(right[key]) }))));
}

// -- start-up ---------------------------------------------------------------------------------
async function main() {
  if (MODE === "preview") {
    document.body.classList.add("preview-mode");
    await refreshJobs();
    attach(FIXED_JOB);
    return;
  }
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", "/");  // the token now lives in a cookie, not in the address bar
  }
  $("settings").addEventListener("submit", (event) => event.preventDefault());
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", () => state.job && cancel(state.job));
  $("compare-close").addEventListener("click", () => { state.compare = []; loadGallery(); });
  $("masks-box").addEventListener("toggle", renderInputs);
  $("content-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const result = await upload(file);
    if (result) { state.content = result; renderInputs(); }
    event.target.value = "";
  });
  $("style-files").addEventListener("change", async (event) => {
    for (const file of [...event.target.files]) {
      const result = await upload(file);
      if (result) state.styles.push({ upload: result, weight: 1, mask: null });
    }
    renderInputs();
    event.target.value = "";
  });
  $("content-mask-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const result = await upload(file);
    if (result) { state.contentMask = result; renderInputs(); }
    event.target.value = "";
  });
  try {
    state.catalogue = await api("/api/plugins");
    buildForm(state.catalogue);
  } catch (error) { say(`cannot read the installed plugins: ${error.message}`); }
  await Promise.all([loadUploads(), refreshJobs(), loadGallery()]);
  // Reattach: the job this page showed before a reload, else the one running now.
  const saved = localStorage.getItem("stylize-job");
  const running = state.jobs.find((job) => job.state === "running") || state.jobs.find((job) => job.state === "queued");
  const again = state.jobs.find((job) => job.id === saved);
  const shown = again && (!FINAL.has(again.state) || !running) ? again : running;
  if (shown) {
    attach(shown.id);
    if (shown.request && shown.request.content && !state.content) await loadRequest(shown.request, true);
  }
  drawChart();
  setInterval(() => { if (!document.hidden) refreshJobs(); }, 2000);
}

main();
