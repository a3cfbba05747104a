"""Boot a kernel that has nlmon under QEMU and run a shell script in it.

The machines that run the test suite (developers', CI) usually have a kernel
without the nlmon module, and a container cannot load one anyway.  This
harness boots Debian's stock kernel (``/boot/vmlinuz-*-amd64``; its
``nlmon.ko`` sits under ``/lib/modules``) with:

- an initramfs built here, in Python: a static busybox, the virtio-pci and
  9p modules with their dependencies (read from ``modules.dep``, loaded in
  dependency order) and `init` from this folder;
- the host's root filesystem shared read-only over virtio-9p, which the
  guest's init makes its root: the guest runs the host's own ``ip``,
  ``tcpdump``, Python and this project, at their usual paths, against the
  guest's kernel;
- one host folder shared read-write (the `share`), mounted at ``/run/out``
  in the guest: the job's script and settings go in, results come out;
- no network device (``-nodefaults -nic none``), no disk, a serial console
  written to a log, and a wall-clock limit after which QEMU is killed.

`check()` names what is missing (with the Debian package to install) so a
test can skip with the reason; `run()` boots and returns the guest script's
exit status and the console log.  Run as a script (``python3 nlmonvm.py
--check``) it prints the verdict.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
DEBIAN_PACKAGES = "qemu-system-x86 linux-image-amd64 busybox-static tcpdump iproute2 kmod tshark"


class VmUnavailable(Exception):
    """Something the VM needs is missing; the text names it and its package."""


@dataclass
class VmSetup:
    qemu: str
    kernel_version: str
    busybox: str
    accel: str  # "kvm" or "tcg"

    @property
    def kernel(self) -> Path:
        return Path(f"/boot/vmlinuz-{self.kernel_version}")

    @property
    def modules(self) -> Path:
        return Path(f"/lib/modules/{self.kernel_version}")


@dataclass
class VmResult:
    status: int | None  # the guest script's exit status; None if it did not finish
    console: str
    seconds: float
    timed_out: bool


def _module_file(modules: Path, name: str) -> Path | None:
    for rel in _modules_dep(modules):
        base = Path(rel).name.split(".ko")[0]
        if base.replace("-", "_") == name.replace("-", "_"):
            return modules / rel
    return None


def _modules_dep(modules: Path) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod.strip()] = rest.split()
    return deps


def find_kernel() -> str | None:
    """The newest /boot/vmlinuz-*-amd64 whose modules include nlmon."""

    def version_key(v: str) -> list[int | str]:
        return [int(p) if p.isdigit() else p for p in v.replace("-", ".").split(".")]

    versions = [p.name[len("vmlinuz-") :] for p in Path("/boot").glob("vmlinuz-*-amd64")]
    for v in sorted(versions, key=version_key, reverse=True):
        mods = Path(f"/lib/modules/{v}")
        if (mods / "modules.dep").exists() and _module_file(mods, "nlmon") is not None:
            return v
    return None


def _accel() -> str:
    """KVM only with a hardware KVM module: some sandboxes offer a /dev/kvm
    (kvm_pvm) that cannot boot a stock kernel; TCG always works."""
    choice = os.environ.get("NLSHARK_VM_ACCEL", "auto")
    if choice != "auto":
        return choice
    hw = Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists()
    return "kvm" if hw and os.access("/dev/kvm", os.W_OK) else "tcg"


def _is_static(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    # A dynamically linked ELF names its interpreter (PT_INTERP) near the start.
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head


def check(need: tuple[str, ...] = ("tcpdump", "ip")) -> VmSetup:
    """What the VM needs, or `VmUnavailable` naming everything missing."""
    missing = []
    qemu = shutil.which(os.environ.get("NLSHARK_VM_QEMU", "qemu-system-x86_64"))
    if not qemu:
        missing.append("QEMU qemu-system-x86_64 (Debian package qemu-system-x86)")
    kver = os.environ.get("NLSHARK_VM_KVER") or find_kernel()
    if not kver:
        missing.append(
            "a kernel /boot/vmlinuz-*-amd64 with nlmon.ko in /lib/modules (linux-image-amd64)"
        )
    elif not os.access(f"/boot/vmlinuz-{kver}", os.R_OK):
        missing.append(f"a readable /boot/vmlinuz-{kver} (linux-image-amd64)")
    busybox = os.environ.get("NLSHARK_VM_BUSYBOX") or shutil.which("busybox") or "/bin/busybox"
    if not os.access(busybox, os.X_OK):
        missing.append("busybox (busybox-static)")
    elif not _is_static(busybox):
        missing.append(f"a statically linked busybox, {busybox} is dynamic (busybox-static)")
    for tool in need:
        if not shutil.which(tool):
            missing.append(f"{tool} ({'iproute2' if tool == 'ip' else tool})")
    if missing:
        raise VmUnavailable("missing: " + "; ".join(missing))
    assert qemu is not None and kver is not None
    return VmSetup(qemu, kver, busybox, _accel())


# ---------------------------------------------------------------- initramfs


class _Cpio:
    """An archive in the "newc" format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.buf.write(header + encoded + bytes(-(len(header) + len(encoded)) & 3))
        self.buf.write(data + bytes(-len(data) & 3))

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return self.buf.getvalue()


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        zstd = shutil.which("zstd")
        if not zstd:
            raise VmUnavailable(f"zstd is needed to unpack {path.name} (zstd)")
        return subprocess.run([zstd, "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def _load_order(modules: Path, names: tuple[str, ...]) -> list[str]:
    """Module files (relative to `modules`) so that each comes after what it needs."""
    deps = _modules_dep(modules)
    order: list[str] = []

    def visit(rel: str) -> None:
        if rel in order:
            return
        for dep in deps.get(rel, []):
            visit(dep)
        order.append(rel)

    for name in names:
        path = _module_file(modules, name)
        if path is None:
            raise VmUnavailable(f"kernel {modules.name} has no {name} module")
        visit(str(path.relative_to(modules)))
    return order


def build_initramfs(setup: VmSetup, dest: Path) -> Path:
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "root", "lib", "lib/modules"):
        cpio.add(d, 0o040755)
    cpio.add("dev/console", 0o020600, rdev=(5, 1))
    cpio.add("bin/busybox", 0o100755, Path(setup.busybox).read_bytes())
    cpio.add("init", 0o100755, (HERE / "init").read_bytes())
    names = []
    for rel in _load_order(setup.modules, GUEST_MODULES):
        name = Path(rel).name.split(".ko")[0] + ".ko"
        cpio.add(f"lib/modules/{name}", 0o100644, _module_bytes(setup.modules / rel))
        names.append(name)
    cpio.add("lib/modules/order", 0o100644, ("\n".join(names) + "\n").encode())
    dest.write_bytes(gzip.compress(cpio.finish(), compresslevel=1))
    return dest


# ---------------------------------------------------------------- the VM


def run(
    setup: VmSetup,
    share: Path,
    script: Path,
    *,
    timeout: float = 100.0,
    env: dict[str, str] | None = None,
) -> VmResult:
    """Boot, run `script` (copied into `share`) with bash as root in the guest
    with the variables of `env`, power off.  QEMU is killed after `timeout` s."""
    share = share.resolve()
    if "," in str(share):
        raise ValueError("the share's path must not contain a comma (QEMU option syntax)")
    shutil.copy(script, share / "guest.sh")
    lines = [f"export {k}={_sh_quote(v)}" for k, v in (env or {}).items()]
    (share / "job.env").write_text("\n".join(lines) + "\n")
    (share / "guest.rc").unlink(missing_ok=True)
    initrd = build_initramfs(setup, share / ".initramfs.cpio.gz")
    if setup.accel == "kvm":
        accel = ["-enable-kvm", "-cpu", "host"]
    else:
        accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    cmd = [
        setup.qemu,
        *accel,
        "-m", os.environ.get("NLSHARK_VM_MEM", "1024"),
        "-smp", "2",
        "-machine", "q35",
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-nic", "none",
        "-serial", "stdio", "-monitor", "none",
        "-kernel", str(setup.kernel),
        "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init",
        "-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
        "-fsdev", f"local,id=out,path={share},security_model=none,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=out,mount_tag=out",
    ]  # fmt: skip
    t0 = time.monotonic()
    timed_out = False
    with open(share / "console.log", "wb") as console:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    rc_file = share / "guest.rc"
    status = int(rc_file.read_text().strip()) if rc_file.exists() else None
    return VmResult(
        status,
        (share / "console.log").read_text(errors="replace"),
        time.monotonic() - t0,
        timed_out,
    )


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    try:
        found = check()
    except VmUnavailable as exc:
        print(f"nlmonvm: {exc}\nnlmonvm: Debian packages: {DEBIAN_PACKAGES}", file=sys.stderr)
        sys.exit(3)
    print(f"nlmonvm: ok: kernel {found.kernel_version}, accel {found.accel}, QEMU {found.qemu}")
