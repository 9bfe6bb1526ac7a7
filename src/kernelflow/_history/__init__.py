"""The run history: every flow run and task run record, kept on disk across sessions.

    store.py    the SQLite file: schema, migrations, batched writes, reads, bounds
    writer.py   the enqueue that runs do, and the one thread that writes
    rows.py     records turned into rows (in the writer thread)
    past.py     rows turned back into records (``PastFlowRun``), crashes told
    reading.py  listings and look-ups, for ``kernelflow.runs``
    text.py     plain-text forms (terminals, ``python -m kernelflow runs``)
    compare.py  two runs side by side (``kernelflow.runs.compare``)

Only ``writer`` is imported with kernelflow (it imports nothing heavy); the rest loads
when a run ends or the history is read.
"""

from __future__ import annotations

import os

FILE_NAME = "runs.sqlite3"
SESSION = os.urandom(4).hex()  # this process's runs, as the runs table shows them
HOST = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
