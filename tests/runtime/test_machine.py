"""CPU class detection: what a timing baseline is keyed by (issue 11)."""

from __future__ import annotations

import json

import pytest

from sr_runtime import machine

AVX2_EPYC = ("fpu", "sse2", "fma", "avx", "avx2", "bmi2")
AVX512_EPYC = (*AVX2_EPYC, "avx512f", "avx512dq", "avx512bw", "avx512_bf16", "avx512_vnni")


@pytest.mark.parametrize(("flags", "level"), [
    (AVX2_EPYC, "avx2"),
    (AVX512_EPYC, "avx512-bf16-vnni"),
    ((*AVX2_EPYC, "avx512f", "avx512_vnni"), "avx512-vnni"),
    ((*AVX2_EPYC, "avx512f"), "avx512"),
    ((*AVX512_EPYC, "amx_tile", "amx_bf16", "amx_int8"), "amx"),
    (("sse2", "avx"), "baseline"),
    (("avx2",), "baseline"),  # AVX2 without FMA runs no FMA kernels
])
def test_isa_level_is_the_best_level_the_flags_cover(flags, level):
    assert machine.isa_level(flags) == level


def test_cpu_class_names_level_and_cores():
    assert machine.cpu_class(AVX2_EPYC, 2) == "avx2/2c"
    assert machine.cpu_class(AVX512_EPYC, 2) == "avx512-bf16-vnni/2c"
    assert machine.cpu_class(AVX512_EPYC, 8) != machine.cpu_class(AVX512_EPYC, 2)


def test_this_machine_is_described_completely():
    info = machine.machine_info()
    assert info.physical_cores >= 1 and info.logical_cpus >= info.physical_cores
    assert info.cpu_class == machine.cpu_class(info.isa_flags, info.physical_cores)
    assert set(info.isa_flags) <= set(machine.ISA_FLAGS)
    assert "numpy" in info.libraries
    data = json.loads(json.dumps(info.to_dict()))  # JSON-ready, as results files need
    assert data["cpu_class"] == info.cpu_class and isinstance(data["isa_flags"], list)
    assert info.cpu_class in info.line()


def test_flags_are_read_from_proc_cpuinfo(tmp_path, monkeypatch):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9999\n"
                    f"flags\t\t: {' '.join(AVX512_EPYC)}\n\n")
    real_path = machine.Path

    def fake_path(name, *rest):
        return fake if str(name) == "/proc/cpuinfo" else real_path(name, *rest)

    monkeypatch.setattr(machine, "Path", fake_path)
    assert machine.cpu_model() == "AMD EPYC 9999"
    assert machine.isa_flags() == ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni")
