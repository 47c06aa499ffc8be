"""The live view's benchmark figure "capture request -> InitiateCapture" (station demo --live,
tools/live_soak.py): every shot is timed from its own request.

`station demo --live` used to stop recording requests when its measuring window ended, while
the settle watcher went on firing until the station stopped; the shot taken in that tail was
paired with the request before it, so one capture per run seemed to wait the time between two
shots (~2.2 s).  The station had served it in milliseconds."""
from __future__ import annotations

from station.capture.livescene import capture_starts
from station.commands import demo_live


def _shots(*ts):
    return [{"t": t, "moving": False, "index": i + 1, "pos": float(i + 1)} for i, t in enumerate(ts)]


def test_a_shot_without_its_own_request_is_not_paired_with_the_one_before():
    # three shots 2.2 s apart; the third one's request was not recorded
    res = capture_starts(_shots(10.005, 12.2, 14.4), [10.0, 12.19])
    assert res["n"] == 2 and res["unrequested"] == 1, res
    assert res["max"] == 0.01, res  # not 14.4 - 12.19 = 2.21


def test_the_demo_figure_pairs_each_shot_with_its_own_request():
    assert demo_live.capture_start(_shots(10.005, 12.2, 14.4), [10.0, 12.19])["max"] == 0.01


def test_a_request_that_made_no_shot_is_skipped():
    # the request at 5.0 failed (no shot); the shot at 10.004 is the one requested at 10.0
    res = capture_starts(_shots(10.004, 12.204), [5.0, 10.0, 12.2])
    assert res["n"] == 2 and res["unrequested"] == 0 and res["max"] < 0.01, res


def test_no_requests_no_figure():
    assert capture_starts(_shots(1.0), []) is None
    assert capture_starts([], [1.0]) is None
