#!/usr/bin/env python3
"""A small CNI runner (the CNI 1.0 / 0.4 exec protocol, stdlib only) for tests and benchmarks.

ctr 1.6 runs CNI ADD for `run --cni` but publishes no ports and runs no DEL for a detached task,
so the scripts drive the plugins of a conflist themselves with this:

  cni_run.py add|del --conflist FILE --netns PATH --id CONTAINER_ID [--ifname eth0]
             [--only TYPE[,TYPE...]] [--port HOST:CONTAINER[/tcp|udp]]... [--prev-result FILE]
             [--cache FILE] [--path DIR[:DIR...]]

add runs the plugins in order, each getting the previous result as prevResult; del runs them in
reverse order. --only keeps the plugins of the given types (e.g. portmap alone for a container
that ctr already attached). --port fills runtimeConfig.portMappings for plugins that declare the
portMappings capability. --prev-result starts the chain from a result file: a bare result or
libcni's cache (/var/lib/cni/results/NET-ID-IF, whose "result" key holds it). --cache: add writes
its final result there, del reads it as prevResult. The final result is printed on stdout.
"""
import argparse
import json
import os
import subprocess
import sys


def load_result(path):
    with open(path) as f:
        data = json.load(f)
    # libcni's cache wraps the result ({"kind": "cniCacheV1", ..., "result": {...}}).
    return data.get("result", data) if isinstance(data, dict) else data


def parse_port(text):
    proto = "tcp"
    if "/" in text:
        text, proto = text.split("/", 1)
    host, container = text.split(":", 1)
    return {"hostPort": int(host), "containerPort": int(container), "protocol": proto}


def run_plugin(plugin, conf, command, args, cni_path):
    binary = None
    for d in cni_path.split(":"):
        candidate = os.path.join(d, plugin["type"])
        if os.access(candidate, os.X_OK):
            binary = candidate
            break
    if binary is None:
        sys.exit(f"cni_run: plugin {plugin['type']} not found in {cni_path}")
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=args.id, CNI_NETNS=args.netns,
               CNI_IFNAME=args.ifname, CNI_PATH=cni_path)
    proc = subprocess.run([binary], input=json.dumps(conf).encode(), env=env,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        sys.exit(f"cni_run: {command} {plugin['type']} failed ({proc.returncode}): "
                 f"{proc.stdout.decode(errors='replace').strip()}")
    out = proc.stdout.decode().strip()
    return json.loads(out) if out else None


def main():
    p = argparse.ArgumentParser(description="run a CNI conflist's plugins against a netns")
    p.add_argument("command", choices=["add", "del"])
    p.add_argument("--conflist", required=True)
    p.add_argument("--netns", default="")
    p.add_argument("--id", required=True)
    p.add_argument("--ifname", default="eth0")
    p.add_argument("--only", default="")
    p.add_argument("--port", action="append", default=[])
    p.add_argument("--prev-result")
    p.add_argument("--cache")
    p.add_argument("--path", default="/opt/cni/bin:/usr/lib/cni")
    args = p.parse_args()

    with open(args.conflist) as f:
        conflist = json.load(f)
    plugins = conflist["plugins"]
    if args.only:
        wanted = set(args.only.split(","))
        plugins = [pl for pl in plugins if pl["type"] in wanted]
    runtime = {}
    if args.port:
        runtime["portMappings"] = [parse_port(x) for x in args.port]

    prev = None
    if args.prev_result:
        prev = load_result(args.prev_result)
    elif args.command == "del" and args.cache and os.path.exists(args.cache):
        prev = load_result(args.cache)

    command = args.command.upper()
    order = plugins if command == "ADD" else list(reversed(plugins))
    for plugin in order:
        conf = dict(plugin)
        conf["name"] = conflist["name"]
        conf["cniVersion"] = conflist["cniVersion"]
        caps = {k for k, v in plugin.get("capabilities", {}).items() if v}
        rc = {k: v for k, v in runtime.items() if k in caps}
        if rc:
            conf["runtimeConfig"] = rc
        if prev is not None:
            conf["prevResult"] = prev
        result = run_plugin(plugin, conf, command, args, args.path)
        if command == "ADD":
            prev = result
    if command == "ADD":
        if args.cache:
            with open(args.cache, "w") as f:
                json.dump(prev, f)
        json.dump(prev, sys.stdout)
        sys.stdout.write("\n")
    elif args.cache and os.path.exists(args.cache):
        os.unlink(args.cache)


if __name__ == "__main__":
    main()
