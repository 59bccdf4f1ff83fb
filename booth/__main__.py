from booth.station.stops import STOPS

STOPS.install()  # before the rest of the booth is imported: a stop while it starts is clean

from booth.cli import main  # noqa: E402

raise SystemExit(main())
