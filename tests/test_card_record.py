"""The card record (station/capture/cardrecord.py): what the station already took from each
camera's card, across restarts.  Pure tests of the file format first, then the camera service
on the PTP/IP emulator (real libgphoto2) across 'restarts' that share a state folder."""
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ptpip_emulator import camera_service  # noqa: E402
from station.capture.cardrecord import CardRecord, fingerprint, same_file  # noqa: E402

CAM = "PTP/IP Camera#0001"


def test_same_file_compares_only_what_both_sides_know():
    assert same_file((100, 5), (100, 5))
    assert not same_file((100, 5), (101, 5))
    assert not same_file((100, 5), (100, 6))
    assert same_file((100, None), (100, 6))
    assert same_file((None, None), (7, 8))
    # a daylight-saving change shifts every reported time by whole hours: the same files
    assert same_file((100, 5000), (100, 5000 + 3600)) and same_file((100, 5000), (100, 5000 - 1800))
    assert not same_file((100, 5000), (100, 5000 + 3601))
    assert not same_file((None, 5000), (None, 5000 + 3600)), "a shift alone, with no size to back it, is another file"
    assert not same_file((100, 5000), (100, 5000 + 16 * 3600))


def test_record_survives_a_restart_and_keeps_cameras_apart(tmp_path):
    path = tmp_path / "state" / "camera-files.jsonl"
    r = CardRecord(path)
    assert not r.knows(CAM)
    r.baseline(CAM, [("/DCIM", "OLD_0001.NEF", (10, 1))])
    r.taken(CAM, "/DCIM", "DSC_0001.NEF", (20, 2))
    r.taken("Other#9", "/DCIM", "DSC_0001.NEF", (30, 3))
    r.taken(CAM, "/DCIM", "DSC_0002.NEF", (20, 4))
    r.forget(CAM, "/DCIM", "DSC_0002.NEF")  # deleted from the card after the download
    r.close()

    r2 = CardRecord(path)
    assert r2.knows(CAM) and r2.knows("Other#9") and not r2.knows("Third#1")
    assert r2.is_taken(CAM, "/DCIM", "OLD_0001.NEF", (10, 1))
    assert r2.is_taken(CAM, "/DCIM", "DSC_0001.NEF", (20, 2))
    assert not r2.is_taken(CAM, "/DCIM", "DSC_0001.NEF", (20, 99)), "a reused name with another time is new"
    assert not r2.is_taken(CAM, "/DCIM", "DSC_0002.NEF")
    assert r2.is_taken("Other#9", "/DCIM", "DSC_0001.NEF", (30, 3))
    assert not r2.is_taken("Other#9", "/DCIM", "OLD_0001.NEF")


def test_a_camera_with_an_empty_card_is_still_known_after_a_restart(tmp_path):
    path = tmp_path / "rec.jsonl"
    CardRecord(path).baseline(CAM, [])
    assert CardRecord(path).knows(CAM)


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "rec.jsonl"
    r = CardRecord(path)
    r.taken(CAM, "/D", "A.NEF", (1, 1))
    r.close()
    with open(path, "a") as fh:
        fh.write('{"op": "taken", "cam": "PTP/IP Camera#0001", "f": "/D", "n": "B.N')  # killed mid-write
    r2 = CardRecord(path)
    assert r2.is_taken(CAM, "/D", "A.NEF") and not r2.has_name(CAM, "/D", "B.NEF")
    r2.taken(CAM, "/D", "C.NEF", (3, 3))  # and appending goes on from a fresh line
    r2.close()
    assert CardRecord(path).is_taken(CAM, "/D", "C.NEF")


