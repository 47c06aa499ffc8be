// station live view: state arrives by server-sent events; nothing polls.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    roll: $("roll"), camera: $("camera"), queue: $("queue"), link: $("link"),
    img: $("latest"), empty: $("empty"), strip: $("strip"), stage: $("stage"), tag: $("tag"),
    number: $("cap-number"), name: $("cap-name"), status: $("cap-status"), latency: $("cap-latency"),
    reason: $("cap-reason"), checks: $("cap-checks"), banner: $("banner"), live: $("btn-live"), toast: $("toast"),
    histo: $("histogram"), histoNote: $("histo-note"),
    capture: $("btn-capture"), roll_new: $("btn-roll"), calibrate: $("btn-calibrate"),
    flatfield: $("btn-flatfield"),
    reinvert: $("btn-reinvert"), retry: $("btn-retry"),
    print: $("print"), prSource: $("pr-source"), neutral: $("btn-neutral"), prReset: $("btn-print-reset"),
    prRoll: $("btn-print-roll"),
  };
  const CAMERA_TEXT = { connected: "camera ready", busy: "camera busy", reconnecting: "camera reconnecting…", connecting: "camera connecting…",
                        disconnected: "no camera", off: "camera off" };
  let view = null;        // the last view model from the station
  let pinned = null;      // key of the frame the operator chose, or null = follow the newest
  let shownUrl = null;    // URL in the big image
  let loadSeq = 0;

  // ---- server-sent events -------------------------------------------------
  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("state", (ev) => {
      setLink("live", "live");
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    });
    es.onopen = () => setLink("live", "live");
    es.onerror = () => setLink(es.readyState === EventSource.CLOSED ? "offline" : "connecting",
                               es.readyState === EventSource.CLOSED ? "offline" : "reconnecting…");
    // the browser reconnects by itself (retry: 1000); a closed stream (e.g. 401) is retried here
    setInterval(() => { if (es.readyState === EventSource.CLOSED) { location.reload(); } }, 15000);
  }
  function setLink(state, text) { els.link.dataset.state = state; els.link.textContent = text; }

  // ---- rendering --------------------------------------------------------------
  function fmtLat(s) { return s == null ? "" : (s < 10 ? s.toFixed(2) : s.toFixed(1)) + " s"; }

  function render(v) {
    view = v;
    els.roll.textContent = v.roll ? "roll " + v.roll : "no roll";
    const cam = (v.camera && v.camera.state) || "off";
    els.camera.dataset.state = cam;
    els.camera.textContent = CAMERA_TEXT[cam] || ("camera " + cam);
    els.camera.title = (v.camera && v.camera.detail) || "camera";
    const trouble = ["reconnecting", "disconnected", "connecting"].includes(cam) && v.camera.detail;
    els.banner.hidden = !trouble;
    els.banner.textContent = trouble ? v.camera.detail : "";
    const q = (v.queue && v.queue.total) || 0;
    els.queue.textContent = "queue " + q;
    els.queue.dataset.state = q ? "busy" : "";
    els.retry.hidden = !v.frames.some((f) => f.status === "failed");
    renderStrip(v.frames);
    if (pinned && !v.frames.some((f) => f.key === pinned)) pinned = null;
    renderMain();
  }

  function frameByKey(key) { return view && view.frames.find((f) => f.key === key); }

  // the frame the caption describes: the pinned one, else the newest of the roll
  function current() {
    if (!view) return null;
    if (pinned) return frameByKey(pinned);
    return view.frames.length ? view.frames[view.frames.length - 1] : null;
  }

  function renderMain() {
    const f = current();
    // the big image: that frame's positive; while the newest frame is still being
    // inverted (or failed) the last positive stays up, labelled with its own number
    let url = f && f.url;
    if (!url && !pinned) url = view.latest && view.latest.url;
    let shownNumber = null;
    if (url) {
      const owner = view.frames.find((x) => x.url === url);
      shownNumber = owner ? owner.number : (view.latest && view.latest.number);
    }
    showImage(url, shownNumber);
    els.stage.classList.toggle("stale", !!f && !f.url && !!url);
    els.live.hidden = !pinned;
    if (f) {
      els.number.textContent = "#" + f.number;
      els.name.textContent = f.name;
      els.status.textContent = f.status;
      els.status.dataset.status = f.status;
      const l = [f.latency.preview != null ? "preview " + fmtLat(f.latency.preview) : "",
                 f.latency.master != null ? "master " + fmtLat(f.latency.master) : ""].filter(Boolean);
      els.latency.textContent = l.join(" · ");
      els.reason.hidden = f.status !== "failed";
      els.reason.textContent = f.status === "failed" ? "#" + f.number + " failed" + (f.stage ? " (" + f.stage + ")" : "") + ": " + (f.reason || "unknown reason") : "";
      renderChecks(f.checks);
    } else {
      els.number.textContent = els.name.textContent = els.status.textContent = els.latency.textContent = "";
      els.status.dataset.status = "";
      els.reason.hidden = true;
      renderChecks(null);
    }
    for (const b of els.strip.children) b.setAttribute("aria-current", String(!!f && b.dataset.key === f.key));
    loadPrint(f);
  }

  // the frame checks' findings of the frame shown (framing, focus, clipping, duplicate)
  function renderChecks(checks) {
    els.checks.textContent = "";
    els.checks.hidden = !(checks && checks.length);
    for (const c of checks || []) {
      const li = document.createElement("li");
      li.dataset.check = c.check;
      li.textContent = c.check + ": " + c.message;
      els.checks.appendChild(li);
    }
  }

  function showImage(url, number) {
    els.tag.textContent = url && number != null ? "#" + number : "";
    els.tag.hidden = !url || number == null;
    if (!url) {
      if (pinned) { els.img.hidden = true; els.empty.hidden = false; els.empty.textContent = "No positive for this frame."; shownUrl = null; }
      else if (!shownUrl) { els.img.hidden = true; els.empty.hidden = false; }
      return;
    }
    if (url === shownUrl) return;
    const seq = ++loadSeq;
    const pre = new Image();
    pre.decoding = "async";
    pre.onload = () => {
      if (seq !== loadSeq) return;           // a newer frame won the race
      shownUrl = url;
      els.img.src = url;
      els.img.dataset.url = url;
      els.img.hidden = false;
      els.empty.hidden = true;
      drawHistogram(pre);
    };
    pre.onerror = () => { if (seq === loadSeq) toast("could not load " + url.split("?")[0], true); };
    pre.src = url;
  }

  function thumbUrl(url) { return url ? url + (url.includes("?") ? "&" : "?") + "w=240" : null; }

  function renderStrip(frames) {
    const have = new Map([...els.strip.children].map((el) => [el.dataset.key, el]));
    const atEnd = els.strip.scrollLeft + els.strip.clientWidth >= els.strip.scrollWidth - 30;
    let prev = null;
    for (const f of frames) {
      let el = have.get(f.key);
      if (!el) {
        el = document.createElement("button");
        el.type = "button";
        el.className = "frame";
        el.dataset.key = f.key;
        el.innerHTML = '<div class="thumb"></div><div class="meta"><span class="num"></span><span class="lat"></span><span class="dot"></span></div>';
        el.addEventListener("click", () => select(el.dataset.key));
      }
      have.delete(f.key);
      el.dataset.status = f.status;
      el.dataset.flagged = f.checks && f.checks.length ? "1" : "";
      el.title = f.name + " · " + f.status + (f.reason ? ": " + f.reason : "") +
        (f.checks && f.checks.length ? " · " + f.checks.map((c) => c.check).join(", ") : "");
      el.querySelector(".num").textContent = f.number;
      el.querySelector(".lat").textContent = fmtLat(f.latency.preview);
      const thumb = el.querySelector(".thumb");
      const t = thumbUrl(f.url);
      if (t) {
        let im = thumb.querySelector("img");
        if (!im) { thumb.textContent = ""; im = document.createElement("img"); im.alt = "frame " + f.number; im.loading = "lazy"; thumb.appendChild(im); }
        if (im.getAttribute("src") !== t) im.src = t;
      } else {
        const text = f.status === "failed" ? "failed" : "…";
        if (thumb.textContent !== text || thumb.querySelector("img")) { thumb.innerHTML = '<span class="ph"></span>'; thumb.firstChild.textContent = text; }
      }
      const want = prev ? prev.nextSibling : els.strip.firstChild;
      if (want !== el) els.strip.insertBefore(el, want);
      prev = el;
    }
    for (const el of have.values()) el.remove();
    if (atEnd && !pinned) els.strip.scrollLeft = els.strip.scrollWidth;
  }

  function select(key) {
    const newest = view && view.frames.length ? view.frames[view.frames.length - 1].key : null;
    pinned = key === newest ? null : key;  // choosing the newest frame means: follow live
    renderMain();
  }
  function step(d) {
    if (!view || !view.frames.length) return;
    const f = current();
    let i = f ? view.frames.findIndex((x) => x.key === f.key) : view.frames.length - 1;
    i = Math.max(0, Math.min(view.frames.length - 1, i + d));
    pinned = view.frames[i].key;
    renderMain();
    const el = [...els.strip.children].find((b) => b.dataset.key === pinned);
    if (el) el.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  // ---- histogram (client side, from the image itself) --------------------------
  const work = document.createElement("canvas");
  function drawHistogram(img) {
    const w = 256, h = Math.max(1, Math.round(256 * img.naturalHeight / Math.max(1, img.naturalWidth)));
    work.width = w; work.height = h;
    const wc = work.getContext("2d", { willReadFrequently: true });
    wc.drawImage(img, 0, 0, w, h);
    let data;
    try { data = wc.getImageData(0, 0, w, h).data; } catch (e) { els.histoNote.textContent = "histogram unavailable"; return; }
    const bins = [new Uint32Array(64), new Uint32Array(64), new Uint32Array(64)];
    let clipLo = 0, clipHi = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i], g = data[i + 1], b = data[i + 2];
      bins[0][r >> 2]++; bins[1][g >> 2]++; bins[2][b >> 2]++;
      if (r <= 1 && g <= 1 && b <= 1) clipLo++;
      if (r >= 254 || g >= 254 || b >= 254) clipHi++;
    }
    const c = els.histo, ctx = c.getContext("2d");
    const W = c.width, H = c.height;
    ctx.clearRect(0, 0, W, H);
    let max = 1;
    for (const b of bins) for (let i = 1; i < 63; i++) max = Math.max(max, b[i]);
    ctx.globalCompositeOperation = "lighter";
    const colours = ["rgba(230,70,70,.85)", "rgba(80,200,90,.85)", "rgba(80,120,240,.85)"];
    bins.forEach((b, k) => {
      ctx.fillStyle = colours[k];
      ctx.beginPath();
      ctx.moveTo(0, H);
      for (let i = 0; i < 64; i++) {
        const y = H - Math.min(H, (b[i] / max) * (H - 2));
        ctx.lineTo((i / 63) * W, y);
      }
      ctx.lineTo(W, H);
      ctx.closePath();
      ctx.fill();
    });
    ctx.globalCompositeOperation = "source-over";
    const pct = (x) => (100 * x / n).toFixed(1) + "%";
    els.histoNote.textContent = "clipped: shadows " + pct(clipLo) + " · highlights " + pct(clipHi);
    c.dataset.ready = "1";
  }

  // ---- commands -----------------------------------------------------------------
  let toastTimer = null;
  function toast(text, error) {
    els.toast.textContent = text;
    els.toast.classList.toggle("error", !!error);
    els.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { els.toast.hidden = true; }, error ? 6000 : 2500);
  }

  async function command(name, args, button) {
    if (button) button.disabled = true;
    try {
      const r = await fetch("/api/command/" + name, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(args || {}), credentials: "same-origin",
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok || body.ok === false) throw new Error(body.error || r.statusText);
      return body.result;
    } catch (e) {
      toast(name.replace("_", " ") + ": " + e.message, true);
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- the print of the selected frame (sliders, neutral picker) ---------------------
  const PR_KEYS = ["exposure", "temperature", "tint", "contrast", "black", "white"];
  const FMT = { exposure: (v) => (v >= 0 ? "+" : "") + v.toFixed(2) + " EV", temperature: (v) => Math.round(v) + " K",
                tint: (v) => (v >= 0 ? "+" : "") + Math.round(v), contrast: (v) => v.toFixed(2),
                black: (v) => v.toFixed(3), white: (v) => v.toFixed(3) };
  const slider = (k) => $("pr-" + k);
  let printKey = null;    // the frame whose print the sliders show
  let printSeq = 0;
  function showPrint(p, source) {
    for (const k of PR_KEYS) {
      if (p && p[k] != null) slider(k).value = p[k];
      // the setting itself (a picked white balance falls between the slider's steps)
      $("pr-" + k + "-v").textContent = FMT[k](p && p[k] != null ? Number(p[k]) : Number(slider(k).value));
    }
    els.prSource.textContent = source ? source + "'s" : "–";
    els.print.dataset.source = source || "";
  }
  function loadPrint(f) {
    const key = f ? f.key : null;
    if (key === printKey) return;
    printKey = key;
    setPicking(false);
    if (!key) { showPrint(null, null); return; }
    const seq = ++printSeq;
    command("get_print", { path: key }).then((r) => {
      if (seq === printSeq && r !== undefined && printKey === key) showPrint(r.print, r.source);
    });
  }
  async function sendPrint(args, label) {
    const f = current();
    if (!f) { toast("no frame to adjust", true); return; }
    els.print.setAttribute("aria-busy", "true");
    const r = await command("set_print", Object.assign({ path: f.key }, args));
    els.print.removeAttribute("aria-busy");
    if (r === undefined) return;
    if (printKey === f.key) showPrint(r.print, args.reset ? null : "frame");
    if (args.reset) { printKey = null; loadPrint(f); }
    toast("#" + f.number + " " + (label || "print") + ": " + r.describe);
  }
  for (const k of PR_KEYS) {
    const s = slider(k);
    s.addEventListener("input", () => { $("pr-" + k + "-v").textContent = FMT[k](Number(s.value)); });
    s.addEventListener("change", () => sendPrint({ settings: { [k]: Number(s.value) } }));
  }
  els.prReset.addEventListener("click", () => sendPrint({ reset: true }, "print reset"));
  els.prRoll.addEventListener("click", () => {
    const f = current();
    if (!f) { toast("no frame", true); return; }
    const settings = {};
    for (const k of PR_KEYS) settings[k] = Number(slider(k).value);
    const roll = f.key.includes("/") ? f.key.split("/")[0] : null;
    if (!roll) { toast("this frame is not in a roll folder", true); return; }
    command("set_print", { roll: roll, settings: settings }, els.prRoll).then((r) => {
      if (r !== undefined) toast("roll " + roll + ": " + r.describe + " (" + r.rerender.length + " frames re-rendered)");
    });
  });
  let picking = false;
  function setPicking(on) {
    picking = !!on;
    els.neutral.setAttribute("aria-pressed", String(picking));
    els.stage.classList.toggle("picking", picking);
  }
  els.neutral.addEventListener("click", () => setPicking(!picking));
  els.img.addEventListener("click", (ev) => {
    if (!picking) return;
    setPicking(false);
    const f = current();
    if (!f || !f.url || els.img.dataset.url !== f.url) { toast("pick on the frame's own preview", true); return; }
    // the picture is letterboxed (object-fit: contain): find the point in it
    const r = els.img.getBoundingClientRect(), nw = els.img.naturalWidth, nh = els.img.naturalHeight;
    const sc = Math.min(r.width / nw, r.height / nh), dw = nw * sc, dh = nh * sc;
    const x = (ev.clientX - r.left - (r.width - dw) / 2) / dw, y = (ev.clientY - r.top - (r.height - dh) / 2) / dh;
    if (x < 0 || x > 1 || y < 0 || y > 1) { toast("that point is outside the picture", true); return; }
    sendPrint({ neutral: { x: x, y: y } }, "neutral");
  });

  function capture() { command("capture", {}, els.capture).then((r) => { if (r !== undefined) toast("captured"); }); }

  els.capture.addEventListener("click", capture);
  els.roll_new.addEventListener("click", () => {
    const name = prompt("Name of the new roll (empty = automatic):", "");
    if (name === null) return;
    const args = name.trim() ? { name: name.trim() } : {};
    command("roll_new", args, els.roll_new).then((r) => {
      if (r !== undefined) { pinned = null; toast("new roll" + (r && r.roll ? " " + r.roll : "")); }
    });
  });
  els.calibrate.addEventListener("click", () => {
    if (!confirm("Calibrate the film base now? Put a blank (unexposed) piece of the film on the stand first.")) return;
    command("calibrate", {}, els.calibrate).then((r) => { if (r !== undefined) toast("film base calibrated"); });
  });
  els.flatfield.addEventListener("click", () => {
    if (!confirm("Shoot the flat field now? Take the film off the stand: the camera must see only the bare light.")) return;
    command("flatfield", {}, els.flatfield).then((r) => {
      if (r !== undefined) toast("flat field " + (r && r.id ? r.id : "measured")
        + (r && typeof r.falloff === "number" ? " (corners " + (100 * r.falloff).toFixed(1) + "% darker)" : ""));
    });
  });
  els.reinvert.addEventListener("click", () => {
    const f = current();
    if (!f) { toast("no frame to re-invert", true); return; }
    command("reinvert", { path: f.key }, els.reinvert).then((r) => { if (r !== undefined) toast("re-inverting #" + f.number); });
  });
  els.retry.addEventListener("click", () => {
    command("retry", {}, els.retry).then((r) => { if (r !== undefined) toast("failed frames re-queued"); });
  });
  els.live.addEventListener("click", () => { pinned = null; renderMain(); });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (ev.code === "Space" || ev.key === " ") {
      ev.preventDefault();
      if (!ev.repeat) capture();
    } else if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
    else if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
    else if (ev.key === "Escape") { if (picking) { setPicking(false); return; } pinned = null; if (view) renderMain(); }
  });
  // a focused button must not turn Space into a second click
  document.addEventListener("keyup", (ev) => { if (ev.code === "Space") ev.preventDefault(); });

  // phones: the picture first, the print panel folded until asked for
  if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) $("print-box").open = false;
  connect();
})();
