"""gantry's generated-Dockerfile sample (testdata/generated): a greeting on the command line."""

from greeting_lib import greet

__all__ = ["banner"]


def banner(name: str = "") -> str:
    """The line `python3 -m genapp NAME` prints."""
    return f"[genapp] {greet(name)}"
