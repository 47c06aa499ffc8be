import os

if os.environ.get("STATION_FAULT_CLOCK_FILE"):  # tests only: a wall-clock offset (clock jumps)
    from station.fsutil import fault_clock

    fault_clock(os.environ["STATION_FAULT_CLOCK_FILE"])

from station.cli import main  # noqa: E402

raise SystemExit(main())
