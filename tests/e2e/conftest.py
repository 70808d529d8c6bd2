"""End-to-end tests: drive the `estlab` binary and judge what it writes with the real openssl.

Run with Debian's python (it carries python3-pytest and python3-yaml):

    /usr/bin/python3 -m pytest tests/e2e -q

The binary is $ESTLAB_BIN, else build/cli/estlab below the repository root. One fixture set
(`estlab fixtures`, default key type) is generated per session and shared read-only; tests that
mutate a CA store work on a copy (`lab_copy`). Every subprocess runs with a timeout.
"""

from __future__ import annotations

import base64
import itertools
import mmap
import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60  # per subprocess; the slowest call (an rsa2048 fixture set) takes a few seconds
TOKEN_PASSWORD = "estlab"

BUILD_HINT = (
    "build it first:\n"
    f"  cmake -S {REPO_ROOT} -B {REPO_ROOT}/build -G Ninja && cmake --build {REPO_ROOT}/build\n"
    "or point ESTLAB_BIN at an estlab binary"
)


# ---------------------------------------------------------------------------------------------
# Running commands
# ---------------------------------------------------------------------------------------------


class Ran:
    """A finished command: exit code, stdout, stderr; str() shows all of it for assert messages."""

    def __init__(self, args: list[str], proc: subprocess.CompletedProcess):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def text(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return f"$ {' '.join(map(str, self.args))}\n-> exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def run(args, *, cwd=None, input: str | None = None, timeout: float = TIMEOUT_S) -> Ran:
    """Runs a command (never through a shell) with a timeout and captures text output."""
    args = [str(a) for a in args]
    try:
        proc = subprocess.run(args, cwd=cwd, input=input, capture_output=True, text=True, errors="replace",
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout} s: {' '.join(args)}", pytrace=False)
    return Ran(args, proc)


class OpenSSL:
    """The independent judge: thin helpers over the openssl command line."""

    def __call__(self, *args, cwd=None, input=None) -> Ran:
        return run(["openssl", *args], cwd=cwd, input=input)

    def ok(self, *args, cwd=None, input=None) -> str:
        r = self(*args, cwd=cwd, input=input)
        assert r.rc == 0, str(r)
        return r.out

    def verify(self, cert, *, anchors, untrusted=(), crl=None, purpose=None, extra=()) -> Ran:
        args = ["verify", "-CAfile", anchors]
        for u in untrusted:
            args += ["-untrusted", u]
        if crl:
            args += ["-crl_check", "-CRLfile", crl]
        if purpose:
            args += ["-purpose", purpose]
        return self(*args, *extra, cert)

    def ext(self, cert, name: str) -> str:
        """The text of one extension (empty when absent), e.g. ext(pem, 'extendedKeyUsage')."""
        return self.ok("x509", "-in", cert, "-noout", "-ext", name)

    def subject(self, cert) -> str:
        return self.ok("x509", "-in", cert, "-noout", "-subject").strip()

    def issuer(self, cert) -> str:
        return self.ok("x509", "-in", cert, "-noout", "-issuer").strip()

    def pubkey(self, cert) -> str:
        return self.ok("x509", "-in", cert, "-noout", "-pubkey")

    def serial(self, cert) -> str:
        """Lower-case hex, the form the manifest and `estlab ca` use."""
        return self.ok("x509", "-in", cert, "-noout", "-serial").strip().split("=", 1)[1].lower()

    def date(self, cert, which: str) -> dt.datetime:
        """which: 'startdate' or 'enddate'."""
        line = self.ok("x509", "-in", cert, "-noout", f"-{which}").strip()
        return parse_openssl_time(line.split("=", 1)[1])


def parse_openssl_time(text: str) -> dt.datetime:
    # "Nov 27 18:27:48 2026 GMT"; the day is space-padded
    return dt.datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)


