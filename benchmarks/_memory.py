"""The one memory figure the benchmarks share: a process's peak resident memory (Linux)."""


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM of /proc/self/status), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")
