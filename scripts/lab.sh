#!/usr/bin/env bash
# make lab / make lab-destroy: the whole deployment on this machine, in containers.
#   scripts/lab.sh up [extra ansible-playbook args]   create the containers, run site.yml, print how to try it
#   scripts/lab.sh down                               remove the containers, the network and .lab/
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
state="$top/.lab"
shared="$top/molecule/_shared"

playbook() { ansible-playbook "$@"; }
# The controller-side plays (docker networks, containers) run with the interpreter that has the
# docker SDK: the one ansible-playbook itself runs on.
controller_python="$(head -1 "$(command -v ansible-playbook)" | sed 's/^#!//')"

case "${1:-up}" in
  up)
    shift || true
    mkdir -p "$state"
    chmod 700 "$state"
    if [ ! -s "$state/secrets.yml" ]; then
      umask 077
      cat > "$state/secrets.yml" <<SECRETS
---
# Made by scripts/lab.sh for this lab only; removed by make lab-destroy.
lab_emq_node_cookie: "$(openssl rand -hex 24)"
lab_emq_node_dashboard_password: "Lab-$(openssl rand -hex 12)"
lab_emq_node_api_secret: "$(openssl rand -hex 24)"
SECRETS
    fi
    # Secrets added after a lab's secrets.yml may have been made: the HAProxy stats user's password (user
    # lab-ops) and the MQTT users' passwords and salts (inventories/lab/group_vars/all/main.yml).
    for secret in lab_haproxy_lb_stats_password lab_backend_password lab_backend_salt lab_device_password lab_device_salt; do
      grep -q "^$secret:" "$state/secrets.yml" \
        || (umask 077 && echo "$secret: \"$(openssl rand -hex 12)\"" >> "$state/secrets.yml")
    done
    echo "==> creating the lab containers (3 EMQX nodes, HAProxy, NGINX, Prometheus)"
    playbook "$shared/create.yml" -i localhost, -c local -e "ansible_python_interpreter=$controller_python" \
      -e @scripts/lab-platforms.yml -e "molecule_instance_config=$state/instances.yml"
    playbook "$shared/prepare.yml" -i inventories/lab
    echo "==> running site.yml against the lab"
    playbook site.yml -i inventories/lab -e "@$state/secrets.yml" "$@"
    echo "==> lab ready: the dashboard of node 1 is http://172.30.10.11:18083 (user admin, password in .lab/secrets.yml)"
    echo "==> Prometheus: http://172.30.10.30:9090 (targets: /targets, alerts: /alerts)"
    ;;
  down)
    if docker info >/dev/null 2>&1; then
      playbook "$shared/destroy.yml" -i localhost, -c local -e "ansible_python_interpreter=$controller_python" \
        -e @scripts/lab-platforms.yml -e "molecule_instance_config=$state/instances.yml" >/dev/null
    fi
    rm -rf "$state"
    echo "==> lab removed"
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
