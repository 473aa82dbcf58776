"""What the image is: its configuration, its user, what it carries and what it
must not carry (compilers, the build's CA bundle)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import IO, Any

from tests.image.containers import DOCKER, docker, run_to_completion

EXPECTED_COMMAND = [
    "uvicorn", "app.main:app",
    "--host", "0.0.0.0",  # noqa: S104  (a pod serves on its own interface)
    "--port", "8000",
    "--lifespan", "on",
    "--loop", "uvloop",
    "--http", "httptools",
    "--no-proxy-headers",
    "--timeout-graceful-shutdown", "20",
    "--timeout-keep-alive", "75",
    "--no-access-log",
    "--log-config", "app/platform/log_config.json",
]  # fmt: skip
APP_USER = "10001"
# The secret mount of the one RUN that downloads (Dockerfile).
SECRET_PATH = "run/secrets/ca"
CA_BUNDLE = Path(os.environ.get("CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# Where Debian keeps certificate authorities added on this machine only.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def test_configuration_starts_one_uvicorn_as_a_numeric_non_root_user(image_config: dict[str, Any]) -> None:
    assert image_config["User"] == f"{APP_USER}:{APP_USER}"
    assert not image_config["Entrypoint"]
    assert image_config["Cmd"] == EXPECTED_COMMAND
    assert image_config["WorkingDir"] == "/app"
    assert "8000/tcp" in image_config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in image_config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    health = image_config["Healthcheck"]["Test"]
    assert health[:3] == ["CMD", "python3", "-c"]
    assert "/livez" in health[3]


def test_oci_labels(image_config: dict[str, Any]) -> None:
    labels = image_config["Labels"]
    assert labels["org.opencontainers.image.title"] == "storefront"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", labels["org.opencontainers.image.version"])
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels["org.opencontainers.image.revision"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert labels["org.opencontainers.image.base.name"]


def test_runs_as_non_root(image: str) -> None:
    code, output = run_to_completion(image, "id", "-u")
    assert code == 0, output
    assert output.strip() == APP_USER
    code, output = run_to_completion(image, "id", "-g")
    assert (code, output.strip()) == (0, APP_USER)


NO_BUILD_TOOLS = """
import glob, json, shutil
names = ("gcc", "cc", "c++", "g++", "clang", "tcc", "as", "ld", "make", "uv")
found = [shutil.which(name) for name in names if shutil.which(name)]
for pattern in ("/usr/bin/*-gcc*", "/usr/lib/gcc/*/*/cc1*", "/usr/libexec/gcc/*/*/cc1*", "/usr/local/bin/*gcc*"):
    found += glob.glob(pattern)
