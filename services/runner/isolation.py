"""Keeping jobs away from the runner, from each other and from the machine.

What a job can and cannot do, in a worker started by ``worker_process`` on
Linux:

- It cannot read the runner's environment or memory, where the Vault token
  lives: the runner calls :func:`make_process_undumpable`, so
  ``/proc/<runner>/environ`` and ``/proc/<runner>/mem`` need ``CAP_SYS_PTRACE``,
  and workers drop every capability (and set ``no_new_privs``) even when the
  runner runs as root. Workers are undumpable too, so a job cannot read a
  sibling worker's memory either.
- It inherits no secret: a worker's environment is built from scratch
  (:func:`worker_environment`); its only secret is the credential of the run
  it is serving.
- It cannot exhaust memory: ``RLIMIT_DATA`` caps what the worker may allocate
  (Linux 4.7 and later count anonymous mappings in it; unlike ``RLIMIT_AS``
  it ignores address space reserved but never made writable, such as each
  thread's malloc arena), so a bomb gets ``MemoryError``; core dumps are off.
  The limit is per process: each process a job starts has one of its own.
- Each run starts from a fresh namespace, working directory, ``HOME`` and
  ``TMPDIR``, and a reset ``os.environ``.

What it still can do, because it is Python code running as the runner's user:

- Monkeypatch modules in its worker, and so see the later runs that worker
  serves, credentials included. (A thread or process it leaves running gets
  the worker replaced before its next run.) Workers are also replaced after
  a number of runs and when they grow, which narrows the window without
  closing it: one runner deployment should serve one project's jobs, or jobs
  that trust each other.
- Signal, or read the files of, other processes of the same user. Run the
  runner as a dedicated non-root user; as root, a job without capabilities
  can still read files owned by root.
- Fill the disk through its temporary directory, reach the network, and start
  processes that leave its process group with ``setsid``: those outlive the
  worker, which is replaced once it sees them. Put the runner in a container
  with a size-limited scratch volume, a network policy and a process limit.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import threading
from collections.abc import Mapping
from functools import cache

_IS_LINUX = sys.platform == "linux"

# From <linux/prctl.h> and <linux/capability.h>.
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_MAX_CAPABILITIES = 64

_INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL")


class _CapabilityHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapabilitySet(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def make_process_undumpable() -> None:
    """Stop processes of the same user from reading this process's memory.

    Call it first thing in the runner's ``main()``: ``/proc/<pid>/mem``,
    ``environ`` and ptrace then need ``CAP_SYS_PTRACE``, which workers drop,
    and the process leaves no core dump. Does nothing outside Linux.

    Raises:
        OSError: The kernel refused.
    """
    if _IS_LINUX:
        _prctl(_PR_SET_DUMPABLE, 0)


def worker_environment(home: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a worker: nothing else of the runner's leaks in.

    Args:
        home: The worker's own directory, its ``HOME`` and ``TMPDIR``.
        extra: Variables the runner chose to give every job.

    Returns:
        ``PATH``, ``LANG`` and ``LC_ALL`` as the runner has them, ``extra``,
        then ``HOME`` and ``TMPDIR``.
    """
    environment = {
        name: os.environ[name] for name in _INHERITED_VARIABLES if name in os.environ
    }
    environment.setdefault("PATH", os.defpath)
    environment.update(extra)
    environment["HOME"] = environment["TMPDIR"] = home
    return environment


def confine_worker(memory_limit_bytes: int, runner_pid: int) -> None:
    """Called by a worker on itself before it serves a run.

    The worker dies with the runner, inherits every orphan of its
    descendants, allocates at most ``memory_limit_bytes`` beyond what it uses
    now, leaves no core dump, holds no capability and is undumpable. Outside
    Linux only the core dump and memory limits apply, and the memory limit
    only as far as the system enforces ``RLIMIT_DATA``.

    Raises:
        OSError: A confinement the worker must have could not be applied.
    """
    if _IS_LINUX:
        # Tied to the runner thread that started the worker: the pool starts
        # workers from one thread that lives as long as the pool.
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != runner_pid:
            os._exit(1)
        # Orphans of the job's processes become the worker's children, so a
        # process that double-forked to hide is still seen after the run.
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    data_limit = _data_bytes() + memory_limit_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))

    if _IS_LINUX:
        _drop_capabilities()
        _prctl(_PR_SET_DUMPABLE, 0)


def resident_bytes(pid: int) -> int | None:
    """How much memory a process has resident, or None where that is unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * _page_bytes()


def thread_count() -> int:
    """The threads of this process, including those Python does not know of."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _drop_capabilities() -> None:
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    # Emptying the bounding set needs CAP_SETPCAP, which only a root runner
    # has; without it nothing is in the set worth dropping anyway.
    for capability in range(_MAX_CAPABILITIES):
        _prctl(_PR_CAPBSET_DROP, capability, required=False)
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, required=False)

    header = _CapabilityHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    nothing = (_CapabilitySet * 2)()
    if _libc().capset(ctypes.byref(header), nothing) != 0:
        _raise_errno("capset")


def _data_bytes() -> int:
    """What the process has allocated now, as ``RLIMIT_DATA`` counts it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # Elsewhere, the peak resident size is the nearest measure at hand.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _prctl(option: int, value: int = 0, *, required: bool = True) -> bool:
    arguments = (ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if _libc().prctl(option, *arguments, ctypes.c_ulong(0)) == 0:
        return True
    if required:
        _raise_errno(f"prctl({option})")
    return False


def _raise_errno(call: str) -> None:
    number = ctypes.get_errno()
    raise OSError(number, f"{call} failed: {os.strerror(number)}")


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@cache
def _page_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE")
