"""python3 -m genapp [NAME]: print the banner."""

import sys

from genapp import banner


def main(args: list) -> int:
    print(banner(" ".join(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
