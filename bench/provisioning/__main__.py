from bench.provisioning.run import main

raise SystemExit(main())
