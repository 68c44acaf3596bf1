"""Attacks on the sandbox, as code cells: what a hostile agent's actions look like, for isolation tests and benches.

Each is a program an agent could send with ``run_python``/``<execute>`` or ``<submit>``; none of them can
score, and a correct sandbox contains every one (its own limits, nothing left behind, other episodes unharmed).
"""

from __future__ import annotations

__all__ = ["BURN_IN_GRADER", "LEAVE_SPINNERS", "fork_fill_spin"]


def fork_fill_spin(sleep_s: float) -> str:
    """Fill /dev/shm in 8 MiB files, fork (new sessions) until refused with 64 MiB and a spinner in every child,
    print how far it got, then hold everything for `sleep_s` seconds."""
    return f"""
import os, time
shm = 0
try:
    for i in range(10000):
        with open('/dev/shm/f%d' % i, 'wb') as f:
            f.write(b'x' * (8 << 20))
        shm += 8
except OSError:
    pass
kids = 0
try:
    while True:
        if os.fork() == 0:
            os.setsid()
            try:
                block = b'x' * (64 << 20)
            except MemoryError:
                pass
            while True:
                pass
        kids += 1
except OSError:
    pass
print('shm', shm, 'MiB; forked', kids)
time.sleep({sleep_s!r})
"""


# Spinners that outlive the cell: a new-session subprocess and double-forked orphans.
LEAVE_SPINNERS = """
import os, subprocess
subprocess.Popen(['/usr/bin/python3', '-c', 'while True: pass'], start_new_session=True)
for _ in range(4):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                pass
        os._exit(0)
print('left spinners')
"""

# A submission that forks spinners inside the grader instead of solving anything.
BURN_IN_GRADER = "import os\nfor _ in range(16):\n    if os.fork() == 0:\n        while True:\n            pass\n"
