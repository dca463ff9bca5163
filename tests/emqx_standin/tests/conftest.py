import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import standin  # noqa: E402


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make test certificates")
    return standin.make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def nodes(tmp_path):
    """Factory: nodes(n, **kw) -> list of StandinNode (not started). All are stopped at teardown."""
    made = []

    def factory(n=1, **kw):
        out = []
        for _ in range(n):
            node = standin.StandinNode(str(tmp_path), standin.next_host(), **kw)
            made.append(node)
            out.append(node)
        return out

    def one(**kw):
        node = standin.StandinNode(str(tmp_path), kw.pop("host", None) or standin.next_host(), **kw)
        made.append(node)
        return node

    factory.one = one
    yield factory
    for node in made:
        try:
            node.stop(timeout=5)
        except Exception:
            node.kill()
