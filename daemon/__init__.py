"""smartbrushd: the SmartBrush ZeroMQ daemon (see docs/protocol.md). Entry point: smartbrush.daemon.server:main."""
