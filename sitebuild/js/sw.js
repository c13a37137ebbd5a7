// tinyrnn's service worker (sitebuild/js/sw.js; the build writes in the version and the file list).
// After the first visit every file of the site is in Cache Storage, each checked against the sha256 the build
// listed, and it is served from there first: return visits start without the network, and work offline.
// A rebuild lists other files or hashes, so this script changes and the browser installs the new version, which
// caches the new files and deletes the old cache once it takes over.
//
// Cross-origin isolation: GitHub Pages cannot send headers, so this worker adds COOP and COEP to the documents and
// worker scripts it serves (docs/deploy.md, "Cross-origin isolation"). A page it serves, and the workers that page
// starts, are then cross-origin isolated (SharedArrayBuffer, Atomics.wait between workers). The first visit is
// served before this worker controls the page, so it is not; every later load is.
const VERSION = "__TINYRNN_VERSION__";
const FILES = [/* __TINYRNN_FILES__ */];  // [[path relative to this script, sha256 hex], ...]
const CACHE = `tinyrnn-site-${VERSION}`;
const SCOPE = new URL("./", self.location.href).href;
const ISOLATION = [["Cross-Origin-Opener-Policy", "same-origin"], ["Cross-Origin-Embedder-Policy", "require-corp"]];
const NULL_BODY = new Set([101, 103, 204, 205, 304]);  // statuses a Response may not have a body with

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function precache() {
  const cache = await caches.open(CACHE);
  await Promise.all(FILES.map(async ([path, hash]) => {
    const url = new URL(path, SCOPE).href;
    if (await cache.match(url)) return;  // an install that was interrupted and is resumed
    const response = await fetch(url, {cache: "no-cache"});  // revalidated: never a stale copy of the HTTP cache
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    if ((await sha256Hex(await response.clone().arrayBuffer())) !== hash) {
      throw new Error(`${path}: not the file this build listed (the site changed while it was being cached)`);
    }
    await cache.put(url, response);
  }));
}

// The response with COOP and COEP if it is a document's or a worker script's (what makes a context isolated), else
// as it is: for other responses the headers mean nothing, and a rebuilt response loses what Chromium keeps beside
// a cached one (the compiled code of pyodide.asm.wasm). Status, status text, the other headers and the body stay.
function isolated(request, response) {
  const makesContext = request.mode === "navigate" || request.destination === "worker"
    || request.destination === "sharedworker";
  if (!makesContext || response.type === "opaque" || response.type === "opaqueredirect" || response.status === 0) {
    return response;
  }
  if (ISOLATION.every(([name, value]) => response.headers.get(name) === value)) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of ISOLATION) headers.set(name, value);
  return new Response(NULL_BODY.has(response.status) ? null : response.body,
                      {status: response.status, statusText: response.statusText, headers});
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("tinyrnn-site-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || !request.url.startsWith(SCOPE)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request, {ignoreSearch: true, ignoreVary: true});
    return isolated(request, cached || await fetch(request));
  })());
});
