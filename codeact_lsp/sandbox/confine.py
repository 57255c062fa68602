"""Kernel confinement the worker installs on itself: Landlock, seccomp-BPF, a private tmpfs, PDEATHSIG.

Stdlib only (ctypes, raw syscalls), because the worker imports it by path into whatever interpreter
runs the tools, before any third-party code is importable. The parent imports it too, to probe what
the kernel offers. Every function raises ``OSError`` when the kernel refuses, so the worker can say
exactly which layer is missing instead of failing silently.
"""

from __future__ import annotations

import ctypes
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # not `typing` at run time: the worker imports this module on its cold start
    _Op = tuple[int, int, int | str, int | str]

_MACHINE = os.uname().machine  # not `platform`: it imports `re` (cold-start time)
_SIGKILL = 9

# --- syscall numbers (x86_64 only: a hand-written seccomp filter is architecture specific, and an
# untested table for another architecture would be worse than reporting "not enforced") ----------
_NR: dict[str, int] = {
    "ioctl": 16,
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "socket": 41,
    "connect": 42,
    "accept": 43,
    "sendto": 44,
    "sendmsg": 46,
    "bind": 49,
    "listen": 50,
    "socketpair": 53,
    "setsockopt": 54,
    "clone": 56,
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "kill": 62,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "fcntl": 72,
    "readlink": 89,
    "chmod": 90,
    "fchmod": 91,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "ptrace": 101,
    "syslog": 103,
    "setuid": 105,
    "setgid": 106,
    "setreuid": 113,
    "setregid": 114,
    "setgroups": 116,
    "setresuid": 117,
    "setresgid": 119,
    "setfsuid": 122,
    "setfsgid": 123,
    "rt_sigqueueinfo": 129,
    "utime": 132,
    "uselib": 134,
    "personality": 135,
    "getpriority": 140,
    "setpriority": 141,
    "sched_setparam": 142,
    "sched_getparam": 143,
    "sched_setscheduler": 144,
    "sched_getscheduler": 145,
    "sched_rr_get_interval": 148,
    "vhangup": 153,
    "modify_ldt": 154,
    "pivot_root": 155,
    "prctl": 157,
    "adjtimex": 159,
    "setrlimit": 160,
    "chroot": 161,
    "sync": 162,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "setxattr": 188,
    "lsetxattr": 189,
    "fsetxattr": 190,
    "getxattr": 191,
    "lgetxattr": 192,
    "fgetxattr": 193,
    "listxattr": 194,
    "llistxattr": 195,
    "flistxattr": 196,
    "removexattr": 197,
    "lremovexattr": 198,
    "fremovexattr": 199,
    "tkill": 200,
    "sched_setaffinity": 203,
    "sched_getaffinity": 204,
    "io_setup": 206,
    "io_destroy": 207,
    "io_getevents": 208,
    "io_submit": 209,
    "io_cancel": 210,
    "lookup_dcookie": 212,
    "semtimedop": 220,
    "clock_settime": 227,
    "tgkill": 234,
    "utimes": 235,
    "mq_open": 240,
    "mq_unlink": 241,
    "mq_timedsend": 242,
    "mq_timedreceive": 243,
    "mq_notify": 244,
    "mq_getsetattr": 245,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "ioprio_set": 251,
    "ioprio_get": 252,
    "inotify_init": 253,
    "inotify_add_watch": 254,
    "migrate_pages": 256,
    "fchownat": 260,
    "futimesat": 261,
    "readlinkat": 267,
    "fchmodat": 268,
    "unshare": 272,
    "get_robust_list": 274,
    "move_pages": 279,
    "utimensat": 280,
    "accept4": 288,
    "inotify_init1": 294,
    "rt_tgsigqueueinfo": 297,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "fanotify_mark": 301,
    "prlimit64": 302,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "syncfs": 306,
    "sendmmsg": 307,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "sched_setattr": 314,
    "sched_getattr": 315,
    "memfd_create": 319,
    "kexec_file_load": 320,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    "io_pgetevents": 333,
    "uretprobe": 335,
    "pidfd_send_signal": 424,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_open": 434,
    "clone3": 435,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "memfd_secret": 447,
    "process_mrelease": 448,
    "cachestat": 451,
    "fchmodat2": 452,
    "statmount": 457,
    "listmount": 458,
    "lsm_set_self_attr": 460,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_getattr": 468,
    "file_setattr": 469,
    "listns": 470,
}