def certs_in_pem(pem_text: str) -> list[bytes]:
    """The DER of every certificate in a PEM text, in order (comparing DER is comparing certificates)."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem_text, re.S)
    return [base64.b64decode("".join(block.split())) for block in blocks]


def cert_der(path) -> bytes:
    """The DER of the one certificate in a PEM file."""
    certs = certs_in_pem(Path(path).read_text())
    assert len(certs) == 1, f"{path} holds {len(certs)} certificates, expected one"
    return certs[0]


def dn_of_openssl(line: str) -> str:
    """'subject=C = SE, O = x, CN = y' -> 'C=SE,O=x,CN=y' (the manifest's form; no commas in values)."""
    value = line.split("=", 1)[1].strip()
    return ",".join(part.strip().replace(" = ", "=") for part in value.split(", "))


# ---------------------------------------------------------------------------------------------
# The binary and fixture sets
# ---------------------------------------------------------------------------------------------


class BinaryMissing(Exception):
    pass


def find_binary() -> Path:
    env = os.environ.get("ESTLAB_BIN")
    if env:
        env = os.path.abspath(env)  # tests run commands from other working directories
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryMissing(f"ESTLAB_BIN={env} is not an executable file; {BUILD_HINT}")
        return path
    path = REPO_ROOT / "build" / "cli" / "estlab"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BinaryMissing(f"estlab binary not found at {path}; {BUILD_HINT}")
    return path


class Estlab:
    def __init__(self, binary: Path):
        self.binary = binary
        self._address_sanitized = None

    @property
    def address_sanitized(self) -> bool:
        """Built with ASan (scripts/sanitize.sh --e2e): its shadow memory, redzones and quarantine of
        freed blocks make resident memory say little about estlab's own, so bounds on it apply to
        plain builds only."""
        if self._address_sanitized is None:
            with open(self.binary, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as image:
                self._address_sanitized = image.find(b"AddressSanitizer") >= 0
        return self._address_sanitized

    def __call__(self, *args, cwd=None) -> Ran:
        return run([self.binary, *args], cwd=cwd)

    def generate(self, directory: Path, *extra) -> "FixtureSet":
        r = self("fixtures", directory, *extra)
        assert r.rc == 0, f"estlab fixtures failed\n{r}"
        return FixtureSet(directory)


class FixtureSet:
    """A directory written by `estlab fixtures`, with its manifest."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.manifest = yaml.safe_load((self.dir / "manifest.yaml").read_text())
        self.items = self.manifest["items"]
        self.by_name = {item["name"]: item for item in self.items}

    def item(self, name: str) -> dict:
        assert name in self.by_name, f"manifest {self.dir / 'manifest.yaml'} has no item '{name}'"
        return self.by_name[name]

    def path(self, relative: str) -> Path:
        return self.dir / relative

    def file(self, name: str) -> Path:
        """The main file (certificate, CRL, bag, config) of the named item."""
        return self.path(self.item(name)["file"])

    @property
    def verify_items(self) -> list[dict]:
        return [item for item in self.items if "verify" in item]

    @property
    def store(self) -> Path:
        return self.path(self.manifest["store"])


_DEFAULT_SET_KEY = pytest.StashKey[object]()


def _default_set(config) -> FixtureSet:
    """The session's default fixture set, generated once on first use (collection or a test).

    Stored on the config so that parametrizing by manifest item (at collection) and the
    `fixture_set` fixture share one generation. A failure is cached and re-raised as a test failure.
    """
    cached = config.stash.get(_DEFAULT_SET_KEY, None)
    if cached is None:
        try:
            estlab = Estlab(find_binary())
            directory = Path(tempfile.mkdtemp(prefix="estlab-e2e-"))
            config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
            r = estlab("fixtures", directory / "set")
            cached = FixtureSet(directory / "set") if r.rc == 0 else RuntimeError(f"estlab fixtures failed\n{r}")
        except BinaryMissing as e:
            cached = e
        config.stash[_DEFAULT_SET_KEY] = cached
    if isinstance(cached, Exception):
        pytest.fail(str(cached), pytrace=False)
    return cached


def pytest_generate_tests(metafunc):
    """`verify_item_name`: one test per manifest item that has a verify block, id = item name."""
    if "verify_item_name" not in metafunc.fixturenames:
        return
    try:
        names = [item["name"] for item in _default_set(metafunc.config).verify_items]
    except pytest.fail.Exception:
        names = ["no-fixture-set"]  # the test's fixture_set request fails with the reason
    metafunc.parametrize("verify_item_name", names, ids=names)


@pytest.fixture(scope="session")
def estlab() -> Estlab:
    try:
        return Estlab(find_binary())
    except BinaryMissing as e:
        missing = str(e)
    pytest.fail(missing, pytrace=False)  # outside the except: no chained traceback, just the message


@pytest.fixture(scope="session")
def openssl() -> OpenSSL:
    assert shutil.which("openssl"), "openssl is not on PATH (apt-get install openssl)"
    return OpenSSL()


@pytest.fixture(scope="session")
def fixture_set(request, estlab) -> FixtureSet:
    """The default (ec-p256) fixture set; shared, treat as read-only."""
    return _default_set(request.config)


class KeyTypeSets:
    """Fixture sets of other key types, each generated on first request and kept for the session."""

    def __init__(self, estlab: Estlab, base: Path):
        self._estlab = estlab
        self._base = base
        self._sets: dict[str, FixtureSet] = {}

    def get(self, key_type: str) -> FixtureSet:
        if key_type not in self._sets:
            self._sets[key_type] = self._estlab.generate(self._base / key_type, "--key-type", key_type)
        return self._sets[key_type]


@pytest.fixture(scope="session")
def key_type_sets(estlab, tmp_path_factory) -> KeyTypeSets:
    return KeyTypeSets(estlab, tmp_path_factory.mktemp("key-types"))


@pytest.fixture(scope="session")
def rsa2048_fixture_set(key_type_sets) -> FixtureSet:
    return key_type_sets.get("rsa2048")


@pytest.fixture
def lab_copy(fixture_set, tmp_path) -> FixtureSet:
    """A private copy of the default fixture set, for tests that mutate its CA store."""
    target = tmp_path / "lab"
    shutil.copytree(fixture_set.dir, target)
    return FixtureSet(target)


def scenario_variants(doc: dict) -> list[tuple[str, str]]:
    """(id, title) of each scenario a file makes: one per for_each combination (values joined to
    the id, sorted by parameter name), then one per transport of `transports`."""
    made = [(doc["id"], doc["title"])]
    if doc.get("for_each"):
        names = list(doc["for_each"])
        made = []
        for values in itertools.product(*(doc["for_each"][n] for n in names)):
            params = sorted(zip(names, (str(v) for v in values)))
            suffix = "".join("." + re.sub(r"[^a-z0-9.\-]", "-", v.lower()) for _, v in params)
            made.append((doc["id"] + suffix, doc["title"] + " [" + ", ".join(f"{n}={v}" for n, v in params) + "]"))
    if doc.get("transports"):
        made = [(i + "." + t, title + f" [{t}]") for i, title in made for t in doc["transports"]]
    return made


# ---------------------------------------------------------------------------------------------
# A headless browser (the HTML report, the IDM's operator page)
# ---------------------------------------------------------------------------------------------

CHROMEDRIVER = Path("/usr/bin/chromedriver")


def headless_chromium(accept_insecure_certs: bool = False):
    """A headless Chromium driven through chromedriver; skips the test when either is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium is not installed")
    if not CHROMEDRIVER.is_file():
        pytest.skip(f"{CHROMEDRIVER} is not installed (apt-get install chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.accept_insecure_certs = accept_insecure_certs
    if Path("/usr/bin/chromium").is_file():
        options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver
