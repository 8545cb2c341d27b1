"""Run inside the sandbox by the training interpreter (stdlib only, never imported by the
orchestrator): tries each way out that the sandbox must close and prints one JSON line per try,
{"check", "escaped", "detail"}. Its one argument is JSON: {"hidden": [paths that must show nothing
inside], "bound": [what the sandbox shows on purpose], "socket": a Unix socket path the orchestrator listens on, "abstract": an abstract
socket name, "port": a loopback TCP port it listens on (null: network allowed)}."""

import ctypes
import json
import os
import platform
import socket
import sys

MNT_DETACH, MS_REMOUNT, MS_BIND = 2, 32, 4096
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
KEYCTL = {"x86_64": 250, "aarch64": 219, "ppc64le": 271, "s390x": 280, "riscv64": 219}
KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING = 0, -4
libc = ctypes.CDLL(None, use_errno=True)


def report(check, escaped, detail):
    print(json.dumps({"check": check, "escaped": bool(escaped), "detail": detail}), flush=True)


def refused(result):
    return f"refused ({os.strerror(ctypes.get_errno())})" if result != 0 else "succeeded"


def capabilities():
    fields = dict(
        line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
    )
    effective, bounding = fields["CapEff"].strip(), fields["CapBnd"].strip()
    escaped = int(effective, 16) != 0 or int(bounding, 16) != 0
    report(
        "capabilities", escaped, f"effective {effective}, bounding {bounding}, uid {os.getuid()}"
    )


def mounts():
    result = libc.umount2(b"/tmp", MNT_DETACH)
    report("unmount", result == 0, f"umount2(/tmp) {refused(result)}")
    result = libc.mount(None, b"/usr", None, MS_REMOUNT | MS_BIND, None)
    report("remount", result == 0, f"remount /usr read-write {refused(result)}")


def namespaces():
    result = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)
    report("namespaces", result == 0, f"unshare(new user and mount namespaces) {refused(result)}")


def shows(path, bound):
    """Does path show anything besides the way to what the sandbox binds on purpose (an
    emptied folder or file shows nothing)?"""
    if path in bound:
        return False
    try:
        if os.path.isdir(path):
            ways = {
                p[len(path) :].lstrip("/").split("/")[0] for p in bound if p.startswith(path + "/")
            }
            return bool(set(os.listdir(path)) - ways)
        with open(path, "rb") as f:
            return bool(f.read(1))
    except OSError:  # absent, or unreadable by file mode
        return False


def hidden(paths, bound):
    shown = [p for p in paths if shows(p, bound)]
    detail = f"{shown[0]} is visible" if shown else f"{len(paths)} secret paths absent"
    report("hidden paths", bool(shown), detail)


def unix_socket(path, abstract):
    reached = []
    for name, address in (("socket file", path), ("abstract socket", "\0" + abstract)):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            try:
                s.connect(address)
                reached.append(name)
            except OSError:
                pass
    detail = f"reached the orchestrator's {reached[0]}" if reached else "no socket reachable"
    report("unix sockets", bool(reached), detail)


def network(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        report("network", True, f"reached 127.0.0.1:{port}")
    except OSError as err:
        report("network", False, f"no network ({err.strerror or err})")


def keyring():
    number = KEYCTL.get(platform.machine())
    if number is None:
        report("keyring", False, f"not checked on {platform.machine()}")
        return
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(number, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)
    detail = "keyctl refused" if result < 0 else f"reached the user keyring {result}"
    report("keyring", result >= 0, detail)


def main():
    given = json.loads(sys.argv[1])
    capabilities()
    mounts()
    namespaces()
    hidden(given["hidden"], given["bound"])
    unix_socket(given["socket"], given["abstract"])
    if given["port"] is not None:
        network(given["port"])
    keyring()


main()
