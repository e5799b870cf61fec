"""smartbrushd: the SmartBrush ZeroMQ daemon (see docs/protocol.md). Entry point: daemon.server:main."""
