"""Experiment (docs/MODEL.md §0, "Training variance"): the shipped recipe with the wide draws'
camera and dye crosstalk drawn up to XK (default 2.5) times wider, to teach the model more kinds of
mixing.  Wraps `station train`: the same arguments, with `film.random_camera` and
`film.random_params_wide` widened for this run only.  Its result (cross-family hue 12.2°, R²
0.792: worse) was not shipped.

    XK=2.5 nice -n 10 .venv/bin/python tools/train_wider_crosstalk.py train --generate 600 --epochs 60 \\
        --patience 10 --pixels-per-frame 5000 --seed 0 --threads 1 --max-minutes 7 --no-progress --wide 0.7 \\
        --prior classic --bound 0.2 --neutral 0.05 --width 64 --depth 3 --activation silu --normaliser base \\
        --out /tmp/wide25.npz
    .venv/bin/station evaluate --family both --model /tmp/wide25.npz
"""
import sys
import numpy as np
from station.model import film
K = float(__import__("os").environ.get("XK", "2.5"))
_g = film._gauss
def random_camera(rng):
    u = rng.uniform
    r = _g(u(585, 625), u(24, 48)) + u(0, 0.12 * K) * _g(u(450, 560), 28)
    g = _g(u(520, 550), u(32, 55)) + u(0, 0.12 * K) * _g(u(580, 620), 30) + u(0, 0.06 * K) * _g(u(450, 480), 25)
    b = _g(u(445, 470), u(24, 42)) + u(0, 0.08 * K) * _g(u(500, 560), 30)
    return np.stack([r, g, b], 1)
film.random_camera = random_camera
orig = film.random_params_wide
def wide(rng, stocks=None):
    p = orig(rng, stocks)
    if p.dye_mix is not None:
        p.dye_mix = tuple(map(tuple, np.asarray(p.dye_mix) * rng.uniform(1, K)))
    return p
film.random_params_wide = wide
from station.cli import main
sys.exit(main(sys.argv[1:]))
