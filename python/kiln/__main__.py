"""`python -m kiln ...` is the kiln command line (the same binary as `kiln`, shipped in the wheel)."""
import os
import sys


def cli_path() -> str:
    """The kiln CLI inside the installed package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "kiln")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:  # Triton serving is Python (kiln/serve.py)
        from .serve import main as serve_main
        sys.exit(serve_main(sys.argv[2:]))
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        sys.exit("kiln: the command line is missing from this installation (%s)" % exe)
    sys.stdout.flush()
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
