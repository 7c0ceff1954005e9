#!/usr/bin/env python3
"""Reference fire times from croniter, for the differential test in croniter.rs.

Reads one JSON document on stdin:

    {"cases": [{"expr": "30 2 * * *", "tz": "Europe/Berlin", "start": 1774569600, "count": 8}, ...]}

where `start` is a Unix time in seconds, and writes one JSON document on stdout:

    {"croniter": "7.0.0", "results": [{"times": [1774661400, ...], "error": null}, ...]}

with, for each case in order, the next `count` fire times strictly after `start` (Unix seconds),
evaluated on the wall clock of the IANA zone `tz`. Six-field expressions have their seconds field
first. `times` is cut short, and `error` names croniter's exception, when croniter stops early
(an expression that never fires). Exits with status 3 and a message on stderr when croniter is
not installed.
"""

import json
import sys
from datetime import datetime
from importlib import metadata
from zoneinfo import ZoneInfo

try:
    from croniter import CroniterBadDateError, croniter
except ImportError:
    sys.stderr.write(
        "croniter is not installed for this python3; install it with\n"
        "    python3 -m pip install croniter==7.0.0\n"
    )
    sys.exit(3)


def fire_times(case):
    zone = ZoneInfo(case["tz"])
    start = datetime.fromtimestamp(case["start"], tz=zone)
    expr = case["expr"]
    it = croniter(expr, start, second_at_beginning=len(expr.split()) == 6)
    times = []
    try:
        for _ in range(case["count"]):
            times.append(int(it.get_next(datetime).timestamp()))
    except CroniterBadDateError as e:
        return {"times": times, "error": f"{type(e).__name__}: {e}"}
    return {"times": times, "error": None}


def main():
    request = json.load(sys.stdin)
    results = [fire_times(case) for case in request["cases"]]
    json.dump({"croniter": metadata.version("croniter"), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
