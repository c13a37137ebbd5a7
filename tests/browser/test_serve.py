"""sitebuild/serve.py, no browser: MIME types and the caching headers a warm page start depends on (docs/deploy.md,
"Start-up time"): every file carries a validator, an unchanged file revalidates to 304 without a body, a changed
one is sent again."""
from __future__ import annotations

import http.client
import os
import threading
from pathlib import Path

import pytest

from sitebuild import serve


@pytest.fixture
def site(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "pyodide").mkdir()
    (tmp_path / "pyodide" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(1000))
    (tmp_path / "app.js").write_text("console.log(1)")
    return tmp_path


def start(site: Path, **kw):
    server = serve.make_server(site, "127.0.0.1", 0, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(server, path: str, headers=None):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


@pytest.fixture
def server(site):
    server = start(site)
    yield server
    server.shutdown()
    server.server_close()


def test_wasm_is_served_as_application_wasm_with_validators(server):
    status, headers, body = get(server, "/pyodide/pyodide.asm.wasm")
    assert status == 200 and body.startswith(b"\0asm")
    assert headers["content-type"] == "application/wasm"  # else no streaming compilation, no code cache
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"].startswith('"') and headers["last-modified"]
    status, headers, _ = get(server, "/app.js")
    assert status == 200 and headers["content-type"] == "text/javascript" and headers["etag"]


@pytest.mark.parametrize("path", ["/pyodide/pyodide.asm.wasm", "/", "/index.html"])
def test_an_unchanged_file_revalidates_to_304_without_a_body(server, path):
    status, headers, _ = get(server, path)
    assert status == 200
    etag = headers["etag"]
    status, headers304, body = get(server, path, {"If-None-Match": etag})
    assert status == 304 and body == b""
    assert headers304["etag"] == etag and headers304["cache-control"] == "no-cache"
    # a list of validators (as caches send), and the weak form of ours, match too
    assert get(server, path, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    # an unknown validator gets the file, even when If-Modified-Since alone would have said 304
    status, _, body = get(server, path, {"If-None-Match": '"other"', "If-Modified-Since": headers["last-modified"]})
    assert status == 200 and body


def test_a_rebuilt_file_is_sent_again(server, site):
    _, headers, _ = get(server, "/app.js")
    f = site / "app.js"
    f.write_text("console.log(2)")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size; a different modification time
    status, new_headers, body = get(server, "/app.js", {"If-None-Match": headers["etag"]})
    assert status == 200 and body == b"console.log(2)"
    assert new_headers["etag"] != headers["etag"]


def test_max_age_mimics_github_pages(site):
    server = start(site, max_age=600)
    try:
        status, headers, _ = get(server, "/pyodide/pyodide.asm.wasm")
        assert status == 200 and headers["cache-control"] == "max-age=600" and headers["etag"]
    finally:
        server.shutdown()
        server.server_close()


def test_missing_files_are_404(server):
    assert get(server, "/nope.js")[0] == 404


def test_text_and_wasm_go_gzipped_to_a_browser_that_accepts_it(server, site):
    import gzip

    (site / "pyodide" / "pkg.whl").write_bytes(b"PK\x03\x04" + bytes(500))
    for path, body in [("/app.js", b"console.log(1)"), ("/pyodide/pyodide.asm.wasm", (site / "pyodide" /
                       "pyodide.asm.wasm").read_bytes()), ("/", (site / "index.html").read_bytes())]:
        status, headers, raw = get(server, path, {"Accept-Encoding": "gzip, deflate, br"})
        assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(raw) == body, path
        assert headers["vary"] == "Accept-Encoding" and int(headers["content-length"]) == len(raw)
        plain_status, plain_headers, plain = get(server, path)  # a client that does not ask for gzip
        assert plain_status == 200 and plain == body and "content-encoding" not in plain_headers
        assert plain_headers["etag"] != headers["etag"], "two representations need two validators"
        assert get(server, path, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})[0] == 304
    # already compressed: as it is
    status, headers, raw = get(server, "/pyodide/pkg.whl", {"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in headers and raw.startswith(b"PK")


def test_no_gzip_sends_everything_as_it_is(site):
    server = start(site, compress=False)
    try:
        status, headers, body = get(server, "/app.js", {"Accept-Encoding": "gzip"})
        assert status == 200 and body == b"console.log(1)" and "content-encoding" not in headers
    finally:
        server.shutdown()
        server.server_close()


ISOLATION_HEADERS = ("cross-origin-opener-policy", "cross-origin-embedder-policy", "cross-origin-resource-policy")


def test_no_isolation_headers_as_on_github_pages(server, site):
    """GitHub Pages cannot send COOP/COEP: neither does the local server, so the browser tests exercise the service
    worker that adds them (sitebuild/js/sw.js; tests/browser/test_isolation.py)."""
    answers = [get(server, path, headers) for path in ("/", "/index.html", "/app.js", "/pyodide/pyodide.asm.wasm",
                                                       "/nope.js") for headers in ({}, {"Accept-Encoding": "gzip"})]
    _, headers, _ = get(server, "/app.js")
    answers.append(get(server, "/app.js", {"If-None-Match": headers["etag"]}))
    assert sorted({status for status, _, _ in answers}) == [200, 304, 404]
    for status, headers, _ in answers:
        assert not [h for h in ISOLATION_HEADERS if h in headers], (status, headers)
