import sys

from vibench.cli import main

sys.exit(main())
