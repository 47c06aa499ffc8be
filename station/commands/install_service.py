"""`station install-service`: the systemd unit, the udev rules, the user and the config.

Puts `systemd/station.service` (ExecStart pointed at this Python, ReadWritePaths
at the configured folders) in /etc/systemd/system, `systemd/99-station.rules`
in /etc/udev/rules.d, `config/station.yaml` in /etc/station (if absent), creates
the system user `station`, then reloads systemd and udev.  `--dry-run` prints
what it would do and the unit it would write; `--root DIR` installs under DIR
(for packaging and tests; no user, no reloads).

The unit runs as the service user, so everything ExecStart needs (the interpreter,
the real file it links to, the venv with the packages, the source for PYTHONPATH)
must be readable by that user: a venv under /root (mode 0700) is not.  Such an install
is refused, before anything is written, with the folder in the way and the fix (a venv
under /opt/station or /usr/local); `--python` names the interpreter the unit runs.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def register(subparsers) -> None:
    p = subparsers.add_parser("install-service", help="install the systemd unit, udev rules, user and config")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    p.add_argument("--root", metavar="DIR", default="/", help="install under DIR (packaging; no user, no reload)")
    p.add_argument("--config", metavar="FILE", help="config whose folders the unit may write (default: the shipped one)")
    p.add_argument("--user", default="station", help="service user and group (default: station)")
    p.add_argument("--python", metavar="PATH", help="the interpreter the unit runs (default: this one); it and its "
                   "venv must be readable by the service user")
    p.set_defaults(func=run)


def render_unit(config_path: str = "/etc/station/station.yaml", rw_paths=("/srv/station",), user: str = "station",
                python: str | None = None) -> str:
    text = (ROOT / "systemd" / "station.service").read_text()
    python = python or sys.executable
    out = []
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={python} -m station run --config {config_path}"
        elif line.startswith("ReadWritePaths="):
            line = "ReadWritePaths=" + " ".join(str(p) for p in rw_paths)
        elif line.startswith("User="):
            line = f"User={user}"
        elif line.startswith("Group="):
            line = f"Group={user}"
        elif line.startswith("Documentation="):
            line = f"Documentation=file://{ROOT / 'docs' / 'DAEMON.md'}"
        out.append(line)
    out.insert(out.index("Environment=PYTHONUNBUFFERED=1") + 1, f"Environment=PYTHONPATH={ROOT}")
    return "\n".join(out) + "\n"


SERVICE_PATHS = {"incoming": "/srv/station/incoming", "output": "/srv/station/positives"}


def service_config_text() -> str:
    """The shipped default config with the service's folders (/srv/station/...)."""
    out = []
    for line in (ROOT / "config" / "station.yaml").read_text().splitlines():
        stripped = line.lstrip()
        for key, path in SERVICE_PATHS.items():
            if stripped.startswith(f"{key}:") and line.startswith("  "):
                comment = line[line.index("#"):] if "#" in line else ""
                line = f"  {key}: {path}".ljust(38) + comment
        out.append(line)
    return "\n".join(out) + "\n"


def _rw_paths(cfg_file: Path | None) -> list[str]:
    from station.config import load, validate

    try:
        if cfg_file:
            cfg = load(str(cfg_file), check_paths=False)
        else:
            import yaml

            cfg = validate(yaml.safe_load(service_config_text()), check_paths=False)
    except Exception:
        return ["/srv/station"]
    paths = []
    for k in ("incoming", "output"):
        p = str(cfg["paths"][k])
        if not p.startswith("~"):
            paths.append(p)
    return paths or ["/srv/station"]


def _ids(user: str) -> tuple[int | None, set[int]]:
    """The user's uid and gids, or (None, {}) when the user does not exist (yet)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None, set()
    gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    return pw.pw_uid, gids


def _allowed(st: os.stat_result, uid, gids, bits: int) -> bool:
    """`bits` (an rwx triple, e.g. 5 = r-x) granted to uid/gids by st's mode."""
    if uid == 0:
        return True
    if uid is not None and st.st_uid == uid:
        return (st.st_mode >> 6) & bits == bits
    if st.st_gid in gids:
        return (st.st_mode >> 3) & bits == bits
    return st.st_mode & bits == bits


