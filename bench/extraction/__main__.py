import sys

from bench.extraction.run import main

sys.exit(main())