# Every syscall number up to here was reviewed (x86_64, Linux 6.18: the last is listns). Anything
# above it fails closed with ENOSYS, so a syscall added by a newer kernel is not allowed by default.
MAX_REVIEWED_NR = 470

# Denied outright with EPERM: processes, exec, tracing, namespaces and mounts, kernel attack surface.
_DENY = [
    "socket",
    "connect",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "tkill",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "process_madvise",
    "process_mrelease",
    "setrlimit",
    "migrate_pages",
    "move_pages",
    "unshare",
    "setns",
    "listns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "syslog",
    "acct",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "modify_ldt",
    "uselib",
    "uretprobe",
    "vhangup",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "name_to_handle_at",
    "open_by_handle_at",
    "personality",
    "lsm_set_self_attr",
    # Memory the address-space limit does not see: a memfd is a file in RAM (240 of them held
    # 1.9 GB in a 256 MB sandbox), and System V IPC objects also outlive the worker in the
    # host's IPC namespace (a covert channel between runs). Python needs neither.
    "memfd_create",
    "memfd_secret",
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    # watching files outside the sandbox (Landlock does not mediate inotify): a side channel
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "fanotify_init",
    "fanotify_mark",
    # the page cache of files outside scratch (what the server or another run read lately)
    "cachestat",
    # Linux AIO: every context takes from the host-wide fs.aio-max-nr (a DoS for databases)
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_submit",
    "io_cancel",
    "io_pgetevents",
    # the host's mount table (paths of every mount): Landlock does not hide it
    "statmount",
    "listmount",
    # host-wide state a worker that kept root's capabilities (no user namespace) could change
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "sync",
    "syncfs",
    # Other processes' scheduling. Changing even our own is denied: a root worker could give
    # itself a real-time class or nice -20 and starve the server (same uid is no boundary).
    "setpriority",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setattr",
    "ioprio_set",
    # identities: a worker that kept root's capabilities could become any user
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    # Sockets may be socketpairs only, and address nothing outside the worker: no name of its
    # own (bind: squatting the abstract namespace), no listening, no peer by address (a host
    # pathname datagram socket), and no sendmsg at all (its address and its SCM_RIGHTS live in
    # memory the filter cannot read; descriptors in flight are kernel memory outside every
    # limit). Buffer sizes stay the kernel's defaults (setsockopt SO_SNDBUF up to wmem_max is
    # how a few hundred sockets pinned gigabytes).
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendmsg",
    "sendmmsg",
    "setsockopt",
]

# Syscalls that take a pid (or tid) as argument ARG: allowed for 0 (the caller) and our own pid
# only. The getters too: another process's scheduling, priority, limits or robust list say what
# it is doing (and let a snippet find the server's busy threads).
_SELF_PID_ARG = {
    "sched_setaffinity": 0,
    "sched_getaffinity": 0,
    "sched_getparam": 0,
    "sched_getscheduler": 0,
    "sched_rr_get_interval": 0,
    "sched_getattr": 0,
    "get_robust_list": 0,
}
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1

F_SETOWN = 8
F_SETSIG = 10
F_SETOWN_EX = 15
F_SETLEASE = 1024  # a lease on a read-only file outside stalls every writer of it for 45 s
F_NOTIFY = 1026  # dnotify: watching directories outside, like inotify
F_SETPIPE_SZ = 1031  # pipe buffers up to pipe-max-size: kernel memory outside RLIMIT_AS
_FCNTL_DENIED = (F_SETOWN, F_SETSIG, F_SETOWN_EX, F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ)

