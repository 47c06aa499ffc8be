"""The print: exposure, white balance, contrast and black/white points, after the inversion.

The inverter makes an sRGB positive; the print adjusts it the way a darkroom
print or a raw converter's basic panel would, in linear light:

    lin   = srgb_to_linear(positive)               per channel
    m     = lin * gains(temperature, tint) * 2^exposure
    x     = (m - black_lin) / (white_lin - black_lin)  black/white points (given sRGB-encoded)
    y     = S(x, contrast)                          smooth S-curve through 0, mid grey 0.18 and 1
    out   = linear_to_srgb(y)

Every step is a function of one channel's value, so the whole print is three
1-D curves: it composes into the inverter's baked 3-D LUT by transforming the
LUT's table (`printed_table`), and the fast paths (lutinvert, fastmaster) stay
one lookup per pixel.  Identity settings are an exact no-op (nothing is
applied, the LUT is the model's own).

White balance is temperature/tint as in a raw converter: `temperature` is the
light the picture is corrected for (6500 K = as the inverter made it; higher =
warmer picture, lower = cooler), by von Kries gains in linear sRGB between the
Planckian white at 6500 K and at `temperature` (Kim et al.'s approximation;
2500-25000 K).  `tint` moves along green-magenta: + toward magenta, 100 = one
stop less green.  Gains keep a neutral's luminance.  `with_neutral(pixel)`
returns settings that make a picked pixel (as displayed with the current
settings) neutral.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

MID_GREY = 0.18
REF_TEMPERATURE = 6500.0
LUMA = np.array([0.2126, 0.7152, 0.0722])
# sRGB (D65) from XYZ
_XYZ_TO_RGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                        [-0.9692660, 1.8760108, 0.0415560],
                        [0.0556434, -0.2040259, 1.0572252]])

# key: (default, min, max, what it is)  -- the single source for validation, CLI, YAML and the page
RANGES = {
    "exposure": (0.0, -5.0, 5.0, "EV"),
    "temperature": (REF_TEMPERATURE, 2500.0, 25000.0, "K"),
    "tint": (0.0, -100.0, 100.0, "+ magenta / - green"),
    "contrast": (1.0, 0.25, 4.0, "1 = as inverted"),
    "black": (0.0, 0.0, 0.5, "sRGB level that becomes black"),
    "white": (1.0, 0.5, 1.0, "sRGB level that becomes white"),
}


class PrintError(ValueError):
    """A bad print setting: `key` names it, the message says why (one line)."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class PrintSettings:
    exposure: float = 0.0  # EV: +1 doubles linear light
    temperature: float = REF_TEMPERATURE  # K the picture is corrected for; 6500 = as inverted
    tint: float = 0.0  # + magenta, - green; 100 = one stop less green
    contrast: float = 1.0  # slope of the S-curve at mid grey; 1 = as inverted
    black: float = 0.0  # sRGB-encoded level that becomes black
    white: float = 1.0  # sRGB-encoded level that becomes white

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise PrintError(f.name, f"must be a number, got {v!r}")
            _, lo, hi, _ = RANGES[f.name]
            if not lo <= v <= hi:
                raise PrintError(f.name, f"must be between {lo:g} and {hi:g}, got {v:g}")
            object.__setattr__(self, f.name, float(v))
        if self.white - self.black < 0.05:
            raise PrintError("white", f"must be above black by at least 0.05 (black {self.black:g}, white {self.white:g})")

    @property
    def identity(self) -> bool:
        return self == IDENTITY

    def to_dict(self) -> dict:
        return asdict(self)

    def changed(self) -> dict:
        """Only the settings that differ from identity (what metadata and logs show)."""
        return {k: v for k, v in asdict(self).items() if v != RANGES[k][0]}

    def key(self) -> tuple:
        return tuple(round(getattr(self, f.name), 6) for f in fields(self))

    @classmethod
    def from_dict(cls, data, where: str = "print") -> "PrintSettings":
        """From a mapping (YAML, JSON, manifest); unknown keys and bad values raise PrintError
        naming `where.key`.  `wb: "T[,TINT]"` is accepted for temperature/tint."""
        if data is None:
            return IDENTITY
        if isinstance(data, PrintSettings):
            return data
        if not isinstance(data, dict):
            raise PrintError(where, f"must be a mapping of {', '.join(RANGES)}, got {type(data).__name__}")
        data = dict(data)
        both = [k for k in ("temperature", "tint") if k in data]
        if "wb" in data and both:  # two answers to one question: refused, not one picked silently
            raise PrintError(f"{where}.wb", f"give wb or {' and '.join(both)}, not both "
                                            f"(wb {data['wb']!r}, {', '.join(f'{k} {data[k]!r}' for k in both)})")
        if "wb" in data:
            wb = data.pop("wb")
            try:
                t, tint = parse_wb(wb)
            except PrintError as exc:
                raise PrintError(f"{where}.wb", exc.problem) from None
            data.setdefault("temperature", t)
            if tint is not None:
                data.setdefault("tint", tint)
        for k in data:
            if k not in RANGES:
                raise PrintError(f"{where}.{k}", f"unknown key (known: {', '.join(RANGES)}, wb)")
        try:
            return cls(**data)
        except PrintError as exc:
            raise PrintError(f"{where}.{exc.key}", exc.problem) from None

    def merged(self, **changes) -> "PrintSettings":
        return replace(self, **changes)

    def with_neutral(self, pixel_srgb) -> "PrintSettings":
        """Settings whose white balance makes `pixel_srgb` (an sRGB-encoded colour as displayed
        with these settings) neutral; exposure, contrast and points are kept."""
        q = np.asarray(pixel_srgb, np.float64).reshape(3)
        if np.any(q <= 0.002) or np.any(q >= 0.998):
            raise PrintError("neutral", "the picked point is black or clipped in a channel; pick a mid-tone neutral")
        m = inverse_tone(srgb_to_linear(q), self)  # lin * gains * 2^ev before the tone curve
        if np.any(m <= 0):
            raise PrintError("neutral", "the picked point is below the black point; pick a lighter neutral")
        target = wb_gains(self.temperature, self.tint) / m  # the gains that make it neutral (up to scale)
        t, tint = solve_wb(target)
        out = replace(self, temperature=t, tint=tint)
        g = wb_gains(t, tint)
        if np.ptp(np.log(g / target)) > 1e-3:  # clamped at a range's end: it cannot be made neutral
            raise PrintError("neutral", f"the picked point's cast is beyond the white balance's range "
                                        f"({RANGES['temperature'][1]:g}-{RANGES['temperature'][2]:g} K, tint "
                                        f"{RANGES['tint'][1]:g}..{RANGES['tint'][2]:g}); pick a neutral")
        return out


