"""`station install-service`: the systemd unit, the udev rules, the user and the config.

Puts `systemd/station.service` (ExecStart pointed at this Python, ReadWritePaths
at the configured folders) in /etc/systemd/system, `systemd/99-station.rules`
in /etc/udev/rules.d, `config/station.yaml` in /etc/station (if absent), creates
the system user `station`, then reloads systemd and udev.  `--dry-run` prints
what it would do and the unit it would write; `--root DIR` installs under DIR
(for packaging and tests; no user, no reloads).
"""
from __future__ import annotations

import shutil
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


def _rw_paths(cfg_file: Path | None) -> list[str]:
    from station.config import load

    try:
        cfg = load(str(cfg_file) if cfg_file else str(ROOT / "config" / "station.yaml"), check_paths=False)
    except Exception:
        return ["/srv/station"]
    paths = []
    for k in ("incoming", "output"):
        p = str(cfg["paths"][k])
        if not p.startswith("~"):
            paths.append(p)
    return paths or ["/srv/station"]


def run(args) -> int:
    root = Path(args.root)
    real = str(root) == "/"
    cfg_src = Path(args.config) if args.config else ROOT / "config" / "station.yaml"
    etc_cfg = Path("/etc/station/station.yaml")
    unit = render_unit(str(etc_cfg), _rw_paths(cfg_src if args.config else None), args.user)
    steps = [
        ("write", root / "etc/systemd/system/station.service", unit),
        ("copy", root / "etc/udev/rules.d/99-station.rules", ROOT / "systemd" / "99-station.rules"),
        ("copy-if-absent", root / str(etc_cfg).lstrip("/"), cfg_src),
    ]
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
            print(f"{kind:15s} {dest}" + ("" if kind == "write" else f"  (from {src})"))
        for c in cmds:
            print("run             " + " ".join(c))
        print("\n# --- station.service ---")
        print(unit, end="")
        return 0
    for kind, dest, src in steps:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "write":
            dest.write_text(src)
        elif kind == "copy-if-absent" and dest.exists():
            print(f"kept            {dest} (exists)")
            continue
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
    if real:
        print("next: systemctl enable --now station  (journalctl -u station -f to watch)")
    return 0
