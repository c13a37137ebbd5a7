// Run a Python script inside real Pyodide (Node.js) with the site's own wheels: used by test_pyodide_kernels.py.
//
//   node pyodide_node.mjs INDEX_DIR SCRIPT.py WHEEL.whl [WHEEL.whl ...]
//
// INDEX_DIR holds pyodide.mjs, pyodide-lock.json and the numpy wheel (the self-contained site's pyodide/).
// The wheels are unpacked into site-packages. The script's stdout/stderr pass through; an exception in the
// script exits with status 1.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [indexDir, script, ...wheels] = process.argv.slice(2);
const index = resolve(indexDir) + "/";
const { loadPyodide } = await import(pathToFileURL(index + "pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL: index });
await pyodide.loadPackage(["numpy"], { messageCallback: () => {} });
const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
pyodide.FS.mkdirTree("/tmp/wheels");
for (const wheel of wheels) {
  const name = wheel.split("/").pop();
  pyodide.FS.writeFile(`/tmp/wheels/${name}`, readFileSync(wheel));
  pyodide.runPython(`import zipfile; zipfile.ZipFile("/tmp/wheels/${name}").extractall("${sitePackages}")`);
}
try {
  pyodide.runPython(readFileSync(script, "utf8"));
} catch (err) {
  process.stderr.write(String(err) + "\n");
  process.exit(1);
}
process.exit(0);
