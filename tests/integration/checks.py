"""What every Python integration test shares: the source tree, the program
under test (or a skip), counted checks and the closing line ("N passed, N
failed") that CTest's log shows."""
import os
import sys

SRC = os.environ.get("OTR_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

passed = 0
failed = 0


def program(var):
    """The program ctest names in the environment variable var; without it the
    test is skipped (exit 77, which CTest reports as skipped)."""
    path = os.environ.get(var)
    if not path:
        print(f"SKIP: {var} is not set (run under ctest)")
        sys.exit(77)
    return path


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}\n{detail}", file=sys.stderr)


def finish():
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
