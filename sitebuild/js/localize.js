// tinyrnn build: Panel/Bokeh resources come from this site, not from their CDNs.
// Panel computes stylesheet URLs (CDN paths) in Python at run time and ships them to the page in the document JSON
// and patches; the worker rewrites them to the site's own copy before posting.
const TINYRNN_CDN_MAP = [
  [TINYRNN_PANEL_CDN, new URL(TINYRNN_PANEL_LOCAL, self.location.href).href],
  [TINYRNN_BOKEH_CDN, new URL(TINYRNN_BOKEH_LOCAL, self.location.href).href],
];
function tinyrnnLocalize(value) {
  // Strings anywhere in the document JSON (a string) or in a patch (nested JS objects and arrays).
  if (typeof value === "string") {
    for (const [cdn, local] of TINYRNN_CDN_MAP) value = value.split(cdn).join(local);
    return value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = tinyrnnLocalize(value[i]);
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, tinyrnnLocalize(v));
  } else if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const k of Object.keys(value)) value[k] = tinyrnnLocalize(value[k]);
  }
  return value;
}
const tinyrnnPostMessage = self.postMessage.bind(self);
self.postMessage = (msg, ...rest) => {
  if (msg && typeof msg === "object") {
    for (const key of ["docs_json", "patch"]) {
      if (key in msg) msg[key] = tinyrnnLocalize(msg[key]);
    }
  }
  return tinyrnnPostMessage(msg, ...rest);
};

