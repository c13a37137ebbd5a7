"""Where the time of one ``Trainer.step`` goes, piece by piece, on one core: the numpy path and the native one.

    python -m bench.step_profile                    # H=128, B=1 and B=32, both paths
    python -m bench.step_profile --sizes 128x1 --pyinstrument   # also a pyinstrument profile of Trainer.step

Each piece is timed alone, in a loop, by this process's CPU time (a busy shared machine disturbs it less than the
wall clock), after warm-up, with one BLAS thread and the process pinned to one core; microseconds per call.
"Autograd and glue" is what ``loss_and_grads`` costs beyond the numeric pieces it calls.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.harness import make_step, synthetic_windows
from bench.workers import _steady_state_malloc


def per_call_us(fn, seconds: float = 0.3) -> float:
    """CPU microseconds per call of ``fn`` (median of 3 timed loops filling ``seconds`` together)."""
    for _ in range(20):
        fn()
    t0, n = time.process_time(), 0
    while time.process_time() - t0 < seconds / 6:
        fn()
        n += 1
    loops = []
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        loops.append((time.process_time() - t0) / n * 1e6)
    return sorted(loops)[1]


def numpy_pieces(H, B, T=25, V=65) -> dict:
    """The default (numpy + autograd) path's pieces, as Trainer.step calls them."""
    import tinyrnn
    from tinyrnn import model, ops, optim

    p = tinyrnn.init_params(tinyrnn.ModelConfig(V, H), 0, np.float32)
    x, y = synthetic_windows(V, B, T)[0]
    h0 = np.zeros((B, H), np.float32)
    xt, yt = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    hs = ops.recurrence_forward(p["W_hx"], p["W_hh"], p["b_h"], h0, xt)
    flat_hs = hs.reshape(T * B, H)
    logits = ops.output_logits(flat_hs, p["W_yh"], p["b_y"])
    _, dl = ops.softmax_cross_entropy(logits, yt.reshape(-1))
    dhs = ops.output_backward(dl, flat_hs, p["W_yh"])[0].reshape(T, B, H)
    res = model.loss_and_grads(p, x, y, h0)
    grads = {k: v for k, v in res.grads.items() if k != "h0"}
    opt = optim.make_optimizer("adam", 2e-3)
    opt.update(p, grads)
    r = {
        "forward time loop (25 products + tanh)": per_call_us(
            lambda: ops.recurrence_forward(p["W_hx"], p["W_hh"], p["b_h"], h0, xt)),
        "output logits + softmax cross-entropy": per_call_us(
            lambda: ops.softmax_cross_entropy(ops.output_logits(flat_hs, p["W_yh"], p["b_y"]), yt.reshape(-1))),
        "output layer backward (2 products)": per_call_us(lambda: ops.output_backward(dl, flat_hs, p["W_yh"])),
        "recurrence backward (loop, dW_hh, scatter)": per_call_us(
            lambda: ops.recurrence_backward(p["W_hh"], hs, h0, xt, dhs, V)),
    }
    total = per_call_us(lambda: model.loss_and_grads(p, x, y, h0))
    r["autograd and glue (tuple of 6 arrays, 2 primitives)"] = total - sum(r.values())
    r["= loss_and_grads"] = total
    r["global_norm (5 arrays)"] = per_call_us(lambda: optim.global_norm(grads))
    r["clip_by_global_norm scaling (5 arrays)"] = per_call_us(lambda: optim.clip_by_global_norm(grads, 1e-3))
    r["Adam.compute (5 arrays x ~8 numpy ops)"] = per_call_us(lambda: opt.compute(p, grads, opt.state))
    r["isfinite checks (5 arrays)"] = per_call_us(lambda: all(np.isfinite(q).all() for q in p.values()))
    return r


def native_pieces(H, B, T=25, V=65) -> dict:
    """The native path's pieces (tinyrnn.engines.native), as Trainer.step calls them."""
    import tinyrnn
    from autograd import value_and_grad
    from tinyrnn.engines import native as nk

    layout = nk.FlatLayout(H, V)
    flat = layout.flatten(tinyrnn.init_params(tinyrnn.ModelConfig(V, H), 0, np.float32))
    x, y = synthetic_windows(V, B, T)[0]
    h0 = np.zeros((B, H), np.float32)
    w = nk.Window(layout, x, y, h0)
    vjp = nk._window_loss_vjp(None, flat, w)
    grad = nk.loss_and_flat_grad(flat, layout, x, y, h0).grad
    m, v = np.zeros_like(flat), np.zeros_like(flat)
    r = {
        "window set-up (ids to int32, checks, one arena)": per_call_us(lambda: nk.Window(layout, x, y, h0)),
        "forward: whole window, 1 native call": per_call_us(lambda: nk.window_loss(flat, w)),
        "backward: whole window, 1 native call": per_call_us(lambda: vjp(1.0)),
    }
    total = per_call_us(lambda: nk.loss_and_flat_grad(flat, layout, x, y, h0))
    vg = per_call_us(lambda: value_and_grad(nk.window_loss)(flat, w))
    r["autograd (1 array, 1 primitive)"] = vg - r["forward: whole window, 1 native call"] - \
        r["backward: whole window, 1 native call"]
    r["= loss_and_flat_grad"] = total
    r["global norm: 1 native call"] = per_call_us(lambda: nk.sum_squares(grad))
    r["clip + Adam: 1 native call"] = per_call_us(
        lambda: nk.flat_adam(flat, grad, m, v, 3, 2e-3, 0.9, 0.999, 1e-8, 0.5))
    r["views of the new flat buffers (params, m, v)"] = per_call_us(
        lambda: (layout.views(flat), layout.views(m, "m/"), layout.views(v, "v/")))
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["128x1", "128x32"], metavar="HxB")
    ap.add_argument("--cpu", type=int, default=0, help="the core to pin to (-1: not pinned)")
    ap.add_argument("--pyinstrument", action="store_true", help="also print a pyinstrument profile of Trainer.step")
    args = ap.parse_args(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    _steady_state_malloc()
    from tinyrnn.engines import native

    have_native = native.available()
    print(f"load average {os.getloadavg()}; CPU µs per call; native kernels: "
          f"{native.library().tinyrnn_variant().decode() if have_native else 'not installed'}")
    for cell in args.sizes:
        H, B = (int(n) for n in cell.lower().split("x"))
        paths = {"numpy": numpy_pieces(H, B)}
        if have_native:
            paths["native"] = native_pieces(H, B)
        for name, pieces in paths.items():
            print(f"\nH={H} B={B}, {name} path")
            for piece, us in pieces.items():
                print(f"  {piece:52s} {us:8.1f}")
            native.use_native_kernels(name == "native")
            step, _ = make_step("tinyrnn-trainer", H, B)
            us = per_call_us(step, 1.0)
            print(f"  {'Trainer.step, whole':52s} {us:8.1f}   ({B * 25 / us * 1e6:,.0f} chars/s)")
            if args.pyinstrument:
                from pyinstrument import Profiler

                with Profiler(interval=0.0002) as prof:
                    for _ in range(int(2e6 / us)):
                        step()
                print(prof.output_text(unicode=True, show_all=False))
            native.use_native_kernels(False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
