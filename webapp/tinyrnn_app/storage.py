"""Keeping the work in the browser: a small key-value store of records ({name: str or bytes or None}).

``IndexedDBStore`` is the browser's IndexedDB, reached from Python in the Pyodide worker through ``js`` and
``pyodide.ffi`` (the worker's global scope has ``indexedDB``); ``MemoryStore`` keeps records in a dict (CPython
tests, and what the interface promises). Every failure -- a full quota, a browser that refuses storage (some
private windows), no IndexedDB at all -- is a ``StorageError`` with a message for the page. No Bokeh, no Panel.
This is the app's one module that reaches the browser runtime; ``page_query`` reads the page's address here too.
"""

from __future__ import annotations

import asyncio
import sys
import time


class StorageError(Exception):
    """The browser did not keep (or give back) the work; the message says why."""


class MemoryStore:
    """Records in a dict. ``fail_with``: a message every call raises as ``StorageError`` (to test full quotas)."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.fail_with: str | None = None

    def _check(self):
        if self.fail_with:
            raise StorageError(self.fail_with)

    async def put(self, key: str, record: dict) -> None:
        self._check()
        self.records[key] = {k: (bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else v)
                             for k, v in record.items()}

    async def get(self, key: str) -> dict | None:
        self._check()
        record = self.records.get(key)
        return None if record is None else dict(record)

    async def delete(self, key: str) -> None:
        self._check()
        self.records.pop(key, None)

    @staticmethod
    def clock(epoch_seconds: float) -> str:
        return time.strftime("%H:%M", time.localtime(epoch_seconds))


def _settle(target, ok_event: str, value):
    """A future for an IndexedDB request or transaction: its ``ok_event`` resolves it with ``value()``, "error" or
    "abort" fails it with the target's error."""
    from pyodide.ffi import create_proxy

    future = asyncio.get_event_loop().create_future()

    def ok(event):
        if not future.done():
            future.set_result(value())

    def failed(event):
        if not future.done():
            error = target.error
            name = getattr(error, "name", "Error") if error is not None else "Error"
            message = getattr(error, "message", "") if error is not None else ""
            future.set_exception(StorageError(f"{name}: {message}".rstrip(": ")))

    proxies = [create_proxy(ok), create_proxy(failed)]
    setattr(target, "on" + ok_event, proxies[0])
    target.onerror = proxies[1]
    if ok_event == "complete":
        target.onabort = proxies[1]
    future.add_done_callback(lambda _: [p.destroy() for p in proxies])
    return future


class IndexedDBStore:
    """Records in the browser's IndexedDB (database ``tinyrnn``, object store ``work``): str stays str, bytes
    become a Uint8Array and come back as bytes."""

    DATABASE, OBJECTS = "tinyrnn", "work"

    async def _open(self):
        import js
        from pyodide.ffi import create_proxy

        factory = getattr(js, "indexedDB", None)
        if factory is None:
            raise StorageError("this browser offers no IndexedDB here")
        request = factory.open(self.DATABASE, 1)
        upgrade = create_proxy(lambda event: request.result.createObjectStore(self.OBJECTS))
        request.onupgradeneeded = upgrade
        try:
            return await _settle(request, "success", lambda: request.result)
        finally:
            upgrade.destroy()

    async def _run(self, mode: str, action):
        """``action(object_store)`` in one transaction; the transaction's completion (or its error) is awaited."""
        try:
            db = await self._open()
            try:
                transaction = db.transaction(self.OBJECTS, mode)
                result = action(transaction.objectStore(self.OBJECTS))
                await _settle(transaction, "complete", lambda: None)
                return result
            finally:
                db.close()
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001 - JsException and friends: the browser said no
            raise StorageError(f"{type(e).__name__}: {e}") from None

    async def put(self, key: str, record: dict) -> None:
        import js
        from pyodide.ffi import to_js

        value = to_js({k: v for k, v in record.items()}, dict_converter=js.Object.fromEntries)
        await self._run("readwrite", lambda objects: objects.put(value, key))

    async def get(self, key: str) -> dict | None:
        request = await self._run("readonly", lambda objects: objects.get(key))
        value = request.result
        if value is None:
            return None
        out = {}
        for name in ("meta", "model", "best"):
            item = getattr(value, name, None)
            out[name] = item if item is None or isinstance(item, str) else bytes(item.to_bytes())
        return out

    async def delete(self, key: str) -> None:
        await self._run("readwrite", lambda objects: objects.delete(key))

    @staticmethod
    def clock(epoch_seconds: float) -> str:
        """HH:MM in the browser's time zone (the worker's Python has no time zone)."""
        import js

        date = js.Date.new(epoch_seconds * 1000)
        return f"{int(date.getHours()):02d}:{int(date.getMinutes()):02d}"


def browser_store():
    """The IndexedDB store inside the Pyodide worker, else None (``panel serve``: the server has no browser store)."""
    return IndexedDBStore() if sys.platform == "emscripten" else None


def run_soon(coroutine):
    """Run ``coroutine`` on the running (or, in Pyodide, the browser's) event loop, or to its end right now if
    there is none (CPython tests and scripts)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if sys.platform != "emscripten":
            asyncio.run(coroutine)
            return
    asyncio.ensure_future(coroutine)


def page_query() -> dict[str, str]:
    """The page's query parameters (``?workers=2`` -> {"workers": "2"}): the page hands its query to the Python
    worker's address. Empty outside the browser."""
    if sys.platform != "emscripten":
        return {}
    from urllib.parse import parse_qsl

    from js import location  # the worker's address: app.js + the page's query

    return dict(parse_qsl(str(location.search).lstrip("?")))
