"""The journal: one SQLite row per frame, in the state folder.

States: `seen` → `preview_written` → `master_written`, or `failed` (with a
reason) from any of them.  Rows are keyed by the frame's path relative to
the incoming folder.  Timings are wall-clock seconds since the epoch;
`complete` is when the daemon knew the file was complete (close/move event,
or size+mtime stable), and the two latencies are preview-complete and
master-complete.

WAL mode, one connection guarded by a lock (all writers go through it), so
a `kill -9` at any moment leaves the journal consistent: at worst the last
transition is lost, and because outputs are atomic and the daemon skips
outputs that already exist, redoing that transition is safe.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

STATES = ("seen", "preview_written", "master_written", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,      -- relative to the incoming folder
    roll TEXT,
    size INTEGER, mtime REAL,
    sha256 TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    stage TEXT,                     -- the stage that failed (preview|master)
    attempts INTEGER NOT NULL DEFAULT 0,
    t_seen REAL, t_complete REAL, t_preview REAL, t_master REAL,
    lat_preview REAL, lat_master REAL,
    preview TEXT, tiff TEXT, jpeg TEXT,  -- output paths
    updated REAL,
    rerender TEXT,                  -- why a re-render was asked; NULL once the master is rewritten
    checks TEXT,                    -- the frame checks' findings, JSON list (NULL: not checked)
    print TEXT,                     -- the frame's own print settings, JSON (NULL: its roll's / the station's)
    rendering TEXT                  -- the rendering of the master: a roll rendering's id, or "frame"
);
CREATE INDEX IF NOT EXISTS frames_state ON frames(state);
"""

FIELDS = ("id", "path", "roll", "size", "mtime", "sha256", "state", "reason", "stage", "attempts",
          "t_seen", "t_complete", "t_preview", "t_master", "lat_preview", "lat_master",
          "preview", "tiff", "jpeg", "updated", "rerender", "checks", "print", "rendering")
