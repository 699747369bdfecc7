"""Shared pieces of the command line: the one-line error, argument types, profile sections."""

from __future__ import annotations

import argparse
import math
import re

from gqa.units import parse_tokens


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def _tokens(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _profile_section(profile: str, key: str) -> dict:
    """One section of a profile (a name in notebooks/params/ or a YAML path), validated, or an error."""
    from gqa import profiles

    section = profiles.load(profile).section(key)
    if not section:
        raise CliError(f"profile {profile!r} has no {key} section")
    return section


def _int_at_least(text: str, low: int, words: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {words}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "0 or more")


def _positive_tokens(text: str) -> int:
    if re.match(r"^\s*-", str(text)):
        raise argparse.ArgumentTypeError(f"must be at least 1 token, got {text!r}")
    value = _tokens(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 token, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def _heads_pair(text: str) -> tuple[int, int]:
    try:
        n_h, n_kv = (int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid head configuration {text!r}: use N_H,N_KV like 32,8") from None
    from gqa.shapes import check_heads

    try:
        check_heads(n_h, n_kv)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return n_h, n_kv


def _shape_pair(text: str) -> tuple[int, int]:
    try:
        layers, d_model = (int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: use LAYERS,D_MODEL like 36,1536") from None
    if layers < 1 or d_model < 1:
        raise argparse.ArgumentTypeError(f"layers and d_model must be positive, got {text!r}")
    return layers, d_model


def check_output(path, flag: str = "--out") -> None:
    """An output file can be written where it is asked for, checked before the work that fills it: its
    folder exists and is writable, and it is not a folder. CliError naming the flag otherwise."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise CliError(f"{flag} {path}: is a folder; name a file")
    if not path.parent.is_dir():
        raise CliError(f"{flag} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"{flag} {path}: cannot be written here (permission)")


def profile_identity(profile: str) -> str:
    """What a profile's outputs are named by: a built-in profile's name, or for a profile given as a file its
    stem and a digest of its path and content, so a user's own `cpu.yaml` never writes over (or into) the
    committed measurements and run store of the built-in `cpu`."""
    import hashlib

    from gqa.paths import PARAMS_DIR
    from gqa.profiles import resolve

    path = resolve(profile).resolve()
    if path.parent == PARAMS_DIR.resolve():
        return path.stem
    digest = hashlib.sha256(str(path).encode() + b"\0" + path.read_bytes()).hexdigest()[:8]
    return f"{path.stem}-{digest}"
