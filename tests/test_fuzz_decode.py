"""Hostile input at the decoder: mutated DNGs and RAWs decode or fail with a reason.

Each case runs in a spawned worker process with a deadline, as the daemon
runs its decoder, so a crash or a hang is observed rather than taking the
test run down.  `make test` runs a few hundred cases; `make soak` more.
"""
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from fuzzing import mutate
from negatives import expose, grey_ramp, with_rebate, write_negative_dng

QUICK_CASES = int(os.environ.get("STATION_FUZZ_CASES", "240"))


def _decode_worker(paths, out):
    from station.errors import StationError
    from station.pipeline.decode import decode

    for p in paths:
        try:
            dec = decode(p, half_size=True)
            ok = bool(np.isfinite(dec.rgb).all())
            out.put((p, "ok" if ok else "non-finite pixels"))
        except StationError as exc:
            out.put((p, "rejected:" + (exc.reason or "")))
        except Exception as exc:  # an unexpected exception type is a finding
            out.put((p, f"unexpected {exc.__class__.__name__}: {exc}"))


def run_cases(paths: list[str], deadline_s: float = 20.0) -> dict[str, str]:
    ctx = mp.get_context("spawn")
    results: dict[str, str] = {}
    todo = list(paths)
    while todo:
        q = ctx.Queue()
        proc = ctx.Process(target=_decode_worker, args=(todo, q), daemon=True)
        proc.start()
        while todo:
            try:
                p, verdict = q.get(timeout=deadline_s)
            except Exception:
                # the worker died (crash) or hung on todo[0]
                verdict = "hang" if proc.is_alive() else f"crash (exit {proc.exitcode})"
                p = todo[0]
                proc.kill()
                results[p] = verdict
                todo = todo[1:]
                break
            results[p] = verdict
            todo.remove(p)
        proc.join(timeout=5)
    return results


def seeds_corpus(tmp: Path, shared: Path | None) -> list[bytes]:
    gen = write_negative_dng(tmp / "seed.dng", with_rebate(expose(grey_ramp(96, 128)), border=16))
    corpus = [gen.read_bytes()]
    if shared is not None:
        for name in ("RAW_NIKON_D1.NEF", "canon_eos_6d.dng", "RAW_KODAK_DC50.KDC"):
            p = shared / "samples" / "raw" / name
            if p.exists():
                corpus.append(p.read_bytes())
    return corpus


def fuzz(tmp_path: Path, n: int, shared: Path | None) -> dict[str, str]:
    corpus = seeds_corpus(tmp_path, shared)
    paths = []
    for i in range(n):
        data = mutate(corpus[i % len(corpus)], seed=i)
        p = tmp_path / f"case{i:05d}.dng"
        p.write_bytes(data)
        paths.append(str(p))
    return run_cases(paths)


def _summary(results: dict[str, str]) -> dict[str, int]:
    out = {"ok": 0, "rejected": 0, "crash": 0, "hang": 0, "unexpected": 0}
    for v in results.values():
        key = v.split(":")[0].split(" ")[0]
        out[key if key in out else "unexpected"] += 1
    return out


def test_fuzz_mutated_raws_never_hang_or_crash_unreported(tmp_path):
    shared = Path(__file__).resolve().parents[2] / "shared"
    results = fuzz(tmp_path, QUICK_CASES, shared if shared.is_dir() else None)
    summary = _summary(results)
    print(f"\nfuzz: {len(results)} cases: {summary}")
    assert len(results) == QUICK_CASES
    assert summary["hang"] == 0, [p for p, v in results.items() if v == "hang"]
    assert summary["unexpected"] == 0, {p: v for p, v in results.items() if v.startswith("unexpected")}
    # every rejection carries a reason
    assert all(len(v) > len("rejected:") for v in results.values() if v.startswith("rejected"))
    # crashes of the decoder are contained (the daemon marks them "decoder crashed"); count them
    assert summary["ok"] + summary["rejected"] + summary["crash"] == QUICK_CASES


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a long run by design (the 300 s default is for the quick suite)
def test_fuzz_soak(tmp_path):
    shared = Path(__file__).resolve().parents[2] / "shared"
    n = int(os.environ.get("STATION_FUZZ_SOAK_CASES", "1200"))
    results = fuzz(tmp_path, n, shared if shared.is_dir() else None)
    summary = _summary(results)
    print(f"\nfuzz soak: {len(results)} cases: {summary}")
    assert summary["hang"] == 0 and summary["unexpected"] == 0
