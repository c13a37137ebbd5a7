// tinyrnn's shard workers (core/tinyrnn/engines/workers.py runs this in the Pyodide worker): a window's B streams are split
// across k workers, the Pyodide worker itself computing the first slice and k - 1 helper Web Workers the others,
// each with its own instance of the kernels (simd.wasm, window_forward/window_backward, any cell) on its own
// memory. Parameters, the window's ids and its state (B, S) go to the helpers, and their gradients, losses and
// last states come back, through one SharedArrayBuffer; Atomics wake and wait (no messages while training). The layout of that
// buffer is `layoutOf`, the one home of the offsets both sides use. This expression evaluates to the host object.
//
// Who starts the helpers: the page's main thread when it offers to, else this worker itself. Firefox can leave a
// worker that starts a worker of its own asleep for good (offline reloads, issue 19). A page that offers sets
// `self.tinyrnnPageStartsHelpers` in this worker and answers two messages from it (the site's page does,
// sitebuild/js/helpers.js): {type: "tinyrnn-helpers", source, ids, ports}: one new Worker(source) per id, handed
// {type: "port", port}; {type: "tinyrnn-helpers-stop", ids}: terminate those. Either way the host talks to each
// helper through one port-like object (postMessage, onmessage, terminate).
(() => {
  const CTRL_INTS = 64;                 // control words (Int32): the generation, a command and per-helper words
  const GEN = 0, CMD = 1, RUN = 1, YIELD = 2;
  const DONE = 8, STATUS = 24, ACK = 40; // + helper index (1 .. 15)
  const MAX_HELPERS = 15;  // shards.MAX_WORKERS - 1: the DONE, STATUS and ACK words each have room for 15
  const WORDS = {CTRL_INTS, GEN, CMD, RUN, DONE, STATUS, ACK};  // sent to the helpers: one home for the indices
  // Before Atomics.wait puts a worker to sleep, it watches its word for up to SPIN_MS: the next window (a helper) or
  // the helpers' answers (this worker) usually arrive well within that, and waking a sleeping worker costs tens of
  // microseconds, twice a step (docs/performance.md, the page per cell and worker count). Longer pauses sleep.
  const SPIN_MS = 2;

  // Byte offsets in the shared buffer for a window of the cell `cell` (the kernels' number: 0 rnn, 1 gru, 2 lstm)
  // with T steps, B streams, H hidden, state width S, V vocabulary, n parameters and the helpers' stream bounds
  // [b0, b1); everything 16-byte aligned.
  function layoutOf(cell, T, B, H, S, V, n, bounds) {
    let top = CTRL_INTS * 4 + 16;  // + the scale (float64) after the control words
    const take = (bytes) => { const at = top; top += Math.ceil(bytes / 16) * 16; return at; };
    const out = {cell, T, B, H, S, V, n, bounds, scale: CTRL_INTS * 4, params: take(4 * n), inputs: take(4 * B * T),
                 targets: take(4 * B * T), h0: take(4 * B * S), grads: [], hLast: [], loss: []};
    for (let i = 1; i < bounds.length; i++) {
      out.grads[i] = take(4 * n);
      out.hLast[i] = take(4 * (bounds[i][1] - bounds[i][0]) * S);
      out.loss[i] = take(16);  // the summed nats, then the milliseconds the helper's window took (float64)
    }
    out.bytes = top;
    return out;
  }

  // ---- a helper worker (this function's source becomes the worker's script) ------------------------------------
  function helperMain() {
    let me = 0, sab = null, ctrl = null, L = null, k = null, mem = null, at = null, W = null, spinMs = 0;
    let port = self;  // to the host: this worker's own channel, or the MessagePort the page hands it
    function configure(msg) {
      me = msg.index; sab = msg.sab; L = msg.layout; W = msg.words; spinMs = msg.spinMs;
      ctrl = new Int32Array(sab, 0, W.CTRL_INTS);
      const [b0, b1] = L.bounds[me], Bs = b1 - b0, N = L.T * Bs, {H, S, V, n} = L;
      mem = new WebAssembly.Memory({initial: 2});  // the module declares 2 pages (wasm-ld's minimum); grown below
      k = new WebAssembly.Instance(msg.module, {env: {memory: mem}}).exports;
      const sizes = {P: 4 * n, ids: 4 * N, targets: 4 * N, state0: 4 * Bs * S, stateLast: 4 * Bs * S,
                     dstate0: 4 * Bs * S, grad: 4 * n, work: 4 * k.window_size(L.cell, L.T, Bs, H, V)};
      let top = 1024;  // offset 0 would mean "no array"
      at = {};
      for (const [name, bytes] of Object.entries(sizes)) { at[name] = top; top += Math.ceil(bytes / 64) * 64; }
      mem.grow(Math.max(0, Math.ceil(top / 65536) - mem.buffer.byteLength / 65536));
      Atomics.store(ctrl, W.ACK + me, msg.epoch);
      Atomics.notify(ctrl, W.ACK + me);
      loop(0);  // a new buffer's generation starts at 0: a window posted right after the ACK is not missed
    }
    function run() {
      const started = performance.now();
      const {cell, T, H, S, V, n} = L, [b0, b1] = L.bounds[me], Bs = b1 - b0;
      const heap = mem.buffer, f32 = new Float32Array(heap), i32 = new Int32Array(heap);
      f32.set(new Float32Array(sab, L.params, n), at.P / 4);
      const inputs = new Int32Array(sab, L.inputs, L.B * T), targets = new Int32Array(sab, L.targets, L.B * T);
      const ids = at.ids / 4, tgt = at.targets / 4;
      for (let t = 0; t < T; t++) {
        for (let b = 0; b < Bs; b++) {  // (B, T) stream-major rows b0..b1 -> time-major (T, Bs)
          i32[ids + t * Bs + b] = inputs[(b0 + b) * T + t];
          i32[tgt + t * Bs + b] = targets[(b0 + b) * T + t];
        }
      }
      f32.set(new Float32Array(sab, L.h0 + 4 * b0 * S, Bs * S), at.state0 / 4);
      const scale = new Float64Array(sab, L.scale, 1)[0];
      const total = k.window_forward(cell, T, Bs, H, V, at.P, at.ids, at.targets, at.state0, at.stateLast, at.work);
      k.window_backward(cell, T, Bs, H, V, at.P, at.ids, scale, at.grad, at.dstate0, at.work);
      new Float32Array(sab, L.grads[me], n).set(new Float32Array(heap, at.grad, n));
      new Float32Array(sab, L.hLast[me], Bs * S).set(new Float32Array(heap, at.stateLast, Bs * S));
      const out = new Float64Array(sab, L.loss[me], 2);
      out[0] = total;
      out[1] = performance.now() - started;
    }
    function loop(seen) {
      for (;;) {
        const spinUntil = performance.now() + spinMs;
        while (Atomics.load(ctrl, W.GEN) === seen && performance.now() < spinUntil) { /* the next window is near */ }
        Atomics.wait(ctrl, W.GEN, seen);  // asleep until the next window (or a new layout)
        seen = Atomics.load(ctrl, W.GEN);
        if (Atomics.load(ctrl, W.CMD) !== W.RUN) return;  // YIELD: back to the event loop for the next configure
        let status = 0;
        try { run(); } catch (err) { status = 1; port.postMessage({type: "error", message: String(err && err.stack || err)}); }
        Atomics.store(ctrl, W.STATUS + me, status);
        Atomics.store(ctrl, W.DONE + me, seen);
        Atomics.notify(ctrl, W.DONE + me);
      }
    }
    const answer = (event) => {
      const msg = event.data;
      if (msg.type === "configure") configure(msg);
      else if (msg.type === "ping") port.postMessage({type: "ready"});
    };
    onmessage = (event) => {
      if (event.data.type === "port") { port = event.data.port; port.onmessage = answer; }  // started by the page
      else answer(event);
    };
  }

  // `count` helpers running `source`, each as a port-like object (postMessage, onmessage, terminate).
  let lastId = 0;  // the helpers the page started, by number
  function startHelpers(source, count) {
    if (self.tinyrnnPageStartsHelpers) {
      const channels = Array.from({length: count}, () => new MessageChannel());
      const ids = channels.map(() => ++lastId), ports = channels.map((c) => c.port2);
      self.postMessage({type: "tinyrnn-helpers", source, ids, ports}, ports);
      return channels.map(({port1}, i) => Object.assign(port1, {
        terminate() { self.postMessage({type: "tinyrnn-helpers-stop", ids: [ids[i]]}); },
      }));
    }
    const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
    const workers = Array.from({length: count}, (_, i) => new Worker(url, {name: `tinyrnn-shard-${i + 1}`}));
    setTimeout(() => URL.revokeObjectURL(url), 60_000);  // after the workers have loaded it
    return workers;
  }

  // ---- the host, in the Pyodide worker ---------------------------------------------------------------------------
  const host = {
    helpers: [], module: null, sab: null, ctrl: null, L: null, epoch: 0, errors: [],
    stats: {windows: 0, waitMs: 0, helperMs: 0},  // for the benchmarks: time collect() waited, and the helpers worked

    // Starts up to `count` helpers; resolves to how many answered within `timeoutMs` (0 without shared memory).
    async start(count, wasmBytes, timeoutMs) {
      if (!self.crossOriginIsolated || typeof SharedArrayBuffer === "undefined") return 0;
      this.module = new WebAssembly.Module(wasmBytes);
      const helpers = startHelpers(`(${helperMain.toString()})();`, Math.min(count, MAX_HELPERS));
      const started = helpers.map((helper) => new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), timeoutMs);
        helper.onmessage = (event) => {
          if (event.data.type === "ready") { clearTimeout(timer); resolve(helper); }
          else if (event.data.type === "error") this.errors.push(event.data.message);
        };
        helper.onerror = (event) => { this.errors.push(String(event.message)); clearTimeout(timer); resolve(null); };
        helper.postMessage({type: "ping"});
      }));
      const answered = await Promise.all(started);
      helpers.forEach((helper, i) => { if (answered[i] === null) helper.terminate(); });  // late ones are not used
      this.helpers = answered.filter((h) => h !== null);
      return this.helpers.length;
    },

    // A new shared buffer for this window shape; blocks (Atomics.wait) until every helper has taken it.
    configure(cell, T, B, H, S, V, n, bounds, timeoutMs) {
      this.release();
      const L = layoutOf(cell, T, B, H, S, V, n, bounds.map((b) => [b[0], b[1]]));
      this.sab = new SharedArrayBuffer(L.bytes);
      this.ctrl = new Int32Array(this.sab, 0, CTRL_INTS);
      this.L = L;
      this.epoch += 1;
      Atomics.store(this.ctrl, CMD, RUN);
      for (let i = 1; i < L.bounds.length; i++) {
        this.helpers[i - 1].postMessage({type: "configure", index: i, sab: this.sab, layout: L, module: this.module,
                                         epoch: this.epoch, words: WORDS, spinMs: SPIN_MS});
      }
      for (let i = 1; i < L.bounds.length; i++) this.waitFor(ACK + i, this.epoch, timeoutMs, "take the new layout");
    },

    // Helpers asleep in their loop go back to their event loop (to take a new layout, or "stop").
    release() {
      if (this.ctrl === null) return;
      Atomics.store(this.ctrl, CMD, YIELD);
      Atomics.add(this.ctrl, GEN, 1);
      Atomics.notify(this.ctrl, GEN);
    },

    waitFor(word, value, timeoutMs, what) {
      const spinUntil = performance.now() + SPIN_MS;
      while (Atomics.load(this.ctrl, word) !== value && performance.now() < spinUntil) { /* the answer is near */ }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = Atomics.load(this.ctrl, word);
        if (now === value) return;
        if (Date.now() > deadline) {
          const detail = this.errors.length ? `: ${this.errors[this.errors.length - 1]}` : "";
          throw new Error(`a helper worker did not ${what} within ${timeoutMs} ms${detail}`);
        }
        Atomics.wait(this.ctrl, word, now, 50);
      }
    },

    // Copies the parameters, ids (B, T) and the state (B, S) from Pyodide's heap (byte offsets; `module` is Pyodide's
    // Emscripten module, whose HEAPU8 is replaced when the heap grows) and wakes the helpers.
    post(module, params, inputs, targets, h0, scale) {
      const {n, B, T, S} = this.L, buf = module.HEAPU8.buffer;
      new Float32Array(this.sab, this.L.params, n).set(new Float32Array(buf, params, n));
      new Int32Array(this.sab, this.L.inputs, B * T).set(new Int32Array(buf, inputs, B * T));
      new Int32Array(this.sab, this.L.targets, B * T).set(new Int32Array(buf, targets, B * T));
      new Float32Array(this.sab, this.L.h0, B * S).set(new Float32Array(buf, h0, B * S));
      new Float64Array(this.sab, this.L.scale, 1)[0] = scale;
      Atomics.add(this.ctrl, GEN, 1);
      Atomics.notify(this.ctrl, GEN);
    },

    // Waits for the helpers; copies their gradients into gathered (helpers, n) and their rows of hLast (B, S), both
    // in Pyodide's heap (the caller adds the gradients with the kernels' add_into); returns the sum of their
    // summed nats.
    collect(module, gathered, hLast, timeoutMs) {
      const {n, S, bounds} = this.L, gen = Atomics.load(this.ctrl, GEN), waitFrom = performance.now();
      for (let i = 1; i < bounds.length; i++) this.waitFor(DONE + i, gen, timeoutMs, "finish its window");
      this.stats.waitMs += performance.now() - waitFrom;
      this.stats.windows += 1;
      const buf = module.HEAPU8.buffer;  // the heap now, not at post()
      let total = 0;
      for (let i = 1; i < bounds.length; i++) {
        if (Atomics.load(this.ctrl, STATUS + i) !== 0) {
          throw new Error(`helper worker ${i} failed: ${this.errors[this.errors.length - 1] || "no message"}`);
        }
        new Float32Array(buf, gathered + 4 * n * (i - 1), n).set(new Float32Array(this.sab, this.L.grads[i], n));
        const [b0, b1] = bounds[i];
        new Float32Array(buf, hLast + 4 * b0 * S, (b1 - b0) * S).set(new Float32Array(this.sab, this.L.hLast[i], (b1 - b0) * S));
        const result = new Float64Array(this.sab, this.L.loss[i], 2);
        total += result[0];
        this.stats.helperMs += result[1];
      }
      return total;
    },

    stop() {
      this.release();
      for (const helper of this.helpers) helper.terminate();
      this.helpers = [];
      this.ctrl = this.sab = this.L = null;
    },
  };
  return host;
})()
