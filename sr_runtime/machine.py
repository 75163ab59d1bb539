"""What machine this is: CPU model, the instruction-set flags that move speed, a CPU class.

Speed ratios depend on the instruction set (on an AVX-512 machine PyTorch eager runs 4-7x faster
than on an AVX2 one, ONNX Runtime less so), so every timing is recorded with the machine, and a
timing baseline holds only for the CPU class it was measured on. The class is the highest ISA
level present plus the physical core count, e.g. ``avx512-bf16-vnni/2c``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

#: Flags recorded with every figure (the ones that change which kernels run).
ISA_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
             "amx_bf16", "amx_int8")
#: Any of these lets a CPU compute in BF16 natively (OpenVINO's BF16 path needs one).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: ISA levels, best first: (level name, flags it needs).
ISA_LEVELS = (
    ("amx", ("amx_tile", "amx_bf16")),
    ("avx512-bf16-vnni", ("avx512f", "avx512_bf16", "avx512_vnni")),
    ("avx512-vnni", ("avx512f", "avx512_vnni")),
    ("avx512", ("avx512f",)),
    ("avx2", ("avx2", "fma")),
)
#: Libraries whose versions are recorded with every figure (absent ones are left out).
LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "torch", "openvino", "tensorrt")


def _cpuinfo_field(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def isa_flags() -> tuple[str, ...]:
    """The flags of :data:`ISA_FLAGS` this CPU has, in that order."""
    present = set((_cpuinfo_field("flags") or "").split())
    return tuple(flag for flag in ISA_FLAGS if flag in present)


def physical_cores() -> int:
    """Physical cores available to this process (SMT siblings share FP units, so count once)."""
    try:
        available = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    siblings: set[tuple[str, str]] = set()
    for cpu in available:
        base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            siblings.add(((base / "physical_package_id").read_text().strip(),
                          (base / "core_id").read_text().strip()))
        except OSError:
            return len(available)
    return max(1, len(siblings))


def has_bf16(flags: tuple[str, ...] | list[str] | None = None) -> bool:
    """Whether ``flags`` (default: this CPU's) include native BF16 arithmetic (AVX512_BF16, AMX)."""
    return bool(set(isa_flags() if flags is None else flags) & set(BF16_FLAGS))


def isa_level(flags: tuple[str, ...] | list[str]) -> str:
    """The best level of :data:`ISA_LEVELS` that ``flags`` cover; 'baseline' below AVX2."""
    have = set(flags)
    for level, needs in ISA_LEVELS:
        if have.issuperset(needs):
            return level
    return "baseline"


def cpu_class(flags: tuple[str, ...] | list[str] | None = None, cores: int | None = None) -> str:
    """``<isa level>/<physical cores>c``: the key a timing baseline is valid for."""
    flags = isa_flags() if flags is None else flags
    cores = physical_cores() if cores is None else cores
    return f"{isa_level(flags)}/{cores}c"


@dataclass(frozen=True)
class MachineInfo:
    """Everything recorded beside a timing: CPU, flags, cores, class, library versions."""

    cpu_model: str
    isa_flags: tuple[str, ...]
    physical_cores: int
    logical_cpus: int
    cpu_class: str
    python: str
    libraries: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["isa_flags"] = list(self.isa_flags)
        return data

    def line(self) -> str:
        """One line for the head of a report."""
        libs = ", ".join(f"{name} {version}" for name, version in self.libraries.items())
        return (f"{self.cpu_model}, CPU class {self.cpu_class} (flags "
                f"{' '.join(self.isa_flags) or 'none of ' + '/'.join(ISA_FLAGS)}), "
                f"{self.logical_cpus} logical CPUs; Python {self.python}; {libs}")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the distributions ``names`` (absent ones left out)."""
    return dict(_installed_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _installed_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Looked up once per process: installed packages do not change under a run, and each
    lookup scans the installed distributions (about 10 ms; ``sr-run`` on a tuned model asked
    about ten times, once per tune-record check)."""
    versions = []
    for dist in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append((dist, importlib.metadata.version(dist)))
    return tuple(versions)


def machine_info() -> MachineInfo:
    flags = isa_flags()
    cores = physical_cores()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return MachineInfo(cpu_model(), flags, cores, logical, cpu_class(flags, cores),
                       platform.python_version(), library_versions())
