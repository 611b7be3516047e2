import sys

from baoxue.cli import main

sys.exit(main())
