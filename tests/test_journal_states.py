"""The journal: transitions, latencies, retry, survival of a reopen."""
from station.journal import Journal, percentile


def test_transitions_and_latency(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.seen("a.dng", size=10, mtime=1.0, t_complete=100.0, outputs={"preview": "/o/a.preview.jpg"})
    j.preview_written("a.dng", 100.8)
    j.master_written("a.dng", "ab" * 32, 103.0)
    j.seen("b.dng", size=5, mtime=1.0, t_complete=200.0)
    j.failed("b.dng", "file is empty (0 bytes)", "preview")
    row = j.get("a.dng")
    assert row["state"] == "master_written" and abs(row["lat_preview"] - 0.8) < 1e-6 and abs(row["lat_master"] - 3.0) < 1e-6
    assert j.counts()["master_written"] == 1 and j.counts()["failed"] == 1 and j.counts()["total"] == 2
    assert j.latencies()["preview"]["n"] == 1
    assert j.recent_errors()[0]["reason"] == "file is empty (0 bytes)"
    assert j.output_owner("preview", "/o/a.preview.jpg") == "a.dng"
    j.close()
    j = Journal(tmp_path / "j.sqlite")  # reopen: everything is there
    assert j.get("b.dng")["state"] == "failed"
    assert j.reset_failed() == ["b.dng"]
    assert j.get("b.dng")["state"] == "seen" and j.get("b.dng")["reason"] is None
    assert j.reset_failed() == []


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([1.0], 99) == 1.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 90) == 90