# Metadata of files outside scratch: Landlock does not mediate chmod/chown/utime/xattrs, so a
# sandboxed process could `chmod 0777` any file its user (or, for root, anyone) owns, anywhere.
# Made no-ops (success, nothing done) rather than errors: modes and times in scratch do not matter
# (noexec, nothing can be executed) and shutil.copy/copy2, tarfile... keep working.
_NOOP = [
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
]
# ENOTSUP, which shutil.copystat and others treat as "this filesystem has no xattrs". Reads too:
# the xattrs of files outside scratch (security labels, user.* notes) are not the snippet's to see.
# file_getattr/file_setattr (6.17) are the syscall form of the FS_IOC_FS[GS]ETXATTR ioctls.
_NOTSUP = [
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "setxattrat",
    "removexattrat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "getxattrat",
    "listxattrat",
    "file_getattr",
    "file_setattr",
]
EOPNOTSUPP = 95
ENOTTY = 25
EINVAL = 22
# Symlink targets outside scratch: Landlock checks opens, not lookups, so readlink() anywhere
# would answer. The filter cannot read the path, so readlink is refused everywhere (EINVAL, "not
# a symlink"); os.path.realpath through a symlink then fails, and the cost is documented.
_EINVAL = ["readlink", "readlinkat"]

# ioctl is an allowlist (fail closed): every filesystem has its own aliases of the flag, version
# and attribute ioctls (ext4, xfs, btrfs, f2fs...), and Landlock checks only device ioctls. These
# are what Python itself uses: isatty (TCGETS), terminal size, bytes readable/queued, blocking
# mode (socket.setblocking) and close-on-exec (os.set_inheritable). Anything else is ENOTTY, the
# kernel's own answer for "this descriptor has no such ioctl".
_IOCTL_ALLOWED = (
    0x5401,  # TCGETS
    0x5413,  # TIOCGWINSZ
    0x541B,  # FIONREAD
    0x5411,  # TIOCOUTQ
    0x5421,  # FIONBIO
    0x5450,  # FIONCLEX
    0x5451,  # FIOCLEX
)

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
# every namespace flag clone() accepts: a thread may not take any of them
CLONE_NS_MASK = 0x7E020000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

AF_UNIX = 1
EPERM = 1
ENOSYS = 38

_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

# classic BPF opcodes
_LD_ABS_W = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_AND = 0x54
_RET = 0x06

# Landlock
LL_EXECUTE = 1 << 0
LL_WRITE_FILE = 1 << 1
LL_READ_FILE = 1 << 2
LL_READ_DIR = 1 << 3
LL_REMOVE_DIR = 1 << 4
LL_REMOVE_FILE = 1 << 5
LL_MAKE_CHAR = 1 << 6
LL_MAKE_DIR = 1 << 7
LL_MAKE_REG = 1 << 8
LL_MAKE_SOCK = 1 << 9
LL_MAKE_FIFO = 1 << 10
LL_MAKE_BLOCK = 1 << 11
LL_MAKE_SYM = 1 << 12
LL_REFER = 1 << 13
LL_TRUNCATE = 1 << 14
LL_IOCTL_DEV = 1 << 15
LL_NET_BIND_TCP = 1 << 0
LL_NET_CONNECT_TCP = 1 << 1
LL_SCOPE_ABSTRACT_UNIX = 1 << 0
LL_SCOPE_SIGNAL = 1 << 1
_LL_RULE_PATH_BENEATH = 1
_LL_CREATE_RULESET_VERSION = 1
_LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _syscall(name: str, *args: object) -> int:
    lib = _lib()
    lib.syscall.restype = ctypes.c_long
    return int(lib.syscall(ctypes.c_long(_NR[name]), *args))


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    lib = _lib()
    _check(
        lib.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
        f"prctl({option})",
    )


def die_with_parent() -> None:
    """SIGKILL this process when the thread that spawned it exits (the pool's spawner thread)."""
    prctl(PR_SET_PDEATHSIG, _SIGKILL)


