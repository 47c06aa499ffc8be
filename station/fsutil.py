"""File-system helpers shared by the writers."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_libc = None


def _renameat2():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        except (OSError, AttributeError):
            _libc = False
    return _libc.renameat2 if _libc else None


def rename_noreplace(src, dst) -> bool:
    """Atomically rename src to dst unless dst exists.

    Returns True when renamed; raises FileExistsError when dst exists; returns
    False when the kernel or file system cannot do it (the caller falls back to
    link+unlink).  A rename shows up to a folder watcher as one "moved in"
    event of a complete file, which link() does not.
    """
    fn = _renameat2()
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(err, os.strerror(err), str(dst))
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def fault_clock(path: str) -> None:
    """Tests only (STATION_FAULT_CLOCK_FILE): time.time() in this process returns the real time
    plus the number of seconds written in `path` (re-read every 0.2 s), so a test can make the
    daemon's wall clock jump forwards or backwards as an NTP step would."""
    import time

    real = time.time
    state = {"at": 0.0, "off": 0.0}

    def shifted() -> float:
        now = real()
        if now - state["at"] > 0.2:
            state["at"] = now
            try:
                with open(path) as f:
                    state["off"] = float(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return now + state["off"]

    time.time = shifted