# columns added after the first release: (name, SQL type) added to an older journal on open
ADDED = (("rerender", "TEXT"), ("checks", "TEXT"), ("print", "TEXT"), ("rendering", "TEXT"))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(frames)")}
            for col, typ in ADDED:
                if col not in have:
                    self._db.execute(f"ALTER TABLE frames ADD COLUMN {col} {typ}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reads ---------------------------------------------------------------
    def get(self, path: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM frames WHERE path=?", (path,)).fetchone()
        return dict(row) if row else None

    def frames(self, state: str | None = None, limit: int | None = None, newest_first: bool = False) -> list[dict]:
        q = "SELECT * FROM frames"
        args: list = []
        if state:
            q += " WHERE state=?"
            args.append(state)
        q += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit:
            q += " LIMIT ?"
            args.append(limit)
        with self._lock:
            return [dict(r) for r in self._db.execute(q, args).fetchall()]

    def counts(self) -> dict:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM frames GROUP BY state").fetchall()
        out = {s: 0 for s in STATES}
        out.update({r[0]: r[1] for r in rows})
        out["total"] = sum(out[s] for s in STATES)
        return out

    def latencies(self, last: int = 500) -> dict:
        """p50/p90/p99 (seconds) of complete→preview and complete→master over the last frames."""
        with self._lock:
            rows = self._db.execute(
                "SELECT lat_preview, lat_master FROM frames WHERE lat_preview IS NOT NULL OR lat_master IS NOT NULL"
                " ORDER BY id DESC LIMIT ?", (last,)).fetchall()
        out = {}
        for i, name in enumerate(("preview", "master")):
            vals = [r[i] for r in rows if r[i] is not None]
            out[name] = {"n": len(vals), **{f"p{q}": (round(percentile(vals, q), 3) if vals else None) for q in (50, 90, 99)}}
        return out

    def recent_errors(self, limit: int = 10) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, stage, reason, updated FROM frames WHERE state='failed' ORDER BY updated DESC LIMIT ?",
                (limit,)).fetchall()
        return [dict(r) for r in rows]

    def output_owner(self, column: str, output: str) -> str | None:
        with self._lock:
            row = self._db.execute(f"SELECT path FROM frames WHERE {column}=?", (output,)).fetchone()
        return row[0] if row else None

    # -- writes --------------------------------------------------------------
    def seen(self, path: str, *, size: int | None, mtime: float | None, t_complete: float,
             roll: str | None = None, outputs: dict | None = None) -> dict:
        """Record a complete file (new, or changed since its last record); return its row."""
        now = time.time()
        outputs = outputs or {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM frames WHERE path=?", (path,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO frames (path, roll, size, mtime, state, t_seen, t_complete, preview, tiff, jpeg, updated)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (path, roll, size, mtime, "seen", now, t_complete,
                         outputs.get("preview"), outputs.get("tiff"), outputs.get("jpeg"), now))
                else:
                    self._db.execute(
                        "UPDATE frames SET roll=?, size=?, mtime=?, sha256=NULL, state='seen', reason=NULL, stage=NULL,"
                        " rerender=NULL, checks=NULL,"
                        " t_seen=?, t_complete=?, t_preview=NULL, t_master=NULL, lat_preview=NULL, lat_master=NULL,"
                        " preview=?, tiff=?, jpeg=?, updated=? WHERE path=?",
                        (roll, size, mtime, now, t_complete, outputs.get("preview"), outputs.get("tiff"),
                         outputs.get("jpeg"), now, path))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(path)

    def update(self, path: str, **fields) -> dict | None:
        bad = set(fields) - set(FIELDS)
        if bad:
            raise ValueError(f"unknown journal fields {sorted(bad)}")
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE frames SET {cols} WHERE path=?", (*fields.values(), path))
        return self.get(path)

    def preview_written(self, path: str, t: float | None = None) -> dict | None:
        t = t or time.time()
        with self._lock:
            self._db.execute(
                "UPDATE frames SET state='preview_written', t_preview=?, lat_preview=MAX(0, ? - t_complete),"
                " attempts=attempts+1, updated=? WHERE path=?", (t, t, t, path))
        return self.get(path)

    def master_written(self, path: str, sha256: str | None, t: float | None = None) -> dict | None:
        t = t or time.time()
        with self._lock:
            self._db.execute(
                "UPDATE frames SET state='master_written', sha256=COALESCE(?, sha256), t_master=?,"
                " lat_master=MAX(0, ? - t_complete), reason=NULL, stage=NULL, rerender=NULL, updated=? WHERE path=?",
                (sha256, t, t, t, path))
        return self.get(path)

    def rerender(self, path: str, reason: str, t: float | None = None) -> dict | None:
        """Send a frame through the pipeline again (`Processor.rerender`): state `seen`,
        `rerender` = the reason until its master is rewritten (so a restart resumes it),
        the latencies measured from now.  None if there is no such frame."""
        t = t or time.time()
        with self._lock:
            self._db.execute(
                "UPDATE frames SET state='seen', reason=NULL, stage=NULL, rerender=?, t_complete=?, t_preview=NULL,"
                " t_master=NULL, lat_preview=NULL, lat_master=NULL, updated=? WHERE path=?",
                (reason or "re-render", t, t, path))
        return self.get(path)

    def failed(self, path: str, reason: str, stage: str | None = None) -> dict | None:
        with self._lock:
            self._db.execute(
                "UPDATE frames SET state='failed', reason=?, stage=?, attempts=attempts+1, updated=? WHERE path=?",
                (reason, stage, time.time(), path))
        return self.get(path)

    def record_failure(self, path: str, reason: str, stage: str | None = None, *,
                       size=None, mtime=None, t_complete=None) -> dict | None:
        """Failed before it was ever seen as complete (e.g. deleted while queued)."""
        if self.get(path) is None:
            self.seen(path, size=size, mtime=mtime, t_complete=t_complete or time.time())
        return self.failed(path, reason, stage)

    def delete(self, path: str) -> None:
        """Forget a frame (a camera JPEG whose RAW took its place)."""
        with self._lock:
            self._db.execute("DELETE FROM frames WHERE path=?", (path,))

    def reset_failed(self, paths: list[str] | None = None) -> list[str]:
        """Mark failed frames `seen` again (for retry); return their paths."""
        with self._lock:
            if paths:
                rows = [r for p in paths
                        for r in self._db.execute("SELECT path FROM frames WHERE state='failed' AND path=?", (p,)).fetchall()]
            else:
                rows = self._db.execute("SELECT path FROM frames WHERE state='failed'").fetchall()
            out = [r[0] for r in rows]
            now = time.time()
            for p in out:
                self._db.execute(
                    "UPDATE frames SET state='seen', reason=NULL, stage=NULL, t_complete=?, t_preview=NULL,"
                    " t_master=NULL, lat_preview=NULL, lat_master=NULL, updated=? WHERE path=?", (now, now, p))
        return out