def seccomp_supported() -> bool:
    return _MACHINE == "x86_64"


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    if not seccomp_supported():  # the syscall numbers above are x86_64's
        return 0
    try:
        ret = _syscall("landlock_create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return ret if ret > 0 else 0


# ---------------------------------------------------------------------------------------------
# private scratch filesystem


TASK_UID_BASE = 1_900_000_000  # + the worker's pid: a real uid no account and no other worker has


def private_tmpfs(path: str, size_mb: int, max_files: int) -> None:
    """Mount a size-limited tmpfs over ``path`` in a new user+mount namespace of our own.

    This is what stops "fill the disk with many small files", which no rlimit can: an unprivileged
    process may own a user namespace and mount a tmpfs in it. Must run single-threaded.
    """
    lib = _lib()
    uid, gid = os.geteuid(), os.getegid()
    # A root server's worker is exempt from RLIMIT_NPROC, so its threads (each a pid of the whole
    # machine, with a kernel stack outside RLIMIT_AS) would have no cap without a pids cgroup. The
    # kernel exempts by *real* uid, and checks the capability in the initial namespace: a real
    # uid of the worker's own (effective uid still root, so file access is unchanged) plus this
    # user namespace (no capabilities outside it) make the limit apply, counted for this worker.
    apart = uid == 0 and os.getuid() == 0
    if apart:
        try:
            os.setresuid(TASK_UID_BASE + os.getpid(), 0, 0)
        except OSError:  # inside another user namespace (bubblewrap's) that uid is not mapped
            apart = False
    if lib.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWNS)) != 0:
        err = ctypes.get_errno()
        if apart:
            os.setresuid(0, 0, 0)
        raise OSError(err, f"unshare(user|mount): {os.strerror(err)}")
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"{gid} {gid} 1")
    _check(lib.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "mount private")
    opts = f"size={size_mb}m,nr_inodes={max_files},mode=0700,uid={uid},gid={gid}".encode()
    _check(
        lib.mount(
            b"tmpfs",
            os.fsencode(path),
            b"tmpfs",
            ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC),
            opts,
        ),
        "mount tmpfs",
    )
    os.chdir(path)  # the old cwd is the directory under the new mount