@pytest.mark.parametrize("placed_as", ["DSC_0005.NEF", "DSC_0005-2.NEF", None, "DSC_0005.NEF-other"])
def test_a_download_pending_at_a_kill_counts_only_if_its_bytes_are_in_place(tmp_path, placed_as):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    data = bytes(range(256)) * 1000
    path = tmp_path / "rec.jsonl"
    r = CardRecord(path)
    r.baseline(CAM, [])
    r.pending(CAM, "/D", "DSC_0005.NEF", (len(data), 7), incoming / "DSC_0005.NEF", data)
    r.close()  # killed here: the file may or may not have been linked in
    if placed_as == "DSC_0005.NEF-other":
        (incoming / "DSC_0005.NEF").write_bytes(data[:-1] + b"x")  # another frame of that name
    elif placed_as:
        (incoming / placed_as).write_bytes(data)
    r2 = CardRecord(path)
    assert r2.is_taken(CAM, "/D", "DSC_0005.NEF", (len(data), 7)) == (placed_as in ("DSC_0005.NEF", "DSC_0005-2.NEF"))


def test_fingerprint_sees_a_change_anywhere_sampled_and_the_length():
    data = bytearray(b"\x01" * 500_000)
    fp = fingerprint(bytes(data))
    for pos in (0, 250_000, 499_999):
        d = bytearray(data)
        d[pos] ^= 0xFF
        assert fingerprint(bytes(d)) != fp, pos
    assert fingerprint(bytes(data) + b"\x01") != fp


def test_the_record_is_compacted_when_it_grows(tmp_path):
    path = tmp_path / "rec.jsonl"
    r = CardRecord(path)
    r.baseline(CAM, [])
    for i in range(300):  # a camera that deletes each file after the download
        r.taken(CAM, "/D", f"F{i}.NEF", (i, i))
        r.forget(CAM, "/D", f"F{i}.NEF")
    r.taken(CAM, "/D", "KEEP.NEF", (1, 2))
    r.close()
    before = len(path.read_text().splitlines())
    r2 = CardRecord(path)
    after = path.read_text().splitlines()
    assert before > 600 and len(after) < 10, (before, len(after))
    assert r2.is_taken(CAM, "/D", "KEEP.NEF", (1, 2)) and not r2.has_name(CAM, "/D", "F3.NEF")
    assert all(json.loads(x) for x in after)


# ----------------------------------------------------------- the camera service, real libgphoto2
def _files(folder):
    return sorted(p.read_bytes() for p in folder.iterdir() if p.is_file())


@pytest.fixture
def rig(tmp_path):
    """(incoming folder, card record path, a PTP/IP emulator camera)."""
    pytest.importorskip("gphoto2")
    from ptpip_emulator import EmulatedCamera

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    cam = EmulatedCamera().start()
    yield incoming, tmp_path / "state" / "camera-files.jsonl", cam
    cam.stop()


