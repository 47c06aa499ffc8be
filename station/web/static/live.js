// station live view panel: the live positive (GET /live.mjpg) with focus and framing aids
// (GET /live.json, polled twice a second while the panel is open).  While live view runs the
// panel takes the big stage, the head of the filmstrip; captured frames keep landing in the strip.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const panel = $("livepanel"), stage = $("stage"), img = $("liveimg"), btn = $("btn-liveview");
  const loupe = $("loupe"), edges = $("liveedges"), rect = $("liverect");
  const out = { fps: $("live-fps"), focus: $("live-focus"), tilt: $("live-tilt"), tone: $("live-tone") };
  if (!panel || !btn) return;
  let running = false, point = null, timer = null, drawing = false;

  async function command(args) {
    const r = await fetch("/api/command/live", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify(args) });
    if (!r.ok) throw new Error((await r.text()) || r.statusText);
    return r.json();
  }

  function show(on) {
    if (on === running) return;
    running = on;
    panel.hidden = !on;
    stage.hidden = on;
    btn.textContent = on ? "Stop live view" : "Live view";
    btn.setAttribute("aria-pressed", String(on));
    if (on) { img.src = "/live.mjpg?t=" + Date.now(); } else { img.removeAttribute("src"); loupe.hidden = true; }
  }

  function fmt(v, d) { return v == null ? "–" : Number(v).toFixed(d); }

  function update(s) {
    show(!!s.running);
    if (!s.running) return;
    out.fps.textContent = `live ${fmt(s.feed && s.feed.fps, 1)} fps · positive ${fmt(s.fps, 1)} fps`;
    const a = s.aids || {};
    out.focus.textContent = `focus ${fmt(a.focus, 1)} (best ${fmt(a.focus_best, 1)})`;
    out.focus.dataset.best = String(a.focus != null && a.focus_best != null && a.focus >= 0.9 * a.focus_best);
    out.tilt.textContent = a.tilt_deg == null ? "tilt –" : `tilt ${a.tilt_deg > 0 ? "+" : ""}${fmt(a.tilt_deg, 2)}°`;
    out.tone.textContent = s.tone ? (s.tone.pairs ? `tone learnt from ${s.tone.pairs} frame(s)` : "tone: default") : "";
    if (a.edges) {
      const [x0, y0, x1, y1] = a.edges;
      rect.setAttribute("x", 100 * x0); rect.setAttribute("y", 100 * y0);
      rect.setAttribute("width", 100 * (x1 - x0)); rect.setAttribute("height", 100 * (y1 - y0));
      edges.removeAttribute("hidden");
    } else { edges.setAttribute("hidden", ""); }
  }

  async function poll() {
    try {
      const r = await fetch("/live.json", { cache: "no-store" });
      btn.hidden = r.status === 404;  // no camera with live view
      if (r.ok) update(await r.json()); else show(false);
    } catch (e) { /* the station is restarting: keep polling */ }
  }

  // the magnifier: the live positive at 100 % (one image pixel per screen pixel) around the clicked point
  function draw() {
    if (!running || !point || loupe.hidden) { drawing = false; return; }
    const ctx = loupe.getContext("2d"), w = loupe.width, h = loupe.height;
    if (img.naturalWidth) {
      const sx = point[0] * img.naturalWidth - w / 2, sy = point[1] * img.naturalHeight - h / 2;
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, w, h);
      try { ctx.drawImage(img, sx, sy, w, h, 0, 0, w, h); loupe.dataset.drawn = String((+loupe.dataset.drawn || 0) + 1); }
      catch (e) { /* no frame decoded yet */ }
    }
    setTimeout(() => requestAnimationFrame(draw), 66);
  }

  img.addEventListener("click", (ev) => {
    const r = img.getBoundingClientRect();
    point = [Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height))];
    loupe.hidden = false;
    loupe.style.left = `${ev.clientX - panel.getBoundingClientRect().left + 12}px`;
    loupe.style.top = `${ev.clientY - panel.getBoundingClientRect().top + 12}px`;
    command({ point }).catch(() => {});  // the focus score is measured there too
    if (!drawing) { drawing = true; requestAnimationFrame(draw); }
  });
  loupe.addEventListener("click", () => { loupe.hidden = true; });

  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try { update(await command({ on: !running })); } catch (e) { console.error(e); } finally { btn.disabled = false; }
  });
  poll();
  timer = setInterval(poll, 500);
})();
