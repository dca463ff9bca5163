"""Offline stand-in for the EMQX 5.8 broker: TEST EQUIPMENT for the iothub.emq collection.

Not EMQX. It installs and behaves like the real `emqx` Debian package on what the collection's
roles and tests touch (paths, unit, CLI strings, exit codes, REST API, clustering, MQTT).
"""

import os

_here = os.path.dirname(os.path.abspath(__file__))


def _read(name, default):
    try:
        with open(os.path.join(_here, name), encoding="ascii") as fh:
            value = fh.read().strip()
            return value or default
    except OSError:
        return default


# The package build writes VERSION / EDITION files next to this one.
VERSION = _read("VERSION", "5.8.9")
EDITION = _read("EDITION", "opensource")  # "opensource" or "enterprise"
# A package built with --fail-boot: its node never boots (rollback tests of the roles).
FAIL_BOOT = _read("FAIL_BOOT", "")
__version__ = VERSION
