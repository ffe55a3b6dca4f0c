"""`python -m lib.cli ...`: the command line lives in lib/workbook/cli.py; this keeps the short command."""
from lib.workbook.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
