// tinyrnn build (sitebuild/patches.py): the start-up watchdog. The page's start goes through phases (the Python
// worker's script starts, the runtime loads, the packages install, the app starts, the page draws it, the app
// finishes starting: helper workers, what this browser kept); each usually takes seconds. When one takes far
// longer than usual, a notice says what the page is waiting for, since when, what it knows (online? served by the
// service worker? any error?) and offers a reload. It never declares the page ready or failed itself.
// The Python worker also sends a heartbeat every second (sitebuild/patches.py). When it stops for STALLED_S during
// the start, the worker's thread is blocked, not busy, as Firefox left it when the worker started a worker of its
// own (issue 19; js/no_streaming_worker.js). Then the page says so and reloads itself, once per tab session; a second
// time it only offers the reload.
// Uncaught errors and unhandled rejections are kept in `tinyrnnStartup.errors` (and named in the notice). And when the
// service worker takes over a page that is not cross-origin isolated, a note says that a reload trains on every core.
(() => {
  const query = new URLSearchParams(location.search);
  const SCALE = Math.max(0.01, Number(query.get("watchdog")) || 1);  // ?watchdog=0.1: ten times sooner (tests)
  const LIMIT_S = {  // far longer than the slowest start measured in any engine on a busy 2-core machine
    worker: 60, runtime: 90, packages: 90, app: 120, draw: 60, finish: 90,
  };
  // No heartbeat for this long: the worker's thread is blocked (its longest busy stretch, importing the app, takes
  // seconds); not scaled by ?watchdog, since a busy machine stretches that stretch, not the phases' slack.
  const STALLED_S = 40;
  const STALL_RELOADS = "tinyrnn-stall-reloads";  // sessionStorage: the reloads this tab made for a blocked worker
  const WHAT = {
    worker: "the Python worker's script (app.js) to start",
    runtime: "the Python runtime to load (1/3)",
    packages: "the packages to install (2/3)",
    app: "the app to start in Python (3/3)",
    draw: "the page to draw the app",
    finish: "the app to finish starting (helper workers, then what this browser kept)",
  };
  const state = window.tinyrnnStartup = {phase: "worker", since: performance.now(), done: false, errors: [],
                                         shown: null, alive: 0, stalled: false};
  const keep = (text) => { if (state.errors.length < 50) state.errors.push(String(text)); };
  window.addEventListener("error", (e) => keep(e.message || (e.target && e.target.src) || "an error"), true);
  window.addEventListener("unhandledrejection", (e) => {
    const r = e.reason;
    keep(`unhandled rejection: ${r && (r.stack || r.message) || r}`);
  });

  state.enter = (phase) => {
    if (state.done || state.phase === phase) return;
    state.phase = phase;
    state.since = performance.now();
    hide();
  };
  state.finish = () => { state.done = true; hide(); clearInterval(timer); };
  // What the worker said: its status messages name the phase; an error ends the watch (the page shows the error).
  state.message = (msg) => {
    if (!msg || state.done) return;
    if (msg.type === "tinyrnn-alive") { state.alive = performance.now(); return; }
    if (msg.type === "status" && msg.error) state.finish();
    else if (msg.type === "status") {
      const step = /\((\d)\/3\)/.exec(String(msg.msg));
      state.enter(step ? ["runtime", "packages", "app"][Number(step[1]) - 1] : state.phase);
    } else if (msg.type === "render") state.enter("draw");
  };

  // The text of `inner` inside the element of class `host`, through open shadow roots (Bokeh's components).
  function deepText(host, inner) {
    const find = (root, css) => {
      const hit = root.querySelector(css);
      if (hit) return hit;
      for (const el of root.querySelectorAll("*")) {
        if (el.shadowRoot) { const h = find(el.shadowRoot, css); if (h) return h; }
      }
      return null;
    };
    const el = document.body && find(document, "." + host);
    const text = el && find(el.shadowRoot || el, inner);
    return text ? text.textContent : null;
  }

  function hide() {
    if (state.shown) { state.shown.remove(); state.shown = null; }
  }

  function show(seconds) {
    const box = state.shown || document.createElement("div");
    box.className = "tr-watchdog";
    box.setAttribute("role", "alert");
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller ? "from this browser's copy of the site"
      : "from the network";
    const lines = [
      `Still waiting for ${WHAT[state.phase]}: ${Math.round(seconds)} s so far; this usually takes seconds.`,
      ...(state.stalled ? [`The Python worker has not answered for ${Math.round((performance.now() - state.alive) / 1000)} s: `
                           + "its thread is blocked inside the browser (seen in Firefox)."] : []),
      `The page was served ${sw}; the browser reports it is ${navigator.onLine ? "online" : "offline"}.`,
    ];
    if (state.errors.length) {
      const first = (e) => e.split("\n")[0].slice(0, 200);
      lines.push(`Errors so far (${state.errors.length}): ${state.errors.slice(-3).map(first).join(" | ")}`);
    }
    box.textContent = "";
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      box.appendChild(p);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Reload the page";
    button.addEventListener("click", () => location.reload());
    box.appendChild(button);
    if (!state.shown) (document.body || document.documentElement).appendChild(box);
    state.shown = box;
  }

  // A first visit is not cross-origin isolated (one worker trains); once the service worker has saved the site and
  // taken over, the next load is. Say so then, so that "reload" is advice given when it works.
  if (navigator.serviceWorker && !self.crossOriginIsolated) {
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      const note = document.createElement("div");
      note.className = "tr-watchdog tr-sw-note";
      note.setAttribute("role", "status");
      note.textContent = "This browser has saved the site for offline use: reload to train on every core. ";
      const close = document.createElement("button");
      close.type = "button";
      close.textContent = "OK";
      close.addEventListener("click", () => note.remove());
      note.appendChild(close);
      (document.body || document.documentElement).appendChild(note);
    });
  }

  // The worker's thread is blocked: reload once by ourselves (a new worker starts); after that, say so and offer it.
  function stalled(seconds) {
    let reloads = 0;
    try { reloads = Number(sessionStorage.getItem(STALL_RELOADS)) || 0; } catch (e) { reloads = 1; }
    state.stalled = true;
    show(seconds);
    if (reloads >= 1) return;
    try { sessionStorage.setItem(STALL_RELOADS, String(reloads + 1)); } catch (e) { return; }
    state.shown.querySelector("button").textContent = "Reloading the page…";
    state.done = true;
    clearInterval(timer);
    location.reload();
  }

  const timer = setInterval(() => {
    if (state.done) return;
    if (state.alive && (performance.now() - state.alive) / 1000 > STALLED_S) {
      stalled((performance.now() - state.since) / 1000);
      return;
    }
    if (state.phase === "draw" && document.body && !document.body.classList.contains("pn-loading")) {
      state.enter("finish");
    }
    if (state.phase === "finish") {
      const status = deepText("tr-status", "pre");
      if (status !== null && !status.startsWith("Loading")) { state.finish(); return; }
    }
    const seconds = (performance.now() - state.since) / 1000;
    if (seconds > LIMIT_S[state.phase] * SCALE) show(seconds);
  }, 1000);
})();
