// The tanh RNN training step in jax-js (npm @jax-js/jax): the same model, loss, clipping and Adam as
// bench/jax_rnn.py, the whole step (forward, backward by valueAndGrad, global-norm clipping 5.0, Adam) under one
// jit. jax-js 0.1.25 has no lax.scan, so the T time steps are unrolled when jit traces the step.
// jax-js counts references: every function takes ownership of its array arguments, `.ref` keeps one alive.
//
//   import * as jax from "@jax-js/jax";
//   const trainer = await makeJaxjsTrainer(jax, { V, H, B, T, lr, clip });
//   const loss = await trainer.step(x, y);   // x, y: Int32Array (B*T), batch-major ids

export async function makeJaxjsTrainer(jax, { V, H, B, T, lr = 2e-3, clip = 5.0, seed = 0 }) {
  const { numpy: np, nn, jit, valueAndGrad } = jax;
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  // loss(params, h0, x (T, B) int32, y (T, B) int32) -> [mean nats/char, h_T (B, H)]
  let traces = 0;
  function loss(p, h0, x, y) {
    traces += 1;
    const inputs = np.take(p.Wxh.ref, x, 0).add(p.bh.ref); // (T, B, H): the embedding lookup + bias
    let h = h0;
    const hs = [];
    for (let t = 0; t < T; t++) {
      h = np.tanh(inputs.ref.slice(t).add(np.matmul(h, p.Whh.ref)));
      hs.push(h.ref);
    }
    inputs.dispose();
    const logits = np.matmul(np.stack(hs), p.Why.ref).add(p.by.ref); // (T, B, V)
    const nll = np.takeAlongAxis(nn.logSoftmax(logits, -1), y.reshape([T, B, 1]), -1).neg();
    for (const k of Object.keys(p)) p[k].dispose();
    return [nll.mean(), h];
  }

  const gradFn = valueAndGrad(loss, { hasAux: true });
  const names = ["Wxh", "Whh", "bh", "Why", "by"];
  // step(params, m, v, h, x, y, stepSize) -> [params, m, v, h, loss]; stepSize: Adam's bias-corrected rate
  const step = jit((p, m, v, h, x, y, stepSize) => {
    const [[value, hLast], g] = gradFn(Object.fromEntries(names.map((k) => [k, p[k].ref])), h, x, y);
    let sq = null;
    for (const k of names) {
      const s = np.vdot(g[k].ref, g[k].ref);
      sq = sq === null ? s : sq.add(s);
    }
    const norm = np.sqrt(sq);
    const scale = np.where(norm.ref.greater(clip), np.array(clip).div(norm.ref), 1.0);
    norm.dispose();
    const P = {}, M = {}, Vv = {};
    for (const k of names) {
      const gk = g[k].mul(scale.ref);
      M[k] = m[k].mul(beta1).add(gk.ref.mul(1 - beta1));
      Vv[k] = v[k].mul(beta2).add(gk.ref.mul(gk).mul(1 - beta2));
      P[k] = p[k].sub(stepSize.ref.mul(M[k].ref).div(np.sqrt(Vv[k].ref).add(eps)));
    }
    scale.dispose();
    stepSize.dispose();
    return [P, M, Vv, hLast, value];
  });

  // the same initialisation scale as tinyrnn's tanh RNN (cells.py), from a small seeded generator
  let state = seed + 0x9e3779b9;
  const uniform = () => { // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  const gaussian = (shape, std) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < out.length; i++) out[i] = std * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    return np.array(out).reshape(shape);
  };
  let params = { Wxh: gaussian([V, H], 0.1), Whh: gaussian([H, H], 0.9 / Math.sqrt(H)), bh: np.zeros([H]),
                 Why: gaussian([H, V], 0.1 / Math.sqrt(H)), by: np.zeros([V]) };
  let m = Object.fromEntries(names.map((k) => [k, np.zerosLike(params[k].ref)]));
  let v = Object.fromEntries(names.map((k) => [k, np.zerosLike(params[k].ref)]));
  let h = np.zeros([B, H]);
  let t = 0;

  // batch-major (B*T) ids -> time-major (T, B) int32
  const timeMajor = (ids) => {
    const out = new Int32Array(T * B);
    for (let b = 0; b < B; b++) for (let s = 0; s < T; s++) out[s * B + b] = ids[b * T + s];
    return np.array(out, { dtype: np.int32 }).reshape([T, B]);
  };

  return {
    get traces() { return traces; },
    async step(x, y) {
      t += 1;
      const stepSize = np.array(lr * Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t));
      let value;
      [params, m, v, h, value] = step(params, m, v, h, timeMajor(x), timeMajor(y), stepSize);
      return (await value.data())[0];
    },
  };
}
