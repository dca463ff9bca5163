#!/usr/bin/env bash
# Run `ansible-test sanity|units` on this checkout. ansible-test needs the collection at
# .../ansible_collections/iothub/emq, so copy the files git would ship into a temporary tree
# (tracked and untracked-but-not-ignored, so work in progress is tested too) and run there.
# Usage: scripts/ansible-test.sh sanity|units [extra ansible-test args]
set -euo pipefail
cmd="${1:?usage: $0 sanity|units [args]}"; shift
top="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON_VERSION:-$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')}"
tmp="$(mktemp -d /tmp/iothub-ansible-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/ansible_collections/iothub/emq"
mkdir -p "$dest"
# Everything the collection ships; the stand-in, molecule, benchmarks and build outputs are not collection content.
(cd "$top" && git ls-files -z --cached --others --exclude-standard \
   | grep -zv -E '^(\.collections|tests/emqx_standin|tests/bench|molecule|bench|\.config)/' \
   | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}" || true' \
   | tar --null -T - -cf -) | tar -C "$dest" -xf -
# ansible-test bootstraps pip in its own virtualenvs with a get-pip.py it downloads from a host these
# machines cannot reach: give it the offline equivalent (see scripts/get_pip_offline.py).
pip_version="$(python - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cmp -s "$top/scripts/get_pip_offline.py" "$cache" || cp "$top/scripts/get_pip_offline.py" "$cache"
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1 && git -c user.email=ci@localhost -c user.name=ci commit -qm tree >/dev/null
case "$cmd" in
  sanity) exec ansible-test sanity --color no --venv --python "$py" "$@" ;;
  units)  exec ansible-test units --color no --venv --python "$py" "$@" ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
