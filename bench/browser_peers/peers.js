// One in-browser training run for bench/browser_peers.py:
//   ?engine=tinyrnn|tfjs-wasm|tfjs-cpu|brainjs|jaxjs-wasm|jaxjs-wasm-threads&B=..&warm=..&secs=..
// Trains a character-level tanh RNN (H=128, T=25, V = the text's characters) on the text served at /text for
// `warm` seconds, then counts characters for `secs` more (steady state) and leaves the result in window.__result.
// Every engine reads the text as B contiguous streams, window after window (brain.js has no batches: B=1).

const params = new URLSearchParams(location.search);
const ENGINE = params.get("engine"), B = Number(params.get("B")), WARM = Number(params.get("warm"));
const SECS = Number(params.get("secs")), H = 128, T = 25, LR = 2e-3;

function log(message) {
  document.getElementById("log").textContent += message + "\n";
}

async function loadScript(src) {
  await new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(s);
  });
}

function streams(text) {
  // ids of the text, vocabulary sorted, cut into B streams of equal length (the char-rnn loader)
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => index.get(c));
  const len = Math.floor((ids.length - 1) / B);
  return { V: chars.length, ids, len, windows: Math.floor(len / T) };
}

// One (inputs, targets) window k of every stream, as flat (B*T) Int32Arrays, batch-major.
function windowAt(data, k) {
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const at = b * data.len + (k % data.windows) * T + t;
      x[b * T + t] = data.ids[at];
      y[b * T + t] = data.ids[at + 1];
    }
  return [x, y];
}

// Calls step() until `warm` seconds pass, then counts steps for `secs` seconds; chars/s of the counted part.
async function timeLoop(step, charsPerStep) {
  let steps = 0, started = performance.now(), counting = false, loss = NaN;
  for (;;) {
    loss = await step(steps);
    steps += 1;
    const elapsed = (performance.now() - started) / 1000;
    if (!counting && elapsed >= WARM) {
      counting = true;
      steps = 0;
      started = performance.now();
    } else if (counting && elapsed >= SECS) {
      return { chars_per_sec: (steps * charsPerStep) / elapsed, steps, seconds: elapsed, last_loss: loss };
    }
  }
}

