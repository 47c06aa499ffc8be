"""`make demo`'s roll is one film: its frames share one film base (the station renders a roll
with one analysis; a roll made of six stocks came out with a yellow astronaut and a green rocket),
and they live in a folder of their stock, so the mixed-stock negatives an earlier demo left in
demo-output/negatives are not served into the roll."""
import numpy as np

from station.commands.demo import make_negatives
from station.pipeline.base import estimate_base
from station.pipeline.decode import decode


def test_the_demo_roll_is_one_stock(tmp_path):
    (tmp_path / "negatives").mkdir()
    (tmp_path / "negatives" / "negative-01.dng").write_bytes(b"an earlier demo's frame of another stock")
    paths = make_negatives(tmp_path / "negatives", 6, size=200)
    assert len(paths) == 6 and len({p.parent for p in paths}) == 1
    assert paths[0].parent != tmp_path / "negatives" and paths[0].read_bytes()[:2] in (b"II", b"MM")
    bases = []
    for p in paths:
        b = estimate_base(decode(p).rgb)
        if b.source == "rebate":  # the base's colour (its level follows the scan exposure)
            bases.append(np.log10(b.rgb / b.rgb[1]))
    assert len(bases) >= 4, len(bases)
    spread = np.ptp(np.array(bases), axis=0)
    assert spread.max() < 0.03, spread
