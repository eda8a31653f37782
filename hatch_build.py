"""Hatchling build hook: compiles the chain entry's C module (engine/xmpp_connect/store/_chain_entry.c) for
the wheel and for editable installs; a failed compile fails the install."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("engine/xmpp_connect/store/_chain_entry.c")
NEEDS = "a C compiler and the headers of Python and OpenSSL (Debian: gcc libc6-dev libssl-dev)"


class ChainEntryBuildHook(BuildHookInterface):
    """Builds the module next to its source: an editable install imports it there (its .pth file names
    engine/), a wheel takes it in by force-include (the built file is git-ignored)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        target = SOURCE.with_name("_chain_entry" + sysconfig.get_config_var("EXT_SUFFIX"))
        compile_extension(root / SOURCE, root / target)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(root / target)] = target.relative_to("engine").as_posix()


def compile_extension(source: Path, target: Path) -> None:
    """Compile and link ``source`` into the extension module ``target`` against libcrypto, as distutils
    would with this interpreter's compiler and flags."""
    config = sysconfig.get_config_var
    compiler = shlex.split(os.environ.get("CC") or config("CC"))
    cflags = shlex.split(config("CFLAGS") or "") + shlex.split(config("CCSHARED") or "")
    linker = shlex.split(config("LDSHARED"))
    with tempfile.TemporaryDirectory() as scratch:
        obj = Path(scratch) / "_chain_entry.o"
        _run([*compiler, *cflags, f"-I{sysconfig.get_paths()['include']}", "-c", str(source), "-o", str(obj)])
        _run([*linker, str(obj), "-lcrypto", "-o", str(target)])


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise RuntimeError(f"building the chain entry module needs {NEEDS}: {error}") from error
    if done.returncode != 0:
        raise RuntimeError(
            f"building the chain entry module failed (it needs {NEEDS}):\n"
            f"$ {shlex.join(command)}\n{done.stdout}{done.stderr}"
        )