def _wait_files(folder, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(_files(folder)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # nothing more arrives


def test_a_reformatted_card_reusing_names_is_downloaded_and_old_photos_are_not(rig):
    incoming, record, cam = rig
    try:
        cam.press_shutter()  # a holiday photo on the card before the station ever met this camera
        s = camera_service(incoming, cam, record)
        s.capture().result(20)  # DSC_0002
        s.stop()
        cam.format_card()  # the card is reformatted while the station is down: numbering restarts
        time.sleep(1.1)  # (the camera's clock has 1 s resolution)
        cam.press_shutter()  # DSC_0001 again, a different photo
        cam.press_shutter()  # DSC_0002 again
        s = camera_service(incoming, cam, record)
        _wait_files(incoming, 3)
        s.capture().result(20)  # DSC_0003
        snap = s.snapshot()
        s.stop()
        made = [f.data for f in cam.captured]
        names = [f.name for f in cam.captured]
    finally:
        cam.stop()
    assert names == ["DSC_0001.DNG", "DSC_0002.DNG", "DSC_0001.DNG", "DSC_0002.DNG", "DSC_0003.DNG"]
    # the operator can see what the record holds (`station status`): three names, the reused
    # ones now standing for the files made after the reformat
    assert snap["card_record"] == {"camera": "PTP/IP Camera#0001", "known": True, "files": 3, "path": str(record)}
    assert len(set(made)) == 5
    assert _files(incoming) == sorted(made[1:]), sorted(p.name for p in incoming.iterdir())


def test_another_camera_gets_its_own_baseline(tmp_path):
    pytest.importorskip("gphoto2")
    from ptpip_emulator import EmulatedCamera

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    record = tmp_path / "state" / "camera-files.jsonl"
    first = EmulatedCamera(serial="0001").start()
    try:
        s = camera_service(incoming, first, record)
        s.capture().result(20)
        s.stop()
        got_first = [f.data for f in first.captured]
    finally:
        first.stop()
    second = EmulatedCamera(serial="0002").start()  # the station's body is swapped for another
    try:
        for _ in range(3):
            second.press_shutter()  # its card is full of someone's photos
        s = camera_service(incoming, second, record)
        time.sleep(1.0)
        s.capture().result(20)
        s.stop()
        made = [f.data for f in second.captured]
    finally:
        second.stop()
    assert _files(incoming) == sorted(got_first + made[3:])
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    assert {x["cam"] for x in lines if x["op"] == "camera"} == {"PTP/IP Camera#0001", "PTP/IP Camera#0002"}


def test_a_recovery_cut_by_the_link_is_finished_after_the_reconnect(rig):
    """The download of a frame made while the station was down drops the link: the scan is a
    fault (reconnect), not a silent "nothing recovered", and the next scan takes the frame once."""
    incoming, record, cam = rig
    try:
        s = camera_service(incoming, cam, record)
        s.capture().result(20)
        s.stop()
        cam.press_shutter()  # made while the station is down
        cam.fail_next("drop", "GetObject", 1)  # its recovery is cut once
        s = camera_service(incoming, cam, record)
        _wait_files(incoming, 2)
        snap = s.snapshot()
        s.stop()
        made = sorted(f.data for f in cam.captured)
    finally:
        cam.stop()
    assert _files(incoming) == made
    assert snap["reconnects"] >= 1


def test_a_card_file_that_keeps_failing_stops_forcing_reconnects_and_is_retried_when_idle(rig, monkeypatch,
                                                                                         caplog):
    from station.capture import camera as camera_mod

    monkeypatch.setattr(camera_mod, "RESCAN_S", 1.0)
    incoming, record, cam = rig
    try:
        s = camera_service(incoming, cam, record)
        s.capture().result(20)
        s.stop()
        cam.press_shutter()
        cam.fail_next("drop", "GetObject", camera_mod.MAX_FILE_FAILURES)  # its recovery fails 3 times over
        s = camera_service(incoming, cam, record)
        deadline = time.monotonic() + 20
        while s.snapshot()["faults"].get("download", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.snapshot()["faults"].get("download") == 1, s.snapshot()
        assert "DSC_0002.DNG failed to download 3 times" in caplog.text
        assert len(s.capture().result(20)) == 1  # meanwhile the camera shoots as usual
        _wait_files(incoming, 3)  # and the idle re-scan takes the stubborn file
        s.stop()
        made = sorted(f.data for f in cam.captured)
    finally:
        cam.stop()
    assert len(made) == 3
    assert _files(incoming) == made


def test_the_daemon_keeps_the_record_in_its_state_folder_and_status_shows_it(daemon_factory):
    """The real daemon on libgphoto2's virtual camera: the record lives in <state>/camera-files.jsonl
    and `station status` has a `card` line for it."""
    import subprocess

    pytest.importorskip("gphoto2")
    d = daemon_factory(config={"camera": {"port": "virtual"}, "watcher": {"rescan_interval": 0}})
    d.start()
    d.wait_for(lambda: (d.status().get("camera") or {}).get("state") == "ready", 60, "camera ready")
    cam = d.status()["camera"]
    rec = cam["card_record"]
    assert rec["known"] and rec["camera"].startswith("Nikon DSC D750#")  # the virtual camera's name
    assert rec["path"] == str(d.state / "camera-files.jsonl") and (d.state / "camera-files.jsonl").exists()
    out = subprocess.run([sys.executable, "-m", "station", "status", "--state", str(d.state)], env=d.env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    card = [ln for ln in out.stdout.splitlines() if ln.startswith("card ")]
    assert card and rec["camera"] in card[0] and "camera-files.jsonl" in card[0], out.stdout
    assert d.stop() == 0
