// The harness's Pyodide worker: the site's own Pyodide, numpy, autograd and tinyrnn wheel (listed by the test
// server at /wheels.json), then the test's Python script; its last expression (JSON text) goes back to the page.
importScripts("/pyodide/pyodide.js");
onmessage = async (event) => {
  self.tinyrnnPageStartsHelpers = event.data.pageStartsHelpers;  // see index.html
  try {
    const pyodide = await loadPyodide({indexURL: "/pyodide/"});
    const wheels = await (await fetch("/wheels.json")).json();
    await pyodide.loadPackage(["numpy", ...wheels], {messageCallback: () => {}});
    const code = await (await fetch(`/scripts/${event.data.script}`)).text();
    const answer = await pyodide.runPythonAsync(code);
    postMessage({ok: JSON.parse(answer), isolated: self.crossOriginIsolated});
  } catch (err) {
    postMessage({error: String(err && err.stack || err)});
  }
};
