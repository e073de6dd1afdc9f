"""core/flow.subflow is run by the engine itself; started as a process, it only says so."""

import sys

sys.stderr.write("core/flow.subflow runs inside the engine, not as a plugin process\n")
sys.exit(2)
