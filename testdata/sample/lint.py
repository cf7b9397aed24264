"""Dependency-free lint for the sample's `lint` job: python3 lint.py app tests

Each .py file must compile, and have no line over 100 characters, no tab indentation and no
trailing whitespace. Prints one line per problem; exits 1 if there is any, else 0.
"""

import pathlib
import sys

MAX_LINE = 100


def check(path: pathlib.Path) -> list:
    problems = []
    text = path.read_text(encoding="utf-8")
    try:
        compile(text, str(path), "exec")
    except SyntaxError as err:
        problems.append(f"{path}:{err.lineno}: syntax error: {err.msg}")
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            problems.append(f"{path}:{number}: line too long ({len(line)} > {MAX_LINE})")
        if line != line.rstrip():
            problems.append(f"{path}:{number}: trailing whitespace")
        if line.startswith("\t"):
            problems.append(f"{path}:{number}: tab indentation")
    return problems


def main(args: list) -> int:
    files = []
    for arg in args or ["."]:
        root = pathlib.Path(arg)
        files.extend(sorted(root.rglob("*.py")) if root.is_dir() else [root])
    problems = [p for f in files for p in check(f)]
    for problem in problems:
        print(problem)
    print(f"lint: {len(files)} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
