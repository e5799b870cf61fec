"""The wire part of SmartBrush: protocol, client, editor flow and errors.

Pure Python (msgpack and pyzmq only, no torch, numpy or Pillow): `smartbrush install-plugin` vendors
this subpackage whole into the Krita and GIMP plugins, so nothing here may import from outside it.
"""
