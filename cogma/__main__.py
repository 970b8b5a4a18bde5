import sys

from cogma.cli import main

sys.exit(main())
