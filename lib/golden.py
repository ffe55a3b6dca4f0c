"""`python -m lib.golden ...`: certification lives in lib/findings/golden.py; this keeps the short command."""
from lib.findings.golden import main

if __name__ == "__main__":
    raise SystemExit(main())
