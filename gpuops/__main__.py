from gpuops.cli import main

raise SystemExit(main())