def unreadable(path: Path, user: str, bits: int = 4) -> str | None:
    """Why `user` cannot reach and read `path` (a folder it cannot enter on the way, or the
    file itself), or None when it can."""
    uid, gids = _ids(user)
    path = Path(os.path.abspath(path))
    for d in [*reversed(path.parents)]:
        try:
            st = os.stat(d)
        except OSError as exc:
            return f"{d}: {exc.strerror}"
        if not _allowed(st, uid, gids, 1):
            return (f"{d} (mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)}) cannot be entered "
                    f"by the service user {user!r}")
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not _allowed(st, uid, gids, 5 if stat.S_ISDIR(st.st_mode) else bits):
        return f"{path} (mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)}) cannot be read by the service user {user!r}"
    return None


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def service_access_problem(python: str, user: str) -> str | None:
    """Why the unit could not start as `user` with `python` (None: it can): every path
    ExecStart needs, checked for the service user."""
    need = [(Path(python), 5), (Path(os.path.realpath(python)), 5), (ROOT / "station" / "__init__.py", 4)]
    try:  # the venv (its packages) and the base interpreter's standard library
        r = subprocess.run([python, "-c", "import os, sys, numpy; print(sys.prefix); print(os.__file__); "
                            "print(numpy.__file__)"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            return f"{python} cannot import the station's packages (numpy): install station into that venv first"
        need += [(Path(ln), 4) for ln in r.stdout.split()[:3]]
    except OSError as exc:
        return f"{python}: {exc.strerror}"
    for p, bits in need:
        why = unreadable(p, user, bits)
        if why:
            return why
    return None


def run(args) -> int:
    root = Path(args.root)
    real = str(root) == "/"
    etc_cfg = Path("/etc/station/station.yaml")
    python = args.python or sys.executable
    problem = service_access_problem(python, args.user)
    if problem:
        print(f"station install-service: refusing: the unit would run {python} as {args.user!r}, which cannot "
              f"start: {problem}. Fix: make a venv the service user can read, e.g. `sudo python3 -m venv "
              f"/opt/station/venv && sudo /opt/station/venv/bin/pip install {ROOT}`, then run "
              f"`sudo /opt/station/venv/bin/station install-service` (or pass --python)", file=sys.stderr)
        return 2
    rw = _rw_paths(Path(args.config) if args.config else None)
    unit = render_unit(str(etc_cfg), rw, args.user, python)
    cfg_text = Path(args.config).read_text() if args.config else service_config_text()
    steps = [
        ("write", root / "etc/systemd/system/station.service", unit),
        ("copy", root / "etc/udev/rules.d/99-station.rules", ROOT / "systemd" / "99-station.rules"),
        ("write-if-absent", root / str(etc_cfg).lstrip("/"), cfg_text),
    ]
    for d in rw:
        steps.append(("mkdir", root / d.lstrip("/"), None))
    cmds = []
    if real:
        cmds = [
            ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/station", "--shell", "/usr/sbin/nologin",
             args.user],
            ["systemctl", "daemon-reload"],
            ["udevadm", "control", "--reload"],
            ["udevadm", "trigger", "--subsystem-match=usb", "--subsystem-match=input"],
        ]
    if args.dry_run:
        for kind, dest, src in steps:
            print(f"{kind:15s} {dest}" + (f"  (from {src})" if kind == "copy" else ""))
        for c in cmds:
            print("run             " + " ".join(c))
        print("\n# --- station.service ---")
        print(unit, end="")
        return 0
    for kind, dest, src in steps:
        if kind == "mkdir":
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "write-if-absent" and dest.exists():
            print(f"kept            {dest} (exists)")
            continue
        if kind.startswith("write"):
            dest.write_text(src)
        else:
            shutil.copyfile(src, dest)
        print(f"installed       {dest}")
    for c in cmds:
        if c[0] == "useradd":
            if subprocess.run(["getent", "passwd", args.user], capture_output=True).returncode == 0:
                continue
        r = subprocess.run(c, capture_output=True, text=True)
        print(("ran             " if r.returncode == 0 else "FAILED          ") + " ".join(c)
              + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))
    for kind, dest, _ in steps:
        if kind == "mkdir":
            dest.mkdir(parents=True, exist_ok=True)
            if real:
                subprocess.run(["chown", f"{args.user}:{args.user}", str(dest)], capture_output=True)
                dest.chmod(0o2775)
            print(f"folder          {dest}")
    if real:
        print("next: systemctl enable --now station  (journalctl -u station -f to watch)")
    return 0
