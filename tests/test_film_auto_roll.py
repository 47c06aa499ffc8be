"""A roll is one film (issue 18 item 1, `film: auto`): the daemon settles a `film: auto` roll's
type once, from its frames' detections, with its roll analysis, as `station invert --roll --film
auto` does; and a blank given with `--film auto` says the film is a negative.  On generated film
written as DNGs, through the real daemon (`station run` as a subprocess) and the real CLI."""
import json
import subprocess
import sys

import numpy as np
import tifffile

from station.model import film as filmsim
from station.model import specialfilm as sf

BW, SLIDE = sf.BW_STOCK, sf.SLIDE_STOCK


def bw_negative(path, seed, size=200):
    scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(size, seed=seed))
    filmsim.write_dng(path, sf.with_rebate(sf.simulate_bw(scene, seed=seed, scene_ev=(seed % 3) - 1)))
    return path


def test_the_roll_accumulator_settles_an_auto_rolls_type_by_vote(tmp_path):
    """One frame detected wrongly does not decide: the votes do, and the roll's normaliser is
    the voted film's (bw: one neutral transfer, the same A in every channel)."""
    from station.pipeline.invert import get_inverter
    from station.pipeline.roll import Rendering, RollAccumulator, sample_file

    samples = [sample_file(bw_negative(tmp_path / f"{i}.dng", i)) for i in range(3)]
    for s, film in zip(samples, ("bw", "colour", "bw")):
        s.film = film
    acc = RollAccumulator(get_inverter("classic"), expected=3, film="auto")
    for i, s in enumerate(samples):
        acc.add(str(i), s)
    r = acc.rendering
    assert acc.locked and r.film == "bw", (r, acc.film_why)
    assert "2 of 3 frames" in acc.film_why
    assert max(r.A) - min(r.A) < 1e-6, r.A  # the mono normaliser, not the colour one
    assert Rendering.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    colour = Rendering(r.base, r.A, r.b, r.base_source, r.frames, True, "colour")
    assert colour.id != r.id  # what renders the pixels is in the id
    assert Rendering(r.base, r.A, r.b, r.base_source, r.frames, True, None).id == colour.id


def roll_cmd(state, incoming, *args):
    return subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(state), "--incoming", str(incoming),
                           *map(str, args)], capture_output=True, text=True, timeout=180)


def test_the_daemon_settles_an_auto_rolls_film_type_once(daemon_factory, tmp_path):
    d = daemon_factory(config={"inversion": {"method": "classic"}, "workers": {"count": 1}})
    assert roll_cmd(d.state, d.incoming, "new", "--name", "mix", "--film", "auto", "--frames", "3").returncode == 0
    d.start()
    (d.incoming / "mix").mkdir(parents=True, exist_ok=True)
    keys = [f"mix/{i:02d}.dng" for i in range(3)]
    for i in range(3):
        bw_negative(tmp_path / f"{i:02d}.dng", i)
        (tmp_path / f"{i:02d}.dng").replace(d.incoming / "mix" / f"{i:02d}.dng")

    def settled():
        fr = d.frames()
        ids = {fr.get(k, {}).get("rendering") for k in keys}
        return (len(ids) == 1 and None not in ids and "frame" not in ids
                and all(fr[k]["state"] == "master_written" and fr[k]["rerender"] is None for k in keys))
    d.wait_for(settled, 300, "the auto roll rendered with one rendering")
    rid = d.frames()[keys[0]]["rendering"]
    saved = json.loads((d.state / "renderings" / "mix.json").read_text())
    assert saved["id"] == rid and saved["film"] == "bw", saved
    assert max(saved["A"]) - min(saved["A"]) < 1e-6, saved["A"]  # analysed with the bw normaliser
    assert "roll mix: film type bw (auto: 3 of 3 frames" in d.log_text()
    assert d.status()["renderings"]["mix"] == {"rendering": rid, "locked": True, "frames": 3, "film": "bw"}
    for i in range(3):
        tif = d.output / "mix" / f"{i:02d}.tif"
        px = tifffile.imread(tif).astype(np.int64)
        assert np.abs(px[..., 0] - px[..., 1]).max() <= 1 and np.abs(px[..., 2] - px[..., 1]).max() <= 1, tif
        with tifffile.TiffFile(tif) as t:
            desc = json.loads(t.pages[0].description)
        assert desc["station_film"] == "bw" and desc["station_rendering"] == rid, desc


