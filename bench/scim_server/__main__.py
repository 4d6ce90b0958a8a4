from bench.scim_server.run import main

raise SystemExit(main())
