"""Mean CIELAB of fixed regions of positives (the figures of docs/MODEL.md §0 for the real
Plustek scan in ../shared):

    station invert ../shared/samples/negatives/plustek-hdr-48bit.tif --out /tmp/mlp
    station invert ../shared/samples/negatives/plustek-hdr-48bit.tif --method classic --out /tmp/classic
    python tools/region_lab.py /tmp/mlp/plustek-hdr-48bit.jpg /tmp/classic/plustek-hdr-48bit.jpg
"""
import sys

import numpy as np
from PIL import Image

from station.model.metrics import to_lab

REGIONS = {"rock (top right)": (60, 200, 330, 490), "snow slope": (150, 260, 20, 160)}  # y0, y1, x0, x1

for p in sys.argv[1:]:
    a = np.asarray(Image.open(p).convert("RGB"), np.float64) / 255
    for name, (y0, y1, x0, x1) in REGIONS.items():
        lab = to_lab(a[y0:y1, x0:x1]).reshape(-1, 3).mean(0)
        print(f"{p}: {name}: L* {lab[0]:.1f} a* {lab[1]:+.1f} b* {lab[2]:+.1f}")
