// tinyrnn build: ResizeObserver callbacks run at the next animation frame, not inside the browser's observation
// loop. BokehJS lays the page out again from its observers' callbacks, which resizes elements that loop has already
// passed; WebKit then reports "ResizeObserver loop completed with undelivered notifications." as an uncaught error,
// twice a load (Bokeh's own issue: bokeh/bokeh#14287, "Need to debounce ResizeObserver's events"). Deferred by a
// frame, the new sizes are observed in the next frame's loop instead. A callback gets each target's latest entry.
(() => {
  const Native = window.ResizeObserver
  if (!Native) return
  window.ResizeObserver = class extends Native {
    constructor(callback) {
      const pending = new Map()  // target -> its latest entry, until the next frame
      super((entries, observer) => {
        if (pending.size === 0) {
          requestAnimationFrame(() => {
            const batch = [...pending.values()]
            pending.clear()
            if (batch.length) callback(batch, observer)
          })
        }
        for (const entry of entries) pending.set(entry.target, entry)
      })
      this.tinyrnnPending = pending
    }
    unobserve(target) {
      this.tinyrnnPending.delete(target)
      super.unobserve(target)
    }
    disconnect() {
      this.tinyrnnPending.clear()
      super.disconnect()
    }
  }
})()
