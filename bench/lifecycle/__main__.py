from bench.lifecycle.run import main

raise SystemExit(main())