def test_a_blank_with_film_auto_says_the_film_is_a_negative(cli, tmp_path):
    """`--film auto --base BLANK`: the blank is a negative's film base, so no frame is rendered
    as a slide with it; a frame that looks like a slide (a black border: a slide's rebate, or a
    black holder round a negative) is rendered as the negative detected, with a warning naming
    the file."""
    from station.pipeline.films import detect_roll

    folder = tmp_path / "in"
    folder.mkdir()
    stock = "kodak_portra_400"
    scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(200, seed=2))
    filmsim.write_dng(folder / "neg.dng", filmsim.add_rebate(filmsim.simulate(scene, filmsim.ScanParams(stock=stock))))
    filmsim.write_dng(folder / "dark-edged.dng", sf.with_rebate(sf.simulate(SLIDE, scene, seed=0)))
    blank = filmsim.simulate(np.zeros((200, 300, 3)), filmsim.ScanParams(stock=stock, seed=99))
    filmsim.write_dng(tmp_path / "blank.dng", filmsim.add_rebate(blank, seed=9))
    out = tmp_path / "out"
    r = cli("invert", folder, "--out", out, "--film", "auto", "--format", "tiff", "--base", tmp_path / "blank.dng",
            "--method", "classic")
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "looks like a slide" in line]
    assert len(warned) == 1 and "dark-edged.dng" in warned[0] and warned[0].startswith("warning:"), r.stderr
    assert "negative with the blank" in warned[0] and "--film slide" in warned[0]
    with tifffile.TiffFile(out / "dark-edged.tif") as t:
        assert json.loads(t.pages[0].description).get("station_film") != "slide"
    # without the blank the same frame is a slide, as before
    r = cli("invert", folder / "dark-edged.dng", "--out", tmp_path / "out2", "--film", "auto", "--format", "tiff")
    assert r.returncode == 0 and "looks like a slide" not in r.stderr, r.stderr
    with tifffile.TiffFile(tmp_path / "out2" / "dark-edged.tif") as t:
        assert json.loads(t.pages[0].description)["station_film"] == "slide"
    # a roll's vote with a blank: never slide
    assert detect_roll([folder / "dark-edged.dng"])[0] == "slide"
    assert detect_roll([folder / "dark-edged.dng"], negative=True)[0] != "slide"


def test_an_auto_rolls_votes_survive_a_restart(tmp_path):
    """The samples kept for a roll that has not locked carry their votes: a daemon restarted
    between frames settles the same type."""
    from station.daemon.rolls import RollRenderings
    from station.pipeline.roll import sample_file

    samples = [sample_file(bw_negative(tmp_path / f"{i}.dng", i)) for i in range(3)]
    for s in samples:
        s.film = "bw"

    def rolls():
        manifest = {"film": "auto", "frames_expected": 3}
        return RollRenderings(tmp_path / "state", {"method": "classic"}, lambda roll: manifest)

    first = rolls()
    for i in range(2):
        assert first.add("r", f"r/{i}.dng", {"sample": samples[i].to_dict()}) is None
    assert first.snapshot()["r"]["film"] == "bw"
    again = rolls()  # a restart
    r = again.add("r", "r/2.dng", {"sample": samples[2].to_dict()})
    assert r is not None and r.film == "bw" and r.frames == 3, r
    assert json.loads((tmp_path / "state" / "renderings" / "r.json").read_text())["film"] == "bw"


def test_the_daemon_with_a_rolls_blank_renders_no_slide_with_auto(daemon_factory, tmp_path):
    """The daemon's `film: auto` roll with a calibrated blank is a negative film, as `--base`."""
    from station.pipeline.base import base_from_blank
    from station.pipeline.decode import decode

    stock = "kodak_portra_400"
    blank = filmsim.simulate(np.zeros((200, 300, 3)), filmsim.ScanParams(stock=stock, seed=99))
    filmsim.write_dng(tmp_path / "blank.dng", filmsim.add_rebate(blank, seed=9))
    rgb = base_from_blank(decode(tmp_path / "blank.dng", half_size=True).rgb).rgb
    scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(200, seed=2))
    filmsim.write_dng(tmp_path / "dark-edged.dng", sf.with_rebate(sf.simulate(SLIDE, scene, seed=0)))
    d = daemon_factory(config={"inversion": {"method": "classic"}, "workers": {"count": 1}})
    roll = d.state / "rolls" / "r1"
    roll.mkdir(parents=True)
    (roll / "manifest.json").write_text(json.dumps({"name": "r1", "film": "auto", "base": {"rgb": rgb.tolist()}}))
    (d.incoming / "r1").mkdir(parents=True)
    d.start()
    (tmp_path / "dark-edged.dng").replace(d.incoming / "r1" / "01.dng")
    d.wait_for(lambda: d.done(["r1/01.dng"]), 180, "the frame")
    assert "r1/01.dng: looks like a slide" in d.log_text()
    with tifffile.TiffFile(d.output / "r1" / "01.tif") as t:  # the master too (its base: the preview's)
        desc = json.loads(t.pages[0].description)
    assert desc.get("station_film") != "slide" and desc["station_base_source"].startswith("blank frame"), desc