IDENTITY = PrintSettings()


def parse_wb(text) -> tuple[float, float | None]:
    """`"5200"` or `"5200,10"` (or a number) -> (temperature, tint or None)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text), None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) == 1:
            return float(parts[0]), None
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise PrintError("wb", f"must be TEMPERATURE or TEMPERATURE,TINT (e.g. 5200 or 5200,10), got {text!r}")


# -- transfer functions --------------------------------------------------------------------
def srgb_to_linear(v):
    """sRGB-encoded -> linear; odd-symmetric so unclipped LUT values (<0, >1) pass through."""
    v = np.asarray(v)
    a = np.abs(v)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.copysign(lin, v).astype(v.dtype if v.dtype.kind == "f" else np.float64, copy=False)


def linear_to_srgb(v):
    v = np.asarray(v)
    a = np.abs(v)
    enc = np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)
    return np.copysign(enc, v).astype(v.dtype if v.dtype.kind == "f" else np.float64, copy=False)


def _h(t, a: float):
    """The S-curve's half: t / (a + (1 - a) t) on t >= 0 (0 -> 0, 1 -> 1, slope a at 1 and
    1/a at 0: finite everywhere), continued linearly (slope 1/a) below 0."""
    pos = np.maximum(t, 0.0)
    return np.where(t >= 0, pos / (a + (1.0 - a) * pos), t / a)


def s_curve(x, c: float):
    """Contrast `c` about mid grey: 0 -> 0, 0.18 -> 0.18, 1 -> 1, slope c at 0.18 and 1/c at
    black and white; smooth and monotonic, also for values beyond [0, 1] (unclipped LUT
    values).  s_curve(., 1/c) is its inverse."""
    if c == 1.0:
        return x
    g, top = MID_GREY, 1.0 - MID_GREY
    return np.where(x <= g, g * _h(x / g, c), 1.0 - top * _h((1.0 - x) / top, c))


def tone(m, s: PrintSettings):
    """Linear m (after gains and exposure) -> linear print value: points, then contrast."""
    b, w = float(srgb_to_linear(np.float64(s.black))), float(srgb_to_linear(np.float64(s.white)))
    x = (m - b) / (w - b) if (b, w) != (0.0, 1.0) else m
    return s_curve(x, s.contrast)


def inverse_tone(y, s: PrintSettings):
    b, w = float(srgb_to_linear(np.float64(s.black))), float(srgb_to_linear(np.float64(s.white)))
    x = s_curve(np.asarray(y, np.float64), 1.0 / s.contrast)
    return x * (w - b) + b


# -- white balance ---------------------------------------------------------------------------
def planck_xy(t: float) -> tuple[float, float]:
    """CIE 1931 xy of a Planckian radiator (Kim et al. 2002 cubic approximation, 1667-25000 K)."""
    t = float(np.clip(t, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def white_rgb(t: float) -> np.ndarray:
    """Linear sRGB of the Planckian white at t, Y = 1."""
    x, y = planck_xy(t)
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    return _XYZ_TO_RGB @ xyz


def wb_gains(temperature: float, tint: float) -> np.ndarray:
    """Per-channel gains in linear sRGB; exactly (1, 1, 1) at 6500 K, tint 0."""
    if temperature == REF_TEMPERATURE and tint == 0.0:
        return np.ones(3)
    g = white_rgb(REF_TEMPERATURE) / white_rgb(temperature)
    g[1] *= 2.0 ** (-tint / 100.0)
    return g / float(LUMA @ g)


def solve_wb(target) -> tuple[float, float]:
    """(temperature, tint) whose gains are proportional to `target` (clamped to the ranges)."""
    target = np.asarray(target, np.float64)
    want = math.log(target[0] / target[2])  # log R/B gain ratio: increases with temperature
    _, tlo, thi, _ = RANGES["temperature"]
    lo, hi = math.log(tlo), math.log(thi)

    def rb(lt):
        g = white_rgb(REF_TEMPERATURE) / white_rgb(math.exp(lt))
        return math.log(g[0] / g[2])

    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if rb(mid) < want:
            lo = mid
        else:
            hi = mid
    t = math.exp(0.5 * (lo + hi))
    g0 = white_rgb(REF_TEMPERATURE) / white_rgb(t)
    # green relative to the mean of red and blue, in the log domain
    ratio = (target[1] / math.sqrt(target[0] * target[2])) / (g0[1] / math.sqrt(g0[0] * g0[2]))
    _, klo, khi, _ = RANGES["tint"]
    tint = float(np.clip(-100.0 * math.log2(ratio), klo, khi))
    return float(np.clip(t, *RANGES["temperature"][1:3])), tint


# -- applying it -------------------------------------------------------------------------------
def apply_linear(lin, s: PrintSettings):
    """Linear RGB (...x3) -> linear print, unclipped."""
    if s.identity:
        return lin
    gain = wb_gains(s.temperature, s.tint) * 2.0 ** s.exposure
    m = np.asarray(lin) * gain.astype(np.asarray(lin).dtype if np.asarray(lin).dtype.kind == "f" else np.float64)
    return tone(m, s)


def apply_srgb(srgb, s: PrintSettings, clip: bool = True):
    """sRGB-encoded (...x3) -> printed sRGB-encoded; identity settings return the input itself."""
    if s.identity:
        return srgb
    a = np.asarray(srgb)
    dt = a.dtype if a.dtype.kind == "f" else np.float64
    out = linear_to_srgb(apply_linear(srgb_to_linear(a.astype(dt, copy=False)), s)).astype(dt, copy=False)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out


CURVE_POINTS = 1 << 14  # 1-D curve nodes per channel for composing into a LUT table

try:  # the table pass compiled (161^3 x 3 values in tens of ms); numpy below gives the same numbers
    import numba as _nb

    from station.model.lut import HAVE_NUMBA as _HAVE_NUMBA

    if not _HAVE_NUMBA:
        raise ImportError

    @_nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def _curves_nb(src, cv, lo, scale, out):  # pragma: no cover - compiled
        n = cv.shape[1]
        for k in _nb.prange(src.shape[0]):
            for c in range(3):
                t = (src[k, c] - lo) * scale
                i = int(t)
                if i > n - 2:
                    i = n - 2
                if i < 0:
                    i = 0
                f = t - i
                a = cv[c, i]
                out[k, c] = a + (cv[c, i + 1] - a) * f
except Exception:  # pragma: no cover - where numba is absent
    _curves_nb = None


def curves(s: PrintSettings, lo: float, hi: float, n: int = CURVE_POINTS) -> np.ndarray:
    """The print as three 1-D curves (3 x n) sampled uniformly over sRGB values [lo, hi]."""
    v = np.linspace(lo, hi, n)
    return np.ascontiguousarray(apply_srgb(np.stack([v] * 3, axis=1), s, clip=False).T, dtype=np.float32)


def printed_table(table: np.ndarray, s: PrintSettings, exact: bool = False) -> np.ndarray:
    """A baked LUT's (unclipped) output table with the print composed after it.

    The print is three 1-D curves; they are sampled on CURVE_POINTS nodes over the
    table's value range and interpolated (a 161^3 table in ~0.1 s instead of ~2 s for
    the closed form; max difference to it ~1e-4 of full scale, see the tests)."""
    if s.identity:
        return table
    table = np.asarray(table, np.float32)
    if exact:
        return np.ascontiguousarray(apply_srgb(table, s, clip=False), dtype=np.float32)
    lo, hi = float(table.min()), float(table.max())
    if not hi > lo:
        hi = lo + 1.0
    cv = curves(s, lo, hi)
    n = cv.shape[1]
    out = np.empty_like(table)
    scale = np.float32((n - 1) / (hi - lo))
    if _curves_nb is not None and table.flags.c_contiguous:
        _curves_nb(table.reshape(-1, 3), cv, np.float32(lo), scale, out.reshape(-1, 3))
        return out
    for c in range(3):
        t = (table[..., c] - np.float32(lo)) * scale
        i = np.minimum(t.astype(np.int32), n - 2)
        t -= i
        a = cv[c][i]
        out[..., c] = a + (cv[c][i + 1] - a) * t
    return out


def describe(s: PrintSettings) -> str:
    """One line for logs and the page: only what differs from as-inverted."""
    ch = s.changed()
    if not ch:
        return "as inverted"
    parts = []
    if "exposure" in ch:
        parts.append(f"exposure {s.exposure:+.2f} EV")
    if "temperature" in ch or "tint" in ch:
        parts.append(f"WB {s.temperature:.0f} K tint {s.tint:+.0f}")
    if "contrast" in ch:
        parts.append(f"contrast {s.contrast:.2f}")
    if "black" in ch or "white" in ch:
        parts.append(f"points {s.black:.3f}-{s.white:.3f}")
    return ", ".join(parts)


# -- command-line flags (station invert, station export-lut) -----------------------------------
FLAG = {"exposure": "--exposure", "temperature": "--wb", "tint": "--wb", "contrast": "--contrast",
        "black": "--black", "white": "--white"}


def add_arguments(parser) -> None:
    """The print's flags, shared by the commands that make positives."""
    g = parser.add_argument_group("print (applied after the inversion; default: as inverted)")
    g.add_argument("--exposure", type=float, metavar="EV", help="exposure in stops (+1 doubles the light; -5..5)")
    g.add_argument("--wb", metavar="TEMP[,TINT]",
                   help="white balance: the light the picture is corrected for, in K (6500 = as inverted; higher "
                        "= warmer), and tint (+ magenta, - green; -100..100)")
    g.add_argument("--contrast", type=float, metavar="C", help="contrast about mid grey (1 = as inverted; 0.25..4)")
    g.add_argument("--black", type=float, metavar="LEVEL", help="sRGB level (0..0.5) that becomes black")
    g.add_argument("--white", type=float, metavar="LEVEL", help="sRGB level (0.5..1) that becomes white")


def from_args(args, base: PrintSettings | None = None) -> PrintSettings:
    """The settings the flags give (over `base`); PrintError names the flag."""
    data = (base or IDENTITY).to_dict()
    for k in ("exposure", "contrast", "black", "white"):
        if getattr(args, k, None) is not None:
            data[k] = getattr(args, k)
    if getattr(args, "wb", None) is not None:
        try:
            t, tint = parse_wb(args.wb)
        except PrintError as exc:
            raise PrintError("--wb", exc.problem) from None
        data["temperature"] = t
        if tint is not None:
            data["tint"] = tint
    try:
        return PrintSettings(**data)
    except PrintError as exc:
        raise PrintError(FLAG.get(exc.key, exc.key), exc.problem) from None


def validate_print_config(obj) -> list[str]:
    """`print:` in the station's YAML (config.PLUGIN_SECTIONS): [] or one line "print.KEY: problem"."""
    try:
        PrintSettings.from_dict(obj or {}, "print")
    except PrintError as exc:
        return [str(exc)]
    return []
