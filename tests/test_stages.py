"""The one pipeline sequencer (station/pipeline/stages.py): every stage has one interface, the
sequencer times the stages that ran and names the file and the stage when one fails; both plans
(plain float and fused uint16 master) are made of such stages and agree."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import write_negative
from station.errors import DecodeError, StationError
from station.pipeline import stages
from station.pipeline.convert import ConvertOptions, convert_file
from station.pipeline.fastmaster import master_plan
from station.pipeline.stages import Frame, run


class Boom:
    name = "boom"

    def __call__(self, frame, options):
        raise ValueError("no such luck")


class Idle:
    name = "idle"

    def __call__(self, frame, options):
        return frame


class Mark:
    name = "mark"

    def __call__(self, frame, options):
        return replace(frame, warnings=[*frame.warnings, "marked"])


def test_the_sequencer_names_the_file_and_the_stage():
    with pytest.raises(DecodeError) as exc:
        run((Mark(), Boom()), Frame(src=Path("/x/neg.dng")), ConvertOptions())
    assert exc.value.path == Path("/x/neg.dng")
    assert "boom stage failed (ValueError: no such luck)" in exc.value.reason


def test_a_station_error_passes_through_as_it_is():
    class Refuse:
        name = "refuse"

        def __call__(self, frame, options):
            raise StationError(frame.src, "refused for a reason")

    with pytest.raises(StationError) as exc:
        run((Refuse(),), Frame(src=Path("a.dng")), ConvertOptions())
    assert exc.value.reason == "refused for a reason"


def test_stages_that_ran_are_timed_and_idle_ones_are_not():
    f0 = Frame(src=None)
    f = run((Idle(), Mark()), f0, ConvertOptions())
    assert set(f.timings) == {"mark"} and f.warnings == ["marked"]
    assert f0.warnings == [] and f0.timings == {}  # the frame given is not changed


def test_a_new_stage_goes_into_a_plan(tmp_path):
    """Where a new stage goes: a class in the plan at its place; it sees the positive."""
    seen = []

    class Look:
        name = "look"

        def __call__(self, frame, options):
            seen.append(frame.positive.shape)
            return replace(frame)

    src = write_negative(tmp_path / "n.dng", 120, 180)
    plan = [s for s in stages.PLAIN if s.name != "write"] + [Look()]
    f = run(plan, Frame(src=src, outputs={}), ConvertOptions())
    assert seen and seen[0][2] == 3 and "look" in f.timings and f.film == "colour"


def test_plain_and_fused_plans_have_the_same_stages_and_agree(tmp_path):
    src = write_negative(tmp_path / "n.dng", 240, 360)
    opts = ConvertOptions(inverter=None)
    plan = master_plan(src, opts)
    assert plan is not None
    names = [s.name for s in plan]
    assert names == ["decode", "flatfield", "base", "film", "normalise", "invert", "sample", "write"]
    assert [s.name for s in stages.PLAIN] == ["decode", "flatfield", "base", "film", "normalise", "invert", "print",
                                            "crop", "sample", "observe", "write"]
    fused = convert_file(src, {"tiff": tmp_path / "fused.tif"}, opts)
    # the plain plan on the same RAW: the LUT on float densities
    plain = run(stages.PLAIN, Frame(src=src, outputs={"tiff": tmp_path / "plain.tif"}), opts)
    assert set(fused.timings) >= {"decode", "base", "film", "normalise", "invert", "write"}
    a = tifffile.imread(tmp_path / "fused.tif").astype(np.int64)
    b = tifffile.imread(tmp_path / "plain.tif").astype(np.int64)
    assert a.shape == b.shape and np.percentile(np.abs(a - b), 99) <= 2 * 257, np.abs(a - b).max()
    assert plain.film == fused.film == "colour"
