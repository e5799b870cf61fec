"""The `smartbrush` subcommands, one thin module each; smartbrush.cli.COMMANDS is their table."""
