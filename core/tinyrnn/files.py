"""Safe file I/O: atomic writes and bounded reads, for checkpoints and texts.

A write goes to a temporary file next to the target (a unique name, so concurrent writers never share one), is
flushed and fsynced, then renamed over the target: on any failure (full disk, file-size limit, Ctrl-C, crash) the
previous file is untouched and the temporary file is removed (after SIGKILL or a power cut a ``.NAME.*.tmp`` file
may remain; the target is still intact). A read takes at most ``limit + 1`` bytes from any source — a path, ``-``
(standard input), a device, a pipe, a named pipe (FIFO) or a binary file object — and refuses more.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import stat
import sys
import tempfile
import time

from .errors import SaveError

READ_CHUNK = 1 << 20
FIFO_WAIT_SECONDS = 10.0  # a named pipe that gets no data (no writer) within this time is refused


def describe_path(path) -> str:
    return repr(os.fspath(path))


# --- writing --------------------------------------------------------------------------------------------------

def _read_only(target: str) -> bool:
    """True if ``target`` is a file its owner may not write (e.g. mode 0444): even root does not replace it
    unasked."""
    return not os.access(target, os.W_OK) or not stat.S_IMODE(os.stat(target).st_mode) & 0o222


def _refuse_unreplaceable(target: str, shown: str, replace_read_only: bool) -> None:
    """``SaveError`` if the existing file ``target`` is read-only (unless ``replace_read_only``), immutable or
    append-only (``chattr +i`` / ``+a``: renaming over it would fail after the work is done)."""
    try:  # opening for writing (no truncation) is refused for an immutable or append-only file, even to root
        os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
    except PermissionError as e:
        if e.errno == errno.EPERM:
            raise SaveError(f"{shown} is immutable or append-only (chattr +i or +a), so it cannot be replaced; "
                            f"give another output file") from None
    except OSError:
        pass  # not a refusal to replace it (the directory probe is the test of writability)
    if _read_only(target) and not replace_read_only:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        raise SaveError(f"{shown} is read-only (mode {mode:04o}); it is replaced only when forced (--force on the "
                        f"command line, force=True in save_checkpoint), or give another output file")


def check_writable(path, protect=(), *, replace_read_only=False, needed_bytes=0) -> str:
    """The real path that ``write_atomically(path, ...)`` will replace, after checking up front that it can:
    raises ``SaveError`` if ``path`` is empty, a directory, a device or pipe, one of the files in ``protect``
    (e.g. the training text), an immutable file, a read-only file (unless ``replace_read_only``), in a directory
    that is missing or not writable, or on a disk with less than ``needed_bytes`` free."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the output path must be a str or os.PathLike, got {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name:
        raise SaveError("the output path is empty; give a file name such as model.npz")
    shown = describe_path(name)
    if name.endswith(os.sep) or os.path.isdir(name):
        raise SaveError(f"{shown} is a directory; give a file name inside it, such as {os.path.join(name, 'model.npz')!r}")
    target = os.path.realpath(name)
    if os.path.exists(target):
        if not stat.S_ISREG(os.stat(target).st_mode):
            raise SaveError(f"{shown} is not a regular file (a device, pipe or socket); give a file path")
        for other in protect:
            if other is not None and os.path.exists(other) and os.path.samefile(target, other):
                raise SaveError(f"{shown} is the training text; writing the model there would destroy it — "
                                f"give another output file")
        _refuse_unreplaceable(target, shown, replace_read_only)
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        raise SaveError(f"cannot write {shown}: the directory {os.path.dirname(name) or '.'!r} does not exist")
    try:  # the only sure test of writability (permissions, read-only file systems, quotas on file creation)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise SaveError(f"cannot write {shown}: {e.strerror or e}") from None
    try:
        free = shutil.disk_usage(directory).free
    except (OSError, AttributeError):  # a file system that cannot tell (e.g. some in-browser ones): the write will
        free = needed_bytes
    if free < needed_bytes:
        raise SaveError(f"cannot write {shown}: its disk has {free:,} bytes free and the file needs up to "
                        f"{needed_bytes:,}; free some space or give another output file")
    return target


