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


def run(args) -> int:
    root = Path(args.root)
    real = str(root) == "/"
    etc_cfg = Path("/etc/station/station.yaml")
    rw = _rw_paths(Path(args.config) if args.config else None)
    unit = render_unit(str(etc_cfg), rw, args.user)
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
