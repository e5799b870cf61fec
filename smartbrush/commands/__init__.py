"""The `smartbrush` subcommands that are not part of training or research (see smartbrush.cli)."""
