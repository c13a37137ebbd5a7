  // tinyrnn build: Panel 1.9.4 expects pyodide.ffi.jsnull (Pyodide >= 0.28). On Pyodide 0.27 JS null already
  // converts to None, so a never-matching sentinel keeps Panel's JS->Python sync working.
  await self.pyodide.runPythonAsync(`
import sys
if sys.platform == "emscripten":
    import pyodide.ffi
    if not hasattr(pyodide.ffi, "jsnull"):
        class _JsNullSentinel:
            __slots__ = ()
            def __repr__(self):
                return "jsnull (tinyrnn shim: never matches on Pyodide 0.27)"
        pyodide.ffi.jsnull = _JsNullSentinel()
`);