def _new_file_mode(target: str) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)  # replacing a file keeps its permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path, data, protect=(), *, replace_read_only=False) -> None:
    """Write the bytes ``data`` to a temporary file next to ``path``, fsync it and rename it over ``path``.
    On any exception (or Ctrl-C) the temporary file is removed and ``path`` is unchanged. ``SaveError`` for a
    path that cannot be written (see ``check_writable``; a read-only file is replaced only with
    ``replace_read_only``) or a failed write (e.g. the disk is full).

    The caller serialises into memory first (not into the file), so that a half-built archive can never be
    finalised into the file later by the garbage collector."""
    target = check_writable(path, protect, replace_read_only=replace_read_only, needed_bytes=memoryview(data).nbytes)
    shown = describe_path(path)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), _new_file_mode(target))
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise SaveError(f"cannot write {shown}: {e.strerror or e}; the previous file (if any) is unchanged") from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- reading --------------------------------------------------------------------------------------------------

def _wait_for_fifo(fd: int, shown: str, error) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    if not poller.poll(int(FIFO_WAIT_SECONDS * 1000)):
        raise error(f"{shown} is a named pipe (FIFO) and nothing was written to it within {FIFO_WAIT_SECONDS:g} s; "
                    f"start the writer first, or give a regular file")


@contextlib.contextmanager
def open_source(source, error, label="the file"):
    """(binary file, label) for a path, ``-`` (standard input) or a binary file object. A named pipe is opened
    without blocking and refused if no data arrives within ``FIFO_WAIT_SECONDS``; ``error`` (an exception class)
    for a missing or unreadable path or a directory."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fsdecode(os.fspath(source))
        if name == "-":
            yield sys.stdin.buffer, "standard input"
            return
        shown = describe_path(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even on a FIFO with no writer
        except OSError as e:
            raise error(f"cannot read {shown}: {e.strerror or e}") from None
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise error(f"cannot read {shown}: it is a directory; give a file")
            if stat.S_ISFIFO(mode):
                _wait_for_fifo(fd, shown, error)
            os.set_blocking(fd, True)
            file = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        with file:
            yield file, shown
        return
    if not callable(getattr(source, "read", None)):
        raise TypeError(f"expected a path, '-' (standard input), bytes or a binary file object, got "
                        f"{type(source).__name__}")
    yield source, label


def read_bounded(file, limit: int, label: str, error, prefix: bytes = b"", prefix_message: str = "") -> bytes:
    """At most ``limit`` bytes from ``file``, read in chunks; ``error`` if there are more or reading fails, and
    ``error(prefix_message)`` as soon as non-empty data does not start with ``prefix`` (so that e.g. /dev/zero is
    refused after one chunk, not after ``limit`` bytes)."""
    data = bytearray()
    checked = not prefix
    try:
        while len(data) <= limit:
            chunk = file.read(min(READ_CHUNK, limit + 1 - len(data)))
            if chunk is None:  # a non-blocking stream with nothing to read yet
                time.sleep(0.01)
                continue
            if not isinstance(chunk, (bytes, bytearray)):
                raise TypeError(f"{label} must be opened in binary mode ('rb'), got {type(chunk).__name__} from read()")
            data += chunk
            if not checked and (len(data) >= len(prefix) or not chunk):
                checked = True
                if data and not data.startswith(prefix):
                    raise error(prefix_message)
            if not chunk:
                break
    except OSError as e:
        raise error(f"cannot read {label}: {e.strerror or e}") from None
    if len(data) > limit:
        raise error(f"{label} is too large: more than {limit:,} bytes (the limit is {limit:,} bytes)")
    return data


def _regular_file_size(file) -> int | None:
    try:
        info = os.fstat(file.fileno())
    except (AttributeError, OSError, ValueError):  # not backed by a file descriptor (e.g. BytesIO)
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def read_source(source, limit: int, error, label="the file", prefix: bytes = b"", prefix_message: str = ""):
    """(at most ``limit`` bytes, label) from bytes, a path, ``-`` or a binary file object (see ``open_source``
    and, for ``prefix``, ``read_bounded``)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > limit:
            raise error(f"{label} is {len(data):,} bytes; the limit is {limit:,} bytes")
        return data, label
    with open_source(source, error, label) as (file, shown):
        size = _regular_file_size(file)
        if size is not None and size > limit:  # a regular file: refuse by its size at once
            raise error(f"{shown} is {size:,} bytes; the limit is {limit:,} bytes")
        return read_bounded(file, limit, shown, error, prefix, prefix_message), shown
