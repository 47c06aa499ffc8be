"""`station roll new|calibrate|flatfield|print|auto|stop|show|list`: rolls of film.

`auto` and `stop` drive the running daemon's auto-roll (station/autoroll.py) over its
control socket (commands roll_auto / roll_stop), as `calibrate` does when a daemon runs."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    from station.commands.run import add_config_args

    p = sub.add_parser("roll", help="start a roll, shoot its blank film base, show it",
                       description="Rolls live in the configuration's folders (--config FILE, as `station run`: "
                                   "paths.state/rolls, RAWs in paths.incoming/<roll>/); the flags override them.")
    add_config_args(p)
    rs = p.add_subparsers(dest="roll_cmd", metavar="ACTION")
    n = rs.add_parser("new", help="start a new roll (its own folder, frame counter and manifest)")
    n.add_argument("--name", help="roll name (default roll-YYYYMMDD-NN)")
    n.add_argument("--stock", help='film stock, e.g. "Kodak Portra 400"')
    n.add_argument("--shot-date", metavar="DATE",
                   help="when the film was shot (YYYY, YYYY-MM or YYYY-MM-DD): written into the positives")
    n.add_argument("--film", choices=("colour", "bw", "slide", "auto"), default="colour",
                   help="film type: colour negative (default), bw (silver black-and-white negative), slide (E-6), "
                        "auto (detected per frame); the daemon renders the roll's frames as that")
    n.add_argument("--frames", type=int, default=36, help="frames on the roll (default 36)")
    n.add_argument("--pattern", default=None, help="file naming pattern (default {roll}/{frame:02d})")
    n.add_argument("--camera-model", help="camera, for the manifest (filled in from the first capture otherwise)")
    c = rs.add_parser("calibrate", help="shoot (or take from --file) the blank film-base frame of the roll")
    c.add_argument("--file", type=Path, help="use this frame of blank film instead of shooting one")
    c.add_argument("--camera", metavar="PORT", default=None,
                   help="shoot with this camera directly (default: through the running daemon, else auto)")
    c.add_argument("--roll", metavar="NAME", help="roll (default: the current one)")
    ff = rs.add_parser("flatfield", help="shoot (or take from FILE) a frame of the bare light: the roll's flat field",
                       description="A frame of the bare light source, no film in the holder, exposed bright but not "
                                   "clipped: its fall-off (light and lens) is divided out of every frame of the roll "
                                   "before the film base and the inversion.  Refused, with the reason, when film is "
                                   "in it, it is clipped or too dark.")
    ff.add_argument("file", nargs="?", type=Path, metavar="FILE", help="use this RAW of the bare light instead of shooting one")
    ff.add_argument("--camera", metavar="PORT", default=None,
                    help="shoot with this camera directly (default: through the running daemon, else auto)")
    ff.add_argument("--roll", metavar="NAME", help="roll (default: the current one)")
    pr = rs.add_parser("print", help="set the roll's print (exposure, white balance, contrast, points)",
                       description="Store the roll's print in its manifest; every frame of the roll without a print "
                                   "of its own gets it.  With a daemon running on --state, its frames are re-rendered.")
    pr.add_argument("--roll", metavar="NAME", help="roll (default: the current one)")
    pr.add_argument("--reset", action="store_true", help="start from as-inverted instead of the roll's current print")
    from station.pipeline.printing import add_arguments

    add_arguments(pr)
    a = rs.add_parser("auto", help="capture the whole roll on a motorised advancer (runs in the daemon)")
    a.add_argument("--frames", type=int, default=None, help="frames to capture (default: autoroll.frames in the config)")
    a.add_argument("--settle", type=float, default=None, help="seconds to wait after each advance (default: autoroll.settle)")
    rs.add_parser("stop", help="stop the running auto-roll after the step in hand (a capture in flight finishes)")
    s = rs.add_parser("show", help="print the roll's manifest")
    s.add_argument("name", nargs="?", help="roll (default: the current one)")
    rs.add_parser("list", help="list rolls")
    for action in rs.choices.values():  # the flags are taken after the action too: roll new --config F
        add_config_args(action, suppress=True)
    p.set_defaults(func=run, _parser=p)


def _store(args):
    from station.capture.roll import RollStore
    from station.commands.run import client_paths

    paths = client_paths(args)
    return None if paths is None else RollStore(paths["state"], paths["incoming"])


def run(args: argparse.Namespace) -> int:
    from station.capture.roll import DEFAULT_PATTERN, RollError

    store = _store(args)
    if store is None:
        return 2
    try:
        if args.roll_cmd == "new":
            roll = store.new(name=args.name, stock=args.stock, frames=args.frames, camera=args.camera_model,
                             pattern=args.pattern or DEFAULT_PATTERN, shot_date=args.shot_date, film=args.film)
            shot = f", shot {roll.data['shot_date']}" if roll.data.get("shot_date") else ""
            print(f"roll {roll.name}: {roll.data.get('stock') or 'unknown stock'}, {roll.data['film']} film{shot}, "
                  f"{args.frames} frames")
            print(f"  frames go to {store.incoming / roll.rel_stem(1)}.<ext>, ...")
            print(f"  manifest {roll.manifest_path}")
            return 0
        if args.roll_cmd == "calibrate":
            return _calibrate(args, store)
        if args.roll_cmd == "flatfield":
            return _flatfield(args, store)
        if args.roll_cmd == "print":
            return _print(args, store)
        if args.roll_cmd in ("auto", "stop"):
            return _auto(args)
        if args.roll_cmd == "show":
            roll = store.get(args.name) if args.name else store.current()
            if roll is None:
                print("station roll: no current roll (start one with `station roll new`)", file=sys.stderr)
                return 1
            print(json.dumps(roll.data, indent=2))
            return 0
        if args.roll_cmd == "list":
            cur = store.current()
            for name in store.names():
                r = store.get(name)
                mark = "*" if cur and cur.name == name else " "
                shot = f", shot {r.data['shot_date']}" if r.data.get("shot_date") else ""
                print(f"{mark} {name}  {r.data.get('stock') or '-'}  {r.data.get('film') or 'colour'}{shot}  "
                      f"{r.frame_count}/{r.data.get('frames_expected') or '?'} frames")
            return 0
    except RollError as exc:
        print(f"station roll: {exc}", file=sys.stderr)
        return 2
    args._parser.print_help()
    return 2


def _chosen_roll(args, store, who: str):
    """The roll a subcommand works on (--roll NAME, else the current one), or None after
    saying so on stderr."""
    roll = store.get(args.roll) if args.roll else store.current()
    if roll is None:
        print(f"{who}: no current roll (start one with `station roll new`)", file=sys.stderr)
    return roll


def _print(args, store) -> int:
    from station.pipeline.printing import PrintError, describe, from_args

    roll = _chosen_roll(args, store, "station roll print")
    if roll is None:
        return 1
    try:
        settings = from_args(args, None if args.reset else roll.print_settings())
    except PrintError as exc:
        print(f"station roll print: {exc}", file=sys.stderr)
        return 2
    sock = _daemon_socket(args)
    if sock is not None:
        from station.control import ControlError, request

        try:
            res = request(sock, "set_print", roll=roll.name, settings=settings.to_dict(), timeout=30)
        except ControlError as exc:
            print(f"station roll print: {exc}", file=sys.stderr)
            return 1
        print(f"roll {roll.name}: print {describe(settings)}; re-rendering {len(res.get('rerender', []))} frame(s)")
        return 0
    roll.set_print(settings)
    print(f"roll {roll.name}: print {describe(settings)} (manifest {roll.manifest_path})")
    return 0


def _reference_frame(args, roll, who: str, store_it, command: str, shot: str, command_kw: dict | None = None):
    """The frame a roll's calibration measures (blank film, the bare light): from FILE, through
    the running daemon's camera (`command`), or shot directly with the camera.  Returns
    (path that `store_it(data, ext, source=...)` stored, None), (None, the daemon's answer),
    or an exit status after one line on stderr."""
    from station.capture.camera import CameraError
    from station.capture.names import sniff

    if args.file:
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            print(f"{who}: {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        kind = sniff(data, args.file.name)
        return store_it(data, kind.ext if kind.kind != "unknown" else args.file.suffix.lower(),
                        source=f"file {args.file.name}"), None
    if not getattr(args, "camera", None) and _daemon_socket(args) is not None:
        from station.control import ControlError, request

        try:
            return None, request(_daemon_socket(args), command, timeout=60, **(command_kw or {}))
        except ControlError as exc:
            print(f"{who}: {exc}", file=sys.stderr)
            return 1
    from station.capture.control import capture_direct

    try:
        files = capture_direct(args.camera or "auto", roll.folder, namer=lambda info: shot + info.kind.ext)
    except CameraError as exc:
        print(f"{who}: {exc}", file=sys.stderr)
        return 1
    raw = next((f for f in files if f.kind == "raw"), files[0])
    path = store_it(raw.path.read_bytes(), raw.path.suffix, source="shot")
    for f in files:
        f.path.unlink(missing_ok=True)
    return path, None


def _calibrate(args, store) -> int:
    roll = _chosen_roll(args, store, "station roll calibrate")
    if roll is None:
        return 1
    if roll.data.get("film") == "slide":  # its clear highlights are its white; unexposed slide film is black
        print(f"station roll calibrate: roll {roll.name} is a slide roll: a slide has no film base to calibrate "
              "(a blank of it is black)", file=sys.stderr)
        return 2
    got = _reference_frame(args, roll, "station roll calibrate", roll.set_base, "calibrate", "base-shot")
    if isinstance(got, int):
        return got
    path, res = got
    if res is not None:
        print(f"roll {res['roll']}: film base frame {res['file']}")
        print("  base colour (linear camera RGB): " + ", ".join(f"{v:.4f}" for v in res["base"]))
        return 0
    data = store.get(roll.name).data
    base = data.get("base") or {}
    if base.get("rgb") and base.get("file") == path.name:
        print(f"roll {roll.name}: film base frame {path}")
        print("  base colour (linear camera RGB): " + ", ".join(f"{v:.4f}" for v in base["rgb"]))
        return 0
    print(f"station roll calibrate: {path}: refused: {data.get('base_error', 'unknown reason')}"
          + (f" (the roll keeps its earlier blank {base['file']})" if base.get("rgb") else ""), file=sys.stderr)
    return 1


def _flatfield(args, store) -> int:
    name = "station roll flatfield"
    roll = _chosen_roll(args, store, name)
    if roll is None:
        return 1
    got = _reference_frame(args, roll, name, roll.set_flat, "flatfield", "flat-shot", {"roll": roll.name})
    if isinstance(got, int):
        return got
    path, res = got
    if res is not None:
        print(f"roll {res['roll']}: flat field {res['id']} from {res['file']} "
              f"(corners {100 * res['falloff']:.1f}% darker than the centre)")
        return 0
    data = store.get(roll.name).data
    flat = data.get("flatfield") or {}
    if flat.get("file") == path.name and not data.get("flatfield_error"):
        print(f"roll {roll.name}: flat field {flat['id']} from {path} "
              f"(corners {100 * flat['falloff']:.1f}% darker than the centre)")
        return 0
    print(f"{name}: {path}: refused: {data.get('flatfield_error', 'unknown reason')}"
          + (f" (the roll keeps its earlier flat field {flat['id']})" if flat.get("id") else ""), file=sys.stderr)
    return 1


def _auto(args) -> int:
    """`roll auto` / `roll stop`: commands to the running daemon's auto-roll."""
    from station.commands.run import daemon_socket
    from station.control import ControlError, request

    name = f"station roll {args.roll_cmd}"
    if args.roll_cmd == "auto":
        if args.frames is not None and args.frames < 1:
            print(f"{name}: --frames must be 1 or more, got {args.frames}", file=sys.stderr)
            return 2
        if args.settle is not None and args.settle < 0:
            print(f"{name}: --settle must be 0 or more seconds, got {args.settle}", file=sys.stderr)
            return 2
    sock = _daemon_socket(args) or daemon_socket(args)
    if sock is None:
        return 2
    if not Path(sock).exists():
        print(f"{name}: no running station daemon (no control socket at {sock}); the auto-roll runs in the "
              "daemon: start it with `station run` (or give its --state)", file=sys.stderr)
        return 1
    try:
        if args.roll_cmd == "auto":
            kw = {k: v for k, v in (("frames", args.frames), ("settle", args.settle)) if v is not None}
            snap = request(sock, "roll_auto", timeout=30, **kw)
        else:
            before = request(sock, "roll_auto_status", timeout=30)
            if not before.get("running"):
                print(f"{name}: no auto-roll is running" + (f" (the last one: {before['reason']}, frame "
                      f"{before.get('frame')} of {before.get('frames')})" if before.get("reason") else ""))
                return 0
            snap = request(sock, "roll_stop", timeout=30)
    except ControlError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    if args.roll_cmd == "auto":
        print(f"auto-roll started: {snap.get('frames')} frames, settle {snap.get('settle')} s "
              "(progress: `station status`; stop: `station roll stop` or the pedal)")
    else:
        print(f"auto-roll stopping after the step in hand (frame {snap.get('frame')} of {snap.get('frames')})")
    return 0


def _daemon_socket(args):
    """The running daemon's control socket for this configuration, or None when none answers."""
    import socket as _socket

    from station.commands.run import daemon_socket

    path = daemon_socket(args)
    if path is None or not path.exists():
        return None
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return path
    except OSError:
        return None
    finally:
        s.close()
