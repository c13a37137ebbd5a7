"""The sharded engine: the kernel engine on a kernel set whose windows are split across the pool's Web Workers
(``workers.ShardedWindow``: each worker a contiguous slice of the B streams, gradients summed, then one Adam
update here). If a helper fails, the same window is computed again on this worker alone and the pool stops:
no step is lost, and the next engine ``pick`` makes says why (``workers.POOL.reason``)."""

from __future__ import annotations

import numpy as np

from .workers import ShardedWindow, ShardError
from .kernel import supports


class ShardedKernels:
    """``kernels`` (a kernel set, flat.py's protocol) with ``window`` split across ``pool``'s workers."""

    def __init__(self, kernels, pool):
        self.kernels, self.pool = kernels, pool
        self.sum_squares, self.adam = kernels.sum_squares, kernels.adam

    def supports(self, cell: str) -> bool:
        return supports(self.kernels, cell)

    def window(self, layout, inputs, targets, h0, scale):
        if self.pool.host is None or np.shape(inputs)[0] < 2:  # the pool stopped, or one stream: this worker
            return self.kernels.window(layout, inputs, targets, h0, scale)
        return FallbackWindow(self, layout, inputs, targets, h0, scale)


class FallbackWindow:
    """A window on every worker (``workers.ShardedWindow``) that, if a helper fails during ``forward``, stops the
    pool and computes the same window on this worker alone."""

    def __init__(self, sharded: ShardedKernels, layout, inputs, targets, h0, scale):
        self.sharded, self.args = sharded, (layout, inputs, targets, h0, scale)
        self.window = ShardedWindow(sharded.pool, sharded.kernels, layout, inputs, targets, h0)

    def forward(self, flat) -> float:
        try:
            return self.window.forward(flat)
        except ShardError as exc:  # never lose the step: the same window on this worker alone
            self.sharded.pool.fail(exc.__cause__ or exc)
            self.window = self.sharded.kernels.window(*self.args)
            return self.window.forward(flat)

    def backward(self, flat) -> np.ndarray:
        return self.window.backward(flat)

    @property
    def h_last(self) -> np.ndarray:
        return self.window.h_last

    @property
    def dh0(self):
        return self.window.dh0
