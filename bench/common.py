"""What every benchmark script shares: one JSON line per figure, with date and machine."""

from __future__ import annotations

import json
import os
import platform
import time


def emit(**fields: object) -> None:
    """Print one result as a JSON line, stamped with the date and the machine."""
    fields.setdefault("date", time.strftime("%Y-%m-%d"))
    fields.setdefault("machine", f"{platform.machine()}, {os.cpu_count()} cores")
    print(json.dumps(fields, ensure_ascii=False), flush=True)
