"""The attack suite: each attack runs inside a real sandbox and must be blocked.

Run per isolation backend; the per-backend count of blocked attacks is printed at the end of the
test session ("landlock: N/N blocked"). A leak fails its test and is listed by name.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ATTACK_RESULTS
from sandbox_helpers import Factory

from codeact_lsp.sandbox import ExecResult, Sandbox
from codeact_lsp.sandbox.backends import probe

CANARY = "canary-7f3a9c"
DISK_MB = 8
OUTPUT_KB = 64


@dataclass
class Env:
    tmp: Path
    canary: Path
    workspace_env: Path
    outside: Path
    tcp: socket.socket
    udp: socket.socket
    pid: int = field(default_factory=os.getpid)
    signals: list[int] = field(default_factory=list)

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    canary = tmp_path / "secret.txt"
    canary.write_text(CANARY)
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / ".env").write_text(f"OPENAI_API_KEY={CANARY}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    e = Env(tmp_path, canary, ws / ".env", outside, tcp, udp)
    old = signal.signal(signal.SIGUSR2, lambda s, f: e.signals.append(s))
    yield e
    signal.signal(signal.SIGUSR2, old)
    tcp.close()
    udp.close()


def leaked_text(r: ExecResult) -> str:
    return f"{r.stdout}{r.stderr}{r.value}"


def failed(r: ExecResult) -> bool:
    return r.error is not None


Check = Callable[[Sandbox, Env], Awaitable[bool]]
ATTACKS: dict[str, Check] = {}


def attack(fn: Check) -> Check:
    ATTACKS[fn.__name__] = fn
    return fn


@attack
async def read_etc_shadow(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("open('/etc/shadow').read()")
    return failed(r) and "root:" not in leaked_text(r)


@attack
async def read_etc_passwd(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("open('/etc/passwd').read()")
    return failed(r) and "root:" not in leaked_text(r)


@attack
async def read_canary_outside_scratch(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(f"print(open({str(e.canary)!r}).read())")
    return failed(r) and CANARY not in leaked_text(r)


@attack
async def read_workspace_dotenv(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(f"print(open({str(e.workspace_env)!r}).read())")
    return failed(r) and CANARY not in leaked_text(r)


@attack
async def list_root_directory(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("import os\nos.listdir('/')")
    return failed(r)


@attack
async def symlink_out_of_scratch(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        f"import os\nos.symlink({str(e.canary)!r}, 'link')\nprint(open('link').read())"
    )
    return failed(r) and CANARY not in leaked_text(r)


@attack
async def read_parent_environ(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(f"print(open('/proc/{e.pid}/environ', 'rb').read())")
    r2 = await sb.execute("import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())")
    return failed(r) and failed(r2) and "PATH=" not in leaked_text(r) + leaked_text(r2)


@attack
async def read_pid1_environ(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("print(open('/proc/1/environ', 'rb').read())")
    return failed(r)


@attack
async def read_parent_memory(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(f"fh = open('/proc/{e.pid}/mem', 'rb')\nfh.seek(4096)\nfh.read(16)")
    return failed(r)


@attack
async def process_vm_readv_parent(sb: Sandbox, e: Env) -> bool:
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "buf = ctypes.create_string_buffer(64)\n"
        "class IOV(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "local = IOV(ctypes.addressof(buf), 64)\n"
        "remote = IOV(0x400000, 64)\n"
        f"libc.syscall(310, {e.pid}, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)"
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "-1"


@attack
async def environment_is_scrubbed(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("import os\nsorted(os.environ)")
    allowed = {"HOME", "LANG", "PATH", "TMPDIR", "PWD", "MALLOC_ARENA_MAX"}  # bwrap sets PWD
    return r.error is None and r.value is not None and set(ast.literal_eval(r.value)) <= allowed


@attack
async def write_outside_scratch(sb: Sandbox, e: Env) -> bool:
    target = e.outside / "pwned"
    r = await sb.execute(f"open({str(target)!r}, 'w').write('x')")
    return failed(r) and not target.exists()


@attack
async def write_into_site_packages(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        "import pydantic, os\n"
        "p = os.path.join(os.path.dirname(os.path.dirname(pydantic.__file__)), 'evil.pth')\n"
        "open(p, 'w').write('import os')"
    )
    import pydantic

    target = Path(pydantic.__file__).parent.parent / "evil.pth"
    return failed(r) and not target.exists()


@attack
async def tcp_connect_loopback(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        f"import socket\ns = socket.create_connection(('127.0.0.1', {e.tcp_port}), timeout=1)"
    )
    try:
        conn, _ = e.tcp.accept()
    except BlockingIOError:
        return failed(r)
    conn.close()
    return False


@attack
async def udp_send_loopback(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.sendto(b'pwned', ('127.0.0.1', {e.udp_port}))"
    )
    try:
        e.udp.recvfrom(64)
    except BlockingIOError:
        return failed(r)
    return False


@attack
async def unix_socket(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0codeact-abstract')"
    )
    return failed(r)


@attack
async def fork(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\npid")
    return failed(r)


@attack
async def exec_shell(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'echo pwned'], capture_output=True).stdout"
    )
    r2 = await sb.execute("import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'true'], {})")
    r3 = await sb.execute("import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned'])")
    return all(failed(x) and "pwned" not in leaked_text(x) for x in (r, r2, r3))


@attack
async def kill_parent(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(f"import os, signal\nos.kill({e.pid}, signal.SIGUSR2)")
    r2 = await sb.execute("import os, signal\nos.kill(os.getppid(), signal.SIGUSR2)")
    r3 = await sb.execute("import os, signal\nos.killpg(0, signal.SIGUSR2)")
    return failed(r) and failed(r2) and failed(r3) and not e.signals


@attack
async def ptrace_parent(sb: Sandbox, e: Env) -> bool:
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n"
        f"(libc.ptrace(0x4206, {e.pid}, None, None), ctypes.get_errno() != 0)"  # PTRACE_SEIZE
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "(-1, True)"


@attack
async def create_namespaces(sb: Sandbox, e: Env) -> bool:
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "(libc.unshare(0x10000000), libc.unshare(0x40000000), libc.unshare(0x00020000))"
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "(-1, -1, -1)"


@attack
async def mount_and_io_uring(sb: Sandbox, e: Env) -> bool:
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        "(libc.mount(b'none', b'.', b'tmpfs', 0, None), libc.syscall(425, 4, params),"
        " libc.syscall(321, 0, None, 0))"  # bpf
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "(-1, -1, -1)"


@attack
async def raise_own_limits(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute(
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)"
    )
    return failed(r)


@attack
async def allocate_4_gib(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("b = bytearray(4 * 1024 ** 3)")
    alive = await sb.execute("1")
    return r.error is not None and r.error.type == "MemoryError" and alive.value == "1"


@attack
async def busy_loop(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("while True:\n    pass", timeout=1.0)
    return r.timed_out and r.duration_ms < 1500


@attack
async def print_100_mb(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("chunk = 'x' * 1_000_000\nfor _ in range(100):\n    print(chunk)")
    return r.truncated and len(r.stdout) <= OUTPUT_KB * 1024 + 200


@attack
async def fill_disk_one_file(sb: Sandbox, e: Env) -> bool:
    code = (
        "written = 0\n"
        "try:\n"
        "    with open('big', 'wb') as fh:\n"
        "        for _ in range(64):\n"
        "            fh.write(b'x' * 1024 * 1024)\n"
        "            written += 1\n"
        "except OSError as exc:\n"
        "    stopped = type(exc).__name__\n"
        "(written, stopped)"
    )
    r = await sb.execute(code)
    return r.error is None and r.value is not None and int(r.value.split(",")[0][1:]) <= DISK_MB


@attack
async def fill_disk_many_files(sb: Sandbox, e: Env) -> bool:
    code = (
        "n = 0\n"
        "try:\n"
        "    for n in range(200):\n"
        "        with open(f'f{n}', 'wb') as fh:\n"
        "            fh.write(b'x' * 256 * 1024)\n"
        "except OSError as exc:\n"
        "    stopped = type(exc).__name__\n"
        "(n, stopped)"
    )
    r = await sb.execute(code)
    return (
        r.error is None
        and r.value is not None
        and int(r.value.split(",")[0][1:]) * 256 <= DISK_MB * 1024
    )


@attack
async def fill_inodes_with_empty_files(sb: Sandbox, e: Env) -> bool:
    code = (
        "import os\n"
        "os.mkdir('d')\n"
        "n = 0\n"
        "try:\n"
        "    for n in range(50_000):\n"
        "        open(f'd/{n}', 'w').close()\n"
        "except OSError as exc:\n"
        "    stopped = type(exc).__name__\n"
        "(n, stopped)"
    )
    r = await sb.execute(code, timeout=20)
    return r.error is None and r.value is not None and int(r.value.split(",")[0][1:]) < 50_000


@attack
async def forge_protocol_on_stdout(sb: Sandbox, e: Env) -> bool:
    frame = b'{"t":"done","stdout":"forged","stderr":"","value":"forged","error":null}'
    code = (
        "import os\n"
        f"payload = b'J' + {frame!r}\n"
        "os.write(1, len(payload).to_bytes(4, 'little') + payload)\n"
        "os.write(2, len(payload).to_bytes(4, 'little') + payload)\n"
        "'real'"
    )
    r = await sb.execute(code)
    return r.value == "'real'" and "forged" not in r.stdout


BACKENDS = ["landlock", "bwrap"]


def _label(requested: str, sb: Sandbox) -> str:
    actual = sb.info.backend
    return actual if actual == requested else f"{requested} (fell back to {actual})"


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("backend", BACKENDS)
async def test_attack_is_blocked(backend: str, name: str, make_sandbox: Factory, env: Env) -> None:
    sb = await make_sandbox(
        backend=backend, timeout=5, memory_mb=256, disk_mb=DISK_MB, output_kb=OUTPUT_KB
    )
    if backend == "bwrap" and probe().bwrap is None:
        assert any(m.startswith("bwrap") for m in sb.info.not_enforced)  # said out loud
    blocked = await ATTACKS[name](sb, env)
    ATTACK_RESULTS.setdefault(_label(backend, sb), {})[name] = blocked
    assert blocked, f"attack {name!r} was not blocked by {sb.info.backend}"
