# Sourced (bash) by the networking test and benchmark: a CNI bridge network for `ctr run --cni`,
# which in containerd 1.6 reads configurations only from /etc/cni/net.d and plugins only from
# /opt/cni/bin (Debian installs them in /usr/lib/cni). Needs root and containernetworking-plugins.
#
#   cni_setup NAME BRIDGE PREFIX   writes /etc/cni/net.d/00-NAME.conflist (bridge + host-local on
#                                  PREFIX.0/24 + portmap), links /opt/cni/bin if missing; sets
#                                  cni_conf, cni_name, cni_bridge, cni_gateway
#   cni_result NS ID               the cached ADD result of container ID of namespace NS
#   cni_ip NS ID                   the container's IPv4 address from that result
#   cni_del NS ID NETNS            CNI DEL (ctr runs none for `run -d`): frees the address
#   cni_cleanup                    removes the configuration, the bridge and the IPAM state

cni_fail() { echo "FAIL: $*" >&2; exit 1; }

cni_setup() {
  cni_name=$1
  cni_bridge=$2
  cni_gateway="$3.1"
  cni_conf="/etc/cni/net.d/00-$cni_name.conflist"
  cni_made_bin_dir=""
  [ -x /usr/lib/cni/bridge ] || cni_fail "CNI plugins missing (containernetworking-plugins)"
  if [ ! -e /opt/cni/bin ]; then
    mkdir -p /opt/cni
    ln -s /usr/lib/cni /opt/cni/bin
    cni_made_bin_dir=1
  fi
  mkdir -p /etc/cni/net.d
  if ls /etc/cni/net.d/*.conf* >/dev/null 2>&1 && [ ! -e "$cni_conf" ]; then
    cni_fail "/etc/cni/net.d already has CNI configurations; ctr would pick one of them"
  fi
  cat > "$cni_conf" <<JSON
{"cniVersion": "1.0.0", "name": "$cni_name", "plugins": [
  {"type": "bridge", "bridge": "$cni_bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$3.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
}

cni_result() { echo "/var/lib/cni/results/$cni_name-$1-$2-eth0"; }

cni_ip() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d.get("result",d)
print([i["address"].split("/")[0] for i in d["ips"] if "." in i["address"]][0])' \
    "$(cni_result "$1" "$2")"
}

cni_del() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/cni_run.py" del --conflist "$cni_conf" --netns "$3" \
    --id "$1-$2" --prev-result "$(cni_result "$1" "$2")" >/dev/null
}

cni_cleanup() {
  set +e
  rm -f "$cni_conf"
  rmdir /etc/cni/net.d /etc/cni 2>/dev/null
  if [ -n "$cni_made_bin_dir" ]; then
    rm -f /opt/cni/bin
    rmdir /opt/cni 2>/dev/null
  fi
  ip link del "$cni_bridge" 2>/dev/null
  rm -rf "/var/lib/cni/networks/$cni_name" /var/lib/cni/results/"$cni_name"-*
  set -e
}
