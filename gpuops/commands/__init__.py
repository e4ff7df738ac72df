"""One module per `gpuops` subcommand: `add_parser(subparsers)` and `run(args) -> int`."""
