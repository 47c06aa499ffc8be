"""The stability tracker, the name filter and the job queue: pure, no daemon."""
from station.ingest.jobs import MASTER, PREVIEW, JobQueue
from station.ingest.tracker import StabilityTracker, accept


def test_accept_names():
    assert accept("/in/IMG_0001.CR3")
    assert accept("/in/roll1/frame.dng", "/in")
    assert accept("/in/scan.tif")
    for bad in ("/in/.IMG_0001.dng", "/in/IMG_0001.dng.tmp", "/in/IMG_0001.dng.part", "/in/x.dng~",
                "/in/notes.txt", "/in/IMG_0001.xmp", "/in/.x.dng.123.tmp", "/in/noext"):
        assert not accept(bad), bad
    assert not accept("/in/.hidden/frame.dng", "/in")


def test_close_and_move_are_complete_at_once():
    t = StabilityTracker(stable_seconds=2)
    t.changed("a", 10.0, 100, 1.0, expect_close=True)
    assert t.poll(10.5, lambda p: (100, 1.0)) == []
    t.closed("a", 11.0)
    t.moved_in("b", 11.2)
    assert t.poll(11.3, lambda p: (1, 1.0)) == [("a", 11.0), ("b", 11.2)]
    assert t.poll(20.0, lambda p: (1, 1.0)) == []  # taken once


def test_no_close_event_needs_stable_size_and_mtime():
    t = StabilityTracker(stable_seconds=2)
    sizes = {"a": (10, 1.0)}
    t.changed("a", 0.0, 10, 1.0)  # polling observer: no close event will come
    assert t.poll(1.0, sizes.get) == []
    sizes["a"] = (20, 2.0)  # still growing
    assert t.poll(1.9, sizes.get) == []
    assert t.poll(3.0, sizes.get) == []  # only 1.1 s since the last change
    assert t.poll(3.95, sizes.get) == [("a", 1.9)]  # complete since its size settled


def test_inotify_writer_pausing_is_not_taken_early():
    t = StabilityTracker(stable_seconds=2, writer_seconds=30)
    t.changed("a", 0.0, 10, 1.0, expect_close=True)
    assert t.poll(5.0, lambda p: (10, 1.0)) == []  # paused writer: wait for its close
    assert t.poll(31.0, lambda p: (10, 1.0)) == [("a", 0.0)]  # never closed: safety net


def test_found_by_rescan():
    t = StabilityTracker(stable_seconds=2)
    t.found("old", 100.0, 10, 50.0)  # an old mtime is not trusted: watched like any other
    t.found("fresh", 100.0, 10, 99.5)
    assert t.poll(100.1, lambda p: (10, 50.0) if p == "old" else (10, 99.5)) == []
    assert sorted(t.poll(102.5, lambda p: (10, 50.0) if p == "old" else (10, 99.5))) == [("fresh", 100.0), ("old", 100.0)]


def test_rescan_waits_for_a_growing_file_whatever_its_mtime_says():
    """A writer's clock (or the daemon's, after a jump) may make a growing file look a day old."""
    t = StabilityTracker(stable_seconds=2)
    t.found("w.dng", 100.0, 10, 100.0 - 86400)
    sizes = iter([20, 30, 30, 30])
    seen = []
    for now in (101.0, 102.0, 103.0, 104.5):
        size = next(sizes)
        seen += t.poll(now, lambda p: (size, 100.0 - 86400))
    assert seen == [("w.dng", 102.0)]  # complete only after its size held still for 2 s


def test_deleted_is_forgotten():
    t = StabilityTracker(stable_seconds=1)
    t.changed("a", 0.0, 10, 1.0)
    t.closed("b", 0.0)
    t.gone("b")
    assert t.poll(5.0, lambda p: None) == []
    assert len(t) == 0


def test_queue_previews_first_in_order_and_no_duplicates():
    q = JobQueue()
    assert q.put(MASTER, "a", "/a", {}, 0, order=1)
    assert q.put(PREVIEW, "c", "/c", {}, 0, order=3)
    assert q.put(PREVIEW, "b", "/b", {}, 0, order=2)
    assert not q.put(PREVIEW, "b", "/b", {}, 0, order=2)  # already queued
    assert q.get(timeout=0).key == "b"
    assert q.get((MASTER,), timeout=0).key == "a"  # a master-capable worker asking for masters
    j = q.get((PREVIEW,), timeout=0)
    assert j.key == "c"
    assert q.get((PREVIEW,), timeout=0) is None
    assert q.busy("c")
    assert not q.put(PREVIEW, "c", "/c", {}, 0)  # in progress
    q.done(j)
    assert not q.busy("c")
    assert q.put(PREVIEW, "c", "/c", {}, 0)
