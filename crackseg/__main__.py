import sys

from crackseg.cli import main

sys.exit(main())
