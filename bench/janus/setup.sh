#!/usr/bin/env bash
# Install Janus (Debian's package) if missing and write a config folder for the benchmark.
#
#   bench/janus/setup.sh CONFDIR IP [HTTP_PORT] [RTP_RANGE] [EVENT_LOOPS]
#
# Only the VideoRoom plugin and the plain HTTP transport are enabled; the HTTP API listens on
# 127.0.0.1:HTTP_PORT, the admin API is off. Janus 1.1.2 never gathers ICE candidates on a
# loopback interface, so IP must be a non-loopback address of this machine (the bench uses the
# veth address of its own network namespace, or the primary IPv4 from `ip -4 route get 1.1.1.1`,
# which sends nothing); traffic to a local address still stays on `lo`. No STUN/TURN, half
# trickle, no mDNS, no IPv6. EVENT_LOOPS=1 shares one media thread between all handles, the
# counterpart of `bedside serve --workers 1` (Janus's default is one thread per handle).
# The bench runs Janus itself: `janus -F CONFDIR`.
set -euo pipefail

confdir=${1:?usage: setup.sh CONFDIR IP [HTTP_PORT] [RTP_RANGE] [EVENT_LOOPS]}
ip=${2:?usage: setup.sh CONFDIR IP [HTTP_PORT] [RTP_RANGE] [EVENT_LOOPS]}
http_port=${3:-8088}
rtp_range=${4:-20000-40000}
event_loops=${5:-1}

if ! command -v janus >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq janus >/dev/null
fi

libdir=$(dirname "$(dpkg -L janus 2>/dev/null | grep -m1 '/janus/plugins/libjanus_videoroom.so$' || echo /usr/lib/x86_64-linux-gnu/janus/plugins/x)")
libdir=$(dirname "$libdir")
[ -f "$libdir/plugins/libjanus_videoroom.so" ] || { echo "janus plugins not found under $libdir" >&2; exit 1; }

# Every .so except the ones we want, comma separated.
others() { (cd "$1" && ls *.so 2>/dev/null | grep -v -x "$2" | paste -sd, -); }

mkdir -p "$confdir"
cat > "$confdir/janus.jcfg" <<CFG
general: {
	configs_folder = "$confdir"
	plugins_folder = "$libdir/plugins"
	transports_folder = "$libdir/transports"
	events_folder = "$libdir/events"
	loggers_folder = "$libdir/loggers"
	debug_level = 3
	admin_secret = "bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	interface = "$ip"
	session_timeout = 120
	event_loops = $event_loops
}
certificates: {
}
media: {
	ipv6 = false
	rtp_port_range = "$rtp_range"
}
nat: {
	nice_debug = false
	full_trickle = false
	ignore_mdns = true
	ice_enforce_list = "$ip"
}
plugins: {
	disable = "$(others "$libdir/plugins" libjanus_videoroom.so)"
}
transports: {
	disable = "$(others "$libdir/transports" libjanus_http.so)"
}
loggers: {
	disable = "$(others "$libdir/loggers" none)"
}
events: {
	broadcast = false
}
CFG

cat > "$confdir/janus.transport.http.jcfg" <<CFG
general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = $http_port
	interface = "lo"
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
CFG

# Rooms are created over the API by the bench; none predefined.
cat > "$confdir/janus.plugin.videoroom.jcfg" <<CFG
general: {

}
CFG

echo "janus config for $ip written to $confdir (HTTP 127.0.0.1:$http_port, RTP $rtp_range, event_loops $event_loops)"
