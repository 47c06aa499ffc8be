"""The fault-injection soak of the real daemon; prints its figures.

    PYTHONPATH=. python tools/soak.py --frames 500 --seed 1

Exit status 0 when the ledger is clean (0 lost, 0 duplicated, 0 altered, daemon alive),
1 otherwise (the problems are printed).  See docs/RELIABILITY.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=None, help="faults of each kind (default frames/10)")
    ap.add_argument("--root", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--no-tmpfs", action="store_true", help="inject ENOSPC instead of filling a tmpfs")
    ap.add_argument("--settle-camera", action="store_true",
                    help="after a daemon restart, wait for the camera before the next fault "
                         "(a gentler run; it kept finding 1 out before the card record fixed it)")
    ap.add_argument("--kill-in-capture", type=float, default=0.0,
                    help="share of daemon kills fired while a camera download is in flight")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from soak.harness import Soak

    with tempfile.TemporaryDirectory(prefix="station-soak-") as tmp:
        root = a.root or Path(tmp)
        res = Soak(root, frames=a.frames, seed=a.seed, faults_per_kind=a.per_kind, tmpfs=not a.no_tmpfs, settle_camera=a.settle_camera,
                   kill_in_capture=a.kill_in_capture,
                   log=lambda m: print(m, flush=True)).run()
    figs = res.figures()
    if a.root:
        (a.root / "problems.txt").write_text("".join(p + "\n" for p in res.problems))
    if a.json:
        print(json.dumps({"figures": figs, "problems": res.problems}, indent=1))
    else:
        print(f"\nsoak --frames {a.frames} --seed {a.seed}")
        for k, v in figs.items():
            print(f"  {k:42s} {v}")
        print(f"  daemon kills during a camera download      {res.kills_in_capture}")
        if res.rejected_reasons:
            print("  reasons given for the corrupted files:")
            for k, v in sorted(res.rejected_reasons.items(), key=lambda kv: -kv[1]):
                print(f"    {v:4d}  {k}")
        for p in res.problems[:50]:
            print("  PROBLEM:", p)
        if len(res.problems) > 50:
            print(f"  ... {len(res.problems) - 50} more" + (f" in {a.root / 'problems.txt'}" if a.root else ""))
    ok = not res.problems and res.lost == 0 and res.duplicates == 0 and res.altered == 0 and res.daemon_alive
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
