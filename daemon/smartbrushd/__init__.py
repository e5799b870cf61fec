"""smartbrushd: the SmartBrush ZeroMQ daemon (see docs/protocol.md). Entry point: smartbrushd.server:main."""
