"""Can the camera's colour matrix undo its channel crosstalk before the density inversion?

The held-out (parametric) family loses most of its cross-family R² to its camera's channel
crosstalk (tools/family_ablation.py).  Real RAWs carry a colorimetric camera matrix
(camera -> XYZ: DNG ColorMatrix, LibRaw's tables), so the obvious fix is to map every camera
into one reference space through XYZ before taking densities, as darktable's negadoctor does.
This probe measures that idea with `station evaluate --family`'s protocol (seed 1000, 192 px,
12 frames per stock, base from the blank) for classic and the shipped model:

  none      the scans as they are (what `station evaluate --family` reports)
  exact     parametric only: the camera's own crosstalk removed exactly (an oracle, not a method)
  cam_a     every camera mapped through XYZ into the spectral generator's camera cam_a
  narrow    ... into narrowband bands at 640/545/450 nm (sigma 15 nm), like Status M densitometry

A camera's camera -> XYZ matrix is its least-squares (Luther) fit to the CIE 1931 observer.
The parametric generator has no spectra: its bands are taken as narrowband lights at the same
640/545/450 nm, which is the most favourable reading for the `narrow` reference.

    .venv/bin/python tools/unmix_probe.py [--family spectral|param|both] [--mode none,exact,cam_a,narrow]
"""
import argparse
from dataclasses import replace

import numpy as np

from station.model import familyeval as fe
from station.model import film, load_model
from station.model import paramfilm as pf
from station.pipeline.base import base_from_blank
from station.pipeline.classic import ClassicInverter

CMF = film.cie_cmf()
PEAKS, SIGMA = (640.0, 545.0, 450.0), 15.0


def cam_to_xyz(S):
    return np.linalg.lstsq(S, CMF, rcond=None)[0].T


def xyz_to_ref(mode):
    if mode == "cam_a":
        return np.linalg.inv(cam_to_xyz(film.CAMERAS["cam_a"]))
    ref = np.stack([np.exp(-0.5 * ((film.WL - m) / SIGMA) ** 2) for m in PEAKS], 1)
    return np.linalg.lstsq(CMF, ref, rcond=None)[0].T


def patched(family, mode):
    """Context: the generators' output mapped into the reference space (restored afterwards)."""
    saved = (film.simulate, pf._scan, pf.BASE_LEVEL, dict(pf.CAMERAS), dict(pf.WHITE_BALANCE))

    def restore():
        film.simulate, pf._scan, pf.BASE_LEVEL = saved[:3]
        pf.CAMERAS.update(saved[3])
        pf.WHITE_BALANCE.update(saved[4])

    if mode == "none":
        return restore
    pf.BASE_LEVEL = 0.6   # keeps the blank of scan +0.5 EV below clipping after the mix
    if mode == "exact":
        for k in pf.CAMERAS:
            pf.CAMERAS[k] = tuple(map(tuple, np.eye(3)))
            pf.WHITE_BALANCE[k] = (1.9, 1.0, 1.5)
        return restore
    R = xyz_to_ref(mode)
    if family == "spectral":
        orig = film.simulate

        def sim(pos, p=None, **kw):
            s = orig(pos, p, **kw)
            U = (R @ cam_to_xyz(film.CAMERAS[s.params.camera])).astype(np.float32)
            return replace(s, camera_rgb=np.maximum(s.camera_rgb @ U.T, 1e-6))
        film.simulate = sim
    else:
        B = np.stack([CMF[np.argmin(abs(film.WL - m))] for m in PEAKS], 1)   # XYZ of the unit band lights
        orig_scan = pf._scan

        def scan(band_D, p, rng, flare_mean=None):
            sig, base_raw, clear_raw, mean_T = orig_scan(band_D, p, rng, flare_mean)
            cam = np.asarray(pf.CAMERAS[p.camera], float) * np.asarray(pf.WHITE_BALANCE[p.camera], float)[:, None]
            U = R @ B @ np.linalg.inv(cam)

            def f(x):
                return np.maximum(x @ U.T, 1e-6)
            return f(sig), f(base_raw), f(clear_raw), mean_T
        pf._scan = scan
    return restore


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="both", choices=["spectral", "param", "both"])
    ap.add_argument("--mode", default="none,exact,cam_a,narrow")
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    methods = {"classic": ClassicInverter(), "mlp": load_model(a.model)}
    print("| family | unmix | method | grey C* | hue ° | R² | ΔE00 | scan ΔE00 |\n|---|---|---|---|---|---|---|---|")
    for fam in (["spectral", "param"] if a.family == "both" else [a.family]):
        for mode in a.mode.split(","):
            if mode == "exact" and fam == "spectral":
                continue
            restore = patched(fam, mode)
            try:
                frames = fe.family_frames(fam, size=192, seed=1000, base_from_blank=base_from_blank)
                for name, fn in methods.items():
                    r = fe.evaluate_family(fn, frames)
                    print(f"| {fam} | {mode} | {name} | {r['grey_C']:.2f} | {r['hue_err']:.1f} | {r['r2_lab']:.3f} | "
                          f"{r['de_mean']:.2f} | {r['scan_dE']:.2f} |", flush=True)
            finally:
                restore()


if __name__ == "__main__":
    main()