print(json.dumps(found))
"""


def test_no_compiler_or_build_tool(image: str) -> None:
    code, output = run_to_completion(image, "python3", "-c", NO_BUILD_TOOLS)
    assert code == 0, output
    assert json.loads(output) == []


# For every importable .py file: a .pyc beside it that the interpreter accepts
# (right magic number, and the source's mtime and size, or its hash).
BYTECODE_CHECK = """
import importlib.util, json, os, struct, sys, sysconfig
paths = sysconfig.get_paths()
roots = {paths["stdlib"], paths["purelib"], paths["platlib"], "/app"}
checked, missing, stale = 0, [], []
for root in sorted(roots):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            checked += 1
            source = os.path.join(dirpath, name)
            try:
                with open(importlib.util.cache_from_source(source), "rb") as f:
                    header = f.read(16)
            except FileNotFoundError:
                missing.append(source)
                continue
            ok = header[:4] == importlib.util.MAGIC_NUMBER
            if ok and struct.unpack("<I", header[4:8])[0] & 1:
                with open(source, "rb") as f:
                    ok = header[8:16] == importlib.util.source_hash(f.read())
            elif ok:
                st = os.stat(source)
                ok = struct.unpack("<II", header[8:16]) == (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
            if not ok:
                stale.append(source)
print(json.dumps({"roots": sorted(roots), "checked": checked, "missing": missing, "stale": stale}))
"""


def test_all_bytecode_is_precompiled_and_valid(image: str) -> None:
    code, output = run_to_completion(image, "python3", "-c", BYTECODE_CHECK)
    assert code == 0, output
    result = json.loads(output)
    assert "/opt/venv/lib/python3.11/site-packages" in result["roots"]
    assert result["checked"] > 1000
    assert result["missing"] == []
    assert result["stale"] == []


def _compiled_from_source(verbose_output: str) -> list[str]:
    # `python -v` says "code object from '<x>.pyc'" for bytecode it uses and
    # "code object from <x>.py" when it compiles a source file.
    return [line for line in verbose_output.splitlines() if line.startswith("# code object from /")]


def test_starting_the_app_and_migrations_compiles_nothing(image: str) -> None:
    code, output = run_to_completion(
        image,
        "python3", "-v", "-c", "import uvicorn, uvloop, httptools, app.main; app.main.create_app()",
        # The image defaults to production, which needs a SECRET_KEY; none is needed here.
        env={"ENVIRONMENT": "development"},
    )  # fmt: skip
    assert code == 0, output[-3000:]
    assert _compiled_from_source(output) == []
    assert "# code object from '/app/app/__pycache__/main.cpython-311.pyc'" in output.splitlines()
    # Offline mode runs migrations/env.py and every revision without a database.
    code, output = run_to_completion(image, "python3", "-v", "-m", "alembic", "upgrade", "head", "--sql")
    assert code == 0, output[-3000:]
    assert _compiled_from_source(output) == []
    assert "# code object from '/app/migrations/__pycache__/env.cpython-311.pyc'" in output.splitlines()


def _certificate_lines(pem: str) -> list[bytes]:
    """One full base64 line from inside each certificate: it appears in any
    PEM copy of that certificate, whatever file holds it."""
    lines = []
    for body in re.findall(r"-----BEGIN CERTIFICATE-----\s+(.*?)-----END CERTIFICATE-----", pem, re.S):
        rows = body.split()
        if len(rows) > 3:
            lines.append(rows[2].encode())
    return lines


def _layer_files(stream: IO[bytes]) -> Any:
    """(layer, path, content) for every regular file of every layer of a
    `docker save` stream, including files that later layers delete."""
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.name.endswith("layer.tar"):
                continue
            layer = outer.extractfile(member)
            assert layer is not None
            with tarfile.open(fileobj=layer, mode="r|") as inner:
                for entry in inner:
                    if entry.isfile():
                        content = inner.extractfile(entry)
                        assert content is not None
                        yield member.name, entry.name, content.read()
                    else:
                        yield member.name, entry.name, b""


def test_no_ca_bundle_or_secret_in_any_layer(image: str, image_config: dict[str, Any]) -> None:
    bundle = CA_BUNDLE.read_bytes()
    bundle_digest = hashlib.sha256(bundle).digest()
    local_cas = [line for crt in sorted(LOCAL_CA_DIR.rglob("*.crt")) for line in _certificate_lines(crt.read_text())]

    env = "\n".join(image_config["Env"])
    assert "/run/secrets" not in env
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history
    assert not any(line.decode() in history for line in local_cas)

    problems = []
    scanned = 0
    with subprocess.Popen([DOCKER, "save", image], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        for layer, path, content in _layer_files(save.stdout):
            scanned += 1
            name = path.removeprefix("./")
            if name.startswith(("run/secrets", SECRET_PATH)):
                problems.append(f"{layer}: {path} (the secret mount path)")
            if content and hashlib.sha256(content).digest() == bundle_digest:
                problems.append(f"{layer}: {path} is the build machine's CA bundle")
            if content and any(line in content for line in local_cas):
                problems.append(f"{layer}: {path} holds a certificate authority local to the build machine")
    assert save.returncode == 0
    assert scanned > 1000
    assert problems == []
    code, output = run_to_completion(image, "python3", "-c", "import os; print(os.path.exists('/run/secrets'))")
    assert (code, output.strip()) == (0, "False")