async function tfjs(text, backend) {
  await loadScript("/node_modules/@tensorflow/tfjs/dist/tf.min.js");
  if (backend === "wasm") {
    await loadScript("/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js");
    tf.wasm.setWasmPaths("/node_modules/@tensorflow/tfjs-backend-wasm/dist/");
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js backend ${backend} did not start`);
  await tf.ready();
  const data = streams(text);
  const model = tf.sequential();
  // one-hot input of size V -> SimpleRNN(128, tanh) carrying its state between windows -> Dense(V) logits
  model.add(tf.layers.simpleRNN({ units: H, returnSequences: true, stateful: true, batchInputShape: [B, T, data.V] }));
  model.add(tf.layers.dense({ units: data.V }));
  model.compile({ optimizer: tf.train.adam(LR), loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred) });
  const info = { engine: `TensorFlow.js ${tf.version.tfjs}, ${tf.getBackend()} backend`, V: data.V,
                 simd: backend === "wasm" ? await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT") : null,
                 clipping: "none (tf.train.adam has no global-norm clipping)" };
  const step = async (k) => {
    const [xi, yi] = windowAt(data, k);
    const [x, y] = tf.tidy(() => [tf.oneHot(tf.tensor2d(xi, [B, T], "int32"), data.V),
                                  tf.oneHot(tf.tensor2d(yi, [B, T], "int32"), data.V)]);
    const loss = await model.trainOnBatch(x, y);
    tf.dispose([x, y]);
    return loss;
  };
  return { ...info, ...(await timeLoop(step, B * T)) };
}

async function brainjs(text) {
  if (B !== 1) throw new Error("brain.js's recurrent networks train one sequence at a time (B=1 only)");
  await loadScript("/node_modules/brain.js/browser.min.js");
  const chunks = [];
  for (let i = 0; i + T <= text.length; i += T) chunks.push(text.slice(i, i + T));
  // brain.js's own optimiser (RMSprop-like) diverges at 2e-3 and 1e-3 here (its error goes to Infinity within a few
  // hundred windows); 1e-4 trains. The speed of a step does not depend on the rate.
  const net = new brain.recurrent.RNN({ hiddenLayers: [H], learningRate: 1e-4 });
  const patterns = net.setupData(chunks); // its own vocabulary and id encoding, as train() does
  net.verifyIsInitialized();
  const step = async (k) => net.trainPattern(patterns[k % patterns.length], true);
  return { engine: "brain.js 1.6.1 recurrent.RNN (its own RMSprop, lr 1e-4, clip by value 5)",
           V: net.inputSize, ...(await timeLoop(step, T)) };
}

async function jaxjs(text, threads) {
  // jax-js's wasm backend runs its kernels on a pool of Web Workers when SharedArrayBuffer exists (the page is
  // cross-origin isolated: bench/browser_peers.py serves "-threads" that way), else on this thread alone.
  if (threads !== (typeof SharedArrayBuffer !== "undefined" && crossOriginIsolated))
    throw new Error(`jax-js with threads=${threads} needs crossOriginIsolated=${threads}, got ${crossOriginIsolated}`);
  const jax = await import("/node_modules/@jax-js/jax/dist/index.js");
  const { makeJaxjsTrainer } = await import("/peers/jaxjs_rnn.mjs");
  const devices = await jax.init("wasm");
  if (!devices.includes("wasm")) throw new Error(`jax-js's wasm backend did not start (devices: ${devices})`);
  jax.defaultDevice("wasm");
  const data = streams(text);
  const trainer = await makeJaxjsTrainer(jax, { V: data.V, H, B, T, lr: LR, clip: 5.0 });
  const version = (await (await fetch("/node_modules/@jax-js/jax/package.json")).json()).version;
  const step = async (k) => trainer.step(...windowAt(data, k));
  return { engine: `jax-js ${version}, wasm backend, ${threads ? `${navigator.hardwareConcurrency} worker threads` :
           "one thread"}, whole step under jit (T unrolled)`, V: data.V, clipping: "global norm 5.0",
           ...(await timeLoop(step, B * T)), jit_traces: trainer.traces };
}

async function tinyrnn(text) {
  await loadScript("/pyodide/pyodide.js");
  const pyodide = await loadPyodide({ indexURL: "/pyodide/" });
  await pyodide.loadPackage(["numpy"]);
  const site = pyodide.runPython("import site; site.getsitepackages()[0]");
  for (const name of (await (await fetch("/wheels/")).json())) { // pure-Python wheels: unzip into site-packages
    pyodide.FS.writeFile(`/tmp/${name}`, new Uint8Array(await (await fetch(`/wheels/${name}`)).arrayBuffer()));
    pyodide.runPython(`import zipfile; zipfile.ZipFile("/tmp/${name}").extractall("${site}")`);
  }
  pyodide.globals.set("text", text);
  pyodide.runPython(`
import tinyrnn
trainer = tinyrnn.Trainer(text, tinyrnn.TrainConfig(hidden_size=${H}, batch_size=${B}, seq_len=${T}, eval_every=10**9))
`);
  const stepPy = pyodide.globals.get("trainer").step;
  const step = async () => stepPy().train_loss;
  return { engine: `tinyrnn ${pyodide.runPython("tinyrnn.__version__")} Trainer.step in Pyodide ${pyodide.version}`,
           backend: pyodide.runPython("tinyrnn.BACKEND"), V: pyodide.runPython("trainer.vocab.size"),
           ...(await timeLoop(step, B * T)) };
}

(async () => {
  try {
    const text = await (await fetch("/text")).text();
    log(`${ENGINE} B=${B}: ${text.length} characters`);
    const run = { tinyrnn: () => tinyrnn(text), "tfjs-wasm": () => tfjs(text, "wasm"), "tfjs-cpu": () => tfjs(text, "cpu"),
                  brainjs: () => brainjs(text), "jaxjs-wasm": () => jaxjs(text, false),
                  "jaxjs-wasm-threads": () => jaxjs(text, true) }[ENGINE];
    if (!run) throw new Error(`unknown engine ${ENGINE}`);
    window.__result = { ok: true, B, H, T, ...(await run()) };
  } catch (err) {
    window.__result = { ok: false, error: String(err && err.stack || err) };
  }
  log(JSON.stringify(window.__result));
})();
