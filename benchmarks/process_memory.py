"""Memory of a process tree on Linux, for the app benchmarks: the resident set of a process and all its
descendants, and a thread that samples it to find the peak (workers come and go during a run)."""

from __future__ import annotations

from pathlib import Path


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


class TreeSampler:
    """Samples :func:`tree_rss_mb` on a thread; ``peak`` is the largest sum seen."""

    def __init__(self, pid: int, every_s: float = 0.1):
        import threading

        self.pid, self.every_s, self.peak = pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, tree_rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak
