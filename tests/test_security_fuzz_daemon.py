"""Hostile input through the REAL daemon: mutated DNGs and RAWs (the seeded mutator of
tests/fuzzing.py, truncations, bit flips) dropped into incoming/.  Every file must end decoded
or failed with a reason; the daemon never exits; no file hangs past the per-frame deadline
(a hang would end as "timed out"); no original is altered.  A decoder crash is contained
(reason "decoder crashed") and counted.

make test: STATION_FUZZ_DAEMON_CASES (120); make soak: STATION_FUZZ_DAEMON_SOAK_CASES (1000).
(tests/test_fuzz_decode.py fuzzes the decoder alone in spawned workers.)"""
import os
from pathlib import Path

import pytest

from soak.harness import fuzz_daemon

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _check(res, n):
    print(f"\nfuzz through the daemon: {res.figures()}\nreasons: {res.reasons}")
    assert res.cases == n
    assert res.daemon_crashes == 0
    assert res.unfinished == 0 and res.timed_out == 0
    assert res.no_reason == 0
    assert res.altered == 0
    assert res.decoded + res.rejected + res.decoder_crashed == n
    assert res.rejected > 0, "no mutated file was rejected: the mutator is not reaching the decoder"


def test_fuzz_through_the_daemon(tmp_path):
    n = int(os.environ.get("STATION_FUZZ_DAEMON_CASES", "120"))
    res = fuzz_daemon(tmp_path, n, seed=11, shared=SHARED if SHARED.is_dir() else None)
    _check(res, n)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a long run by design (the 300 s default is for the quick suite)
def test_fuzz_through_the_daemon_soak(tmp_path):
    n = int(os.environ.get("STATION_FUZZ_DAEMON_SOAK_CASES", "1000"))
    res = fuzz_daemon(tmp_path, n, seed=int(os.environ.get("STATION_SOAK_SEED", "1")),
                      shared=SHARED if SHARED.is_dir() else None)
    _check(res, n)
