"""`--manifest FILE`: the batch's record, one JSON object per line and frame:

    {"input": "/scans/roll7/f01.dng", "sha256": "...", "outputs": {"tiff": "...", "jpeg": "..."},
     "rendering": "3f2a9c01de" | null, "status": "converted" | "complete" | "failed",
     "reason": "..." (failed only), "warnings": [...] (when any),
     "finished": "2026-12-01T17:58:03.412+00:00" (when the frame was done; absent for one
     never started: a missing input, a clashing name)}

"complete" is a frame whose outputs were already there (skipped); the lines follow the
order frames finish.  The file is written line by line as the batch goes (flushed each
line: a killed run's manifest holds the frames it finished) and replaces the previous
one of the same name when the batch starts; running the same command again rewrites it
whole, every frame with its status.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class Manifest:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")

    def add(self, result) -> None:
        self._fh.write(json.dumps(result.manifest_record(), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()


def read_manifest(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
