  // tinyrnn build: Panel patches urllib with pyodide-http, whose streaming module starts a Web Worker of its own
  // when it is imported in a cross-origin isolated page (for streamed responses, which the app never asks for).
  // Firefox can deadlock a worker that starts a worker (issue 19: the Python worker's thread blocked for good in
  // the Worker constructor, about one offline reload in 55 under load). So it is imported here while
  // crossOriginIsolated reads false in this worker (it then keeps no streaming worker and reads responses whole),
  // and the flag is put back at once: the training helpers need it.
  {
    const own = Object.getOwnPropertyDescriptor(self, 'crossOriginIsolated')
    Object.defineProperty(self, 'crossOriginIsolated', {value: false, configurable: true})
    try {
      self.pyodide.runPython('import pyodide_http._streaming')
    } finally {
      if (own) Object.defineProperty(self, 'crossOriginIsolated', own)
      else delete self.crossOriginIsolated
    }
  }
