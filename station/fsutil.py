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
