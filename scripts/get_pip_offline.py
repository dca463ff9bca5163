"""Bootstrap pip in one of ansible-test's virtualenvs without downloading get-pip.py.

ansible-test creates a virtualenv per sanity test and bootstraps pip in it by running get-pip.py,
which it downloads from its own file host on first use. Machines that reach only the package
registries cannot fetch that script, so scripts/ansible-test.sh puts this file where ansible-test
caches it (~/.ansible/test/cache/get_pip_<version>.py). It does what get-pip.py does: installs the packages ansible-test asked
for (pip==<version>, ...) into the new virtualenv.
"""
import subprocess
import sys

GET_PIP_ONLY_FLAGS = ("--no-setuptools", "--no-wheel")

args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
# The base interpreter's pip installs into the new environment (pip --python, pip >= 22.3), with the
# machine's pip configuration (package index, trusted certificates).
base = getattr(sys, "_base_executable", None) or sys.executable
sys.exit(subprocess.call([base, "-m", "pip", "--python", sys.executable, "install", "--quiet"] + args))