# ---------------------------------------------------------------------------------------------
# Landlock


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def landlock(
    read_paths: list[str], write_paths: list[str], rw_files: list[str], abi: int
) -> list[str]:
    """Restrict this thread (and everything it later creates) to the given paths.

    Read-only: ``read_paths``; everything but device creation: ``write_paths``; read+write on the
    single files ``rw_files`` (``/dev/null``). TCP bind/connect are denied (ABI >= 4) and signals and
    abstract unix sockets are scoped to the sandbox (ABI >= 6). Returns what was enforced.
    """
    if abi < 1:
        raise OSError(ENOSYS, "Landlock is not available")
    fs = (1 << 13) - 1  # ABI 1 rights
    if abi >= 2:
        fs |= LL_REFER
    if abi >= 3:
        fs |= LL_TRUNCATE
    if abi >= 5:
        fs |= LL_IOCTL_DEV
    net = (LL_NET_BIND_TCP | LL_NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("<QQQ", fs, net, scoped)
    elif abi >= 4:
        attr = struct.pack("<QQ", fs, net)
    else:
        attr = struct.pack("<Q", fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(
        _syscall("landlock_create_ruleset", buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
        "landlock_create_ruleset",
    )
    read = LL_READ_FILE | LL_READ_DIR
    write = fs & ~(LL_MAKE_CHAR | LL_MAKE_BLOCK | LL_EXECUTE)
    try:
        for paths, access in (
            (read_paths, read),
            (write_paths, write),
            (rw_files, read | LL_WRITE_FILE),
        ):
            for path in paths:
                _add_path_rule(ruleset, path, access & fs)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(
            _syscall("landlock_restrict_self", ctypes.c_int(ruleset), ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)
    done = ["filesystem"]
    if net:
        done.append("tcp")
    if scoped:
        done.append("signal-scope")
    return done


def _add_path_rule(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a granted path that does not exist grants nothing
    try:
        if not os.path.isdir(path):
            access &= _LL_FILE_RIGHTS
        attr = _PathBeneath(access, fd)
        _check(
            _syscall(
                "landlock_add_rule",
                ctypes.c_int(ruleset),
                ctypes.c_int(_LL_RULE_PATH_BENEATH),
                ctypes.byref(attr),
                ctypes.c_uint32(0),
            ),
            f"landlock_add_rule({path})",
        )
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# seccomp


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


def _arg_hi(i: int) -> int:
    return 16 + 8 * i + 4


def _block(nr: int, body: list[bytes]) -> list[bytes]:
    """`if nr == NR: body` (body always returns); A holds the syscall number on entry and exit."""
    return [_ins(_JEQ, nr, 0, len(body)), *body]


def _body(*ops: _Op | str) -> list[bytes]:
    """Assemble a block body; a str op is a label, and jt/jf may name a label (forward only)."""
    labels: dict[str, int] = {}
    code: list[_Op] = []
    for op in ops:
        if isinstance(op, str):
            labels[op] = len(code)
        else:
            code.append(op)

    def off(i: int, target: int | str) -> int:
        return target if isinstance(target, int) else labels[target] - i - 1

    return [_ins(c, k, off(i, jt), off(i, jf)) for i, (c, k, jt, jf) in enumerate(code)]


def _ret(value: int) -> _Op:
    return (_RET, value, 0, 0)


def _self_pid(arg: int, pid: int, deny: int) -> list[bytes]:
    """Allow when the (32-bit) pid argument is 0 (the caller) or our own pid."""
    return _body(
        (_LD_ABS_W, _arg_lo(arg), 0, 0),
        (_JEQ, 0, "ok", 0),
        (_JEQ, pid, "ok", 0),
        _ret(deny),
        "ok",
        _ret(_RET_ALLOW),
    )


def seccomp_program(pid: int) -> bytes:
    """The filter: deny the dangerous syscalls, allow signals only to ``pid`` (ourselves)."""
    allow = _ins(_RET, _RET_ALLOW)
    eperm = _ins(_RET, _RET_ERRNO | EPERM)
    deny = _RET_ERRNO | EPERM
    prog: list[bytes] = [
        _ins(_LD_ABS_W, 4),  # arch
        _ins(_JEQ, _AUDIT_ARCH_X86_64, 1, 0),
        _ins(_RET, _RET_KILL_PROCESS),
        _ins(_LD_ABS_W, 0),  # nr
        _ins(_JGE, 0x40000000, 0, 1),  # x32 ABI aliases
        _ins(_RET, _RET_KILL_PROCESS),
        # fail closed: a syscall newer than this review is unknown to glibc's callers anyway
        _ins(_JGE, MAX_REVIEWED_NR + 1, 0, 1),
        _ins(_RET, _RET_ERRNO | ENOSYS),
    ]
    for name in _DENY:
        prog += _block(_NR[name], [eperm])
    for name in _NOOP:
        prog += _block(_NR[name], [_ins(_RET, _RET_ERRNO | 0)])
    for name in _NOTSUP:
        prog += _block(_NR[name], [_ins(_RET, _RET_ERRNO | EOPNOTSUPP)])
    for name in _EINVAL:
        prog += _block(_NR[name], [_ins(_RET, _RET_ERRNO | EINVAL)])
    for name, arg in _SELF_PID_ARG.items():
        prog += _block(_NR[name], _self_pid(arg, pid, deny))
    # getpriority(PRIO_PROCESS, 0 | self) and ioprio_get(IOPRIO_WHO_PROCESS, 0 | self) only: not
    # another process, process group or user
    for name, which in (("getpriority", PRIO_PROCESS), ("ioprio_get", IOPRIO_WHO_PROCESS)):
        prog += _block(
            _NR[name],
            [
                _ins(_LD_ABS_W, _arg_lo(0)),
                _ins(_JEQ, which, 1, 0),
                eperm,
                *_self_pid(1, pid, deny),
            ],
        )
    # clone: threads only, and no namespace flags
    prog += _block(
        _NR["clone"],
        [
            _ins(_LD_ABS_W, _arg_lo(0)),
            _ins(_JSET, CLONE_THREAD, 0, 3),
            _ins(_AND, CLONE_NS_MASK),
            _ins(_JEQ, 0, 0, 1),
            allow,
            eperm,
        ],
    )
    # clone3 cannot be inspected (flags live in memory): ENOSYS makes glibc fall back to clone
    prog += _block(_NR["clone3"], [_ins(_RET, _RET_ERRNO | ENOSYS)])
    # signals: only to our own pid (Python's interrupt uses tgkill(self, main thread, SIGINT))
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        prog += _block(
            _NR[name],
            [_ins(_LD_ABS_W, _arg_lo(0)), _ins(_JEQ, pid, 0, 1), allow, eperm],
        )
    # prctl: not PR_SET_PDEATHSIG — clearing it lets a worker outlive a SIGKILLed server (with its
    # control pipe replaced by one of its own, nothing else would end it)
    prog += _block(
        _NR["prctl"],
        [_ins(_LD_ABS_W, _arg_lo(0)), _ins(_JEQ, PR_SET_PDEATHSIG, 0, 1), eperm, allow],
    )
    # fcntl: F_SETOWN/F_SETOWN_EX/F_SETSIG make the kernel send SIGIO/SIGURG to any pid of this
    # user (Landlock's signal scope covers it from ABI 6 only); leases, dnotify, pipe sizes above
    n = len(_FCNTL_DENIED)
    prog += _block(
        _NR["fcntl"],
        [
            _ins(_LD_ABS_W, _arg_lo(1)),
            *(_ins(_JEQ, cmd, n - i, 0) for i, cmd in enumerate(_FCNTL_DENIED)),
            allow,
            eperm,
        ],
    )
    n = len(_IOCTL_ALLOWED)
    prog += _block(
        _NR["ioctl"],
        [
            _ins(_LD_ABS_W, _arg_lo(1)),  # the kernel takes `unsigned int cmd`: low half only
            *(_ins(_JEQ, cmd, n - i, 0) for i, cmd in enumerate(_IOCTL_ALLOWED)),
            _ins(_RET, _RET_ERRNO | ENOTTY),
            allow,
        ],
    )
    # socketpair(AF_UNIX): an unconnected pair inside the process (asyncio's self-pipe); harmless
    prog += _block(
        _NR["socketpair"],
        [_ins(_LD_ABS_W, _arg_lo(0)), _ins(_JEQ, AF_UNIX, 0, 1), allow, eperm],
    )
    # sendto: to the connected peer only (what send() is); with an address, it would reach a
    # host socket by path
    prog += _block(
        _NR["sendto"],
        _body(
            (_LD_ABS_W, _arg_lo(4), 0, 0),
            (_JEQ, 0, 0, "no"),
            (_LD_ABS_W, _arg_hi(4), 0, 0),
            (_JEQ, 0, 0, "no"),
            _ret(_RET_ALLOW),
            "no",
            _ret(deny),
        ),
    )
    # prlimit64: reading our own limits is fine; changing them, or another process's, is not
    prog += _block(
        _NR["prlimit64"],
        _body(
            (_LD_ABS_W, _arg_lo(2), 0, 0),
            (_JEQ, 0, 0, "no"),
            (_LD_ABS_W, _arg_hi(2), 0, 0),
            (_JEQ, 0, 0, "no"),
            (_LD_ABS_W, _arg_lo(0), 0, 0),
            (_JEQ, 0, "ok", 0),
            (_JEQ, pid, "ok", "no"),
            "ok",
            _ret(_RET_ALLOW),
            "no",
            _ret(deny),
        ),
    )
    prog.append(allow)
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def seccomp(pid: int) -> None:
    """Install the filter on this thread (threads created afterwards inherit it)."""
    if not seccomp_supported():
        raise OSError(ENOSYS, f"no seccomp filter for {_MACHINE}")
    code = seccomp_program(pid)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.addressof(buf))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    lib = _lib()
    _check(
        lib.prctl(
            ctypes.c_int(PR_SET_SECCOMP),
            ctypes.c_ulong(SECCOMP_MODE_FILTER),
            ctypes.byref(prog),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
        "prctl(PR_SET_SECCOMP)",
    )
