"""`cmake --install` and `cpack -G DEB`: the installed estlab finds its data relative to itself.

The build directory is $ESTLAB_BUILD_DIR, else build/ below the repository root; it must be
configured and built (the estlab target at least). The installed tree is copied to another path
and run with cwd=/ so that nothing in the source or build tree can be what it finds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TIMEOUT_S, Ran, run

SCENARIO_FILE = Path("enroll/files/openssl-device-0001.csr.pem")  # a non-YAML file a scenario refers to
MARKER_ID = "zz-installed-tree-marker"


@pytest.fixture(scope="module")
def build_dir() -> Path:
    env = os.environ.get("ESTLAB_BUILD_DIR")
    path = Path(env).resolve() if env else REPO_ROOT / "build"
    if not (path / "CMakeCache.txt").is_file() or not (path / "cli" / "estlab").is_file():
        pytest.fail(f"no configured build with cli/estlab in {path}; set ESTLAB_BUILD_DIR or build {REPO_ROOT}/build", pytrace=False)
    return path


@pytest.fixture(scope="module")
def installed(build_dir, tmp_path_factory) -> Path:
    """An installed tree, copied away from where it was installed, with one extra scenario."""
    base = tmp_path_factory.mktemp("install")
    r = run(["cmake", "--install", build_dir, "--prefix", base / "prefix"])
    assert r.rc == 0, str(r)
    moved = base / "elsewhere" / "opt-estlab"
    shutil.copytree(base / "prefix", moved, symlinks=True)
    shutil.rmtree(base / "prefix")
    # Only the installed scenario directory can hold this one.
    (moved / "share/estlab/scenarios" / f"{MARKER_ID}.yaml").write_text(
        f"id: {MARKER_ID}\ntitle: Only in the installed tree\nrequirements: [7030-4.1.2-a]\nsteps:\n  - send: {{op: cacerts}}\n"
        "    expect: {status: 200}\n")
    return moved


def run_installed(prefix: Path, *args, env_extra: dict | None = None) -> Ran:
    """The installed binary, from /, without the variables that point the tests at the build tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("ESTLAB_SCENARIOS", "ESTLAB_BIN")}
    env.update(env_extra or {})
    argv = [str(prefix / "bin/estlab"), *map(str, args)]
    try:
        proc = subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out: {' '.join(argv)}", pytrace=False)
    return Ran(argv, proc)


def test_install_layout(installed):
    assert (installed / "bin/estlab").is_file()
    assert os.access(installed / "bin/estlab", os.X_OK)
    # Only the binary in bin/: no tests, benchmarks, fuzzers, nor the build tree's data pointer.
    assert sorted(p.name for p in (installed / "bin").iterdir()) == ["estlab"]
    scenarios = installed / "share/estlab/scenarios"
    assert (scenarios / SCENARIO_FILE).is_file()
    source = REPO_ROOT / "conformance/scenarios"
    for yaml_file in source.rglob("*.yaml"):
        assert (scenarios / yaml_file.relative_to(source)).is_file(), f"{yaml_file} not installed"
    if (REPO_ROOT / "conformance/catalog").is_dir():
        assert (installed / "share/estlab/catalog").is_dir()
    installed_files = [p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.is_file()]
    assert not [f for f in installed_files if "test" in Path(f).name and not f.startswith("share/estlab/scenarios/")], installed_files
    assert not [f for f in installed_files if f.endswith((".a", ".h", ".hpp", ".cmake"))], installed_files


def test_installed_binary_lists_its_own_scenarios(installed):
    r = run_installed(installed, "run", "--list")
    assert r.rc == 0, str(r)
    assert MARKER_ID in r.out, f"the installed estlab did not read {installed}/share/estlab/scenarios\n{r}"
    assert "enroll-csr-from-file" in r.out, str(r)


def test_installed_binary_help(installed):
    r = run_installed(installed, "run", "--help")
    assert r.rc == 0, str(r)
    assert "--scenarios" in r.out, str(r)
    r = run_installed(installed, "--help")
    assert r.rc == 0 and "target" in r.out, str(r)


def test_installed_binary_honours_ESTLAB_SCENARIOS(installed, tmp_path):
    (tmp_path / "only.yaml").write_text("id: only-this-one\ntitle: t\nrequirements: [7030-4.1.2-a]\nsteps:\n"
                                        "  - send: {op: cacerts}\n    expect: {status: 200}\n")
    r = run_installed(installed, "run", "--list", env_extra={"ESTLAB_SCENARIOS": str(tmp_path)})
    assert r.rc == 0, str(r)
    assert "only-this-one" in r.out and MARKER_ID not in r.out, str(r)


def test_deb_package(build_dir, tmp_path):
    assert shutil.which("cpack") and shutil.which("dpkg-deb"), "cpack and dpkg-deb are needed (apt-get install cmake dpkg)"
    r = run(["cpack", "-G", "DEB", "-B", tmp_path], cwd=build_dir, timeout=120)
    assert r.rc == 0, str(r)
    debs = list(tmp_path.glob("*.deb"))
    assert len(debs) == 1, f"{debs}\n{r}"
    listing = run(["dpkg-deb", "-c", debs[0]])
    assert listing.rc == 0, str(listing)
    assert "./usr/bin/estlab" in listing.out, listing.out
    assert f"./usr/share/estlab/scenarios/{SCENARIO_FILE.as_posix()}" in listing.out, listing.out
    assert "./usr/share/estlab/scenarios/enroll/simpleenroll.yaml" in listing.out, listing.out
    assert "estlab-data-dirs" not in listing.out, listing.out
    fields = {}
    for name in ("Package", "Depends", "Maintainer", "Description", "Version"):
        f = run(["dpkg-deb", "-f", debs[0], name])
        assert f.rc == 0, str(f)
        fields[name] = f.out.strip()
    assert fields["Package"] == "estlab"
    assert fields["Maintainer"], fields
    assert "EST" in fields["Description"], fields
    depends = {d.strip().split()[0] for d in fields["Depends"].split(",")}
    for package in ("libssl3", "libyaml-cpp0.7", "libpugixml1v5", "libsqlite3-0", "libcbor0.8"):
        assert package in depends, fields["Depends"]
    assert any(d.startswith("libcoap3") for d in depends), fields["Depends"]
