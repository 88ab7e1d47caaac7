# The network checks of `husk run` (docs/networking.md), shared by
# run_net_husk_vmm.sh (husk-vmm inside the KVM-capable test machine) and
# run_net_qemu.sh (QEMU on this host). Sourced after run_checks.bash, whose
# hrun/expect/result helpers they use; HUSK, ROOTFS and MODE as there.
# Host ports from NET_PORT_BASE on (four of them).
NET_PORT_BASE=${NET_PORT_BASE:-18080}

# (a) A TCP echo server in the container, published with -p, answers a
# client on the host.
check_net_publish() {
	local hp=$NET_PORT_BASE got="" pid i
	timeout -k 10 "$RUN_TIMEOUT" "$HUSK" run --vmm "$MODE" --rm \
		-p "127.0.0.1:$hp:8080" --rootfs "$ROOTFS" \
		nc -l -p 8080 -e cat >"$work/out" 2>"$work/err" </dev/null &
	pid=$!
	# Until the guest listens, slirp takes the connection and drops it.
	for i in $(seq 1 "$RUN_TIMEOUT"); do
		got=$(echo husk-net-echo | timeout 10 socat -t 5 - "TCP:127.0.0.1:$hp" 2>/dev/null)
		[ "$got" = husk-net-echo ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	wait "$pid"
	rc=$?
	expect "-p 127.0.0.1:$hp:8080: an echo server in the container answers the host" \
		'[ "$got" = husk-net-echo ] && [ "$rc" = 0 ]'
}

# (b) The container reaches a server on the host through the NAT: the
# gateway 10.0.2.2 is the host's loopback.
check_net_outbound() {
	local hp=$((NET_PORT_BASE + 1)) www="$work/www" httpd
	mkdir -p "$www"
	echo husk-net-hello >"$www/hello.txt"
	busybox httpd -f -p "127.0.0.1:$hp" -h "$www" &
	httpd=$!
	hrun --rm --rootfs "$ROOTFS" wget -q -O - "http://10.0.2.2:$hp/hello.txt"
	kill "$httpd" 2>/dev/null
	wait "$httpd" 2>/dev/null
	expect "the container fetches http://10.0.2.2:$hp/ from the host" \
		'[ "$rc" = 0 ] && [ "$(out)" = husk-net-hello ]'
}

# (c) The default network has eth0 and the DNS forwarder in resolv.conf;
# --network none has no NIC (the kernel's sit0 tunnel stays down), lo up,
# and an empty resolv.conf.
check_net_interfaces() {
	hrun --rm --rootfs "$ROOTFS" sh -c 'cat /proc/net/dev /etc/resolv.conf; ip -4 addr show eth0; ip route'
	expect "the default network: eth0 10.0.2.15/24, a default route, nameserver 10.0.2.3" \
		'[ "$rc" = 0 ] && grep -q "eth0:" "$work/out" && grep -q "inet 10.0.2.15/24" "$work/out" &&
		 grep -q "default via 10.0.2.2" "$work/out" && grep -qx "nameserver 10.0.2.3" "$work/out"'
	hrun --rm --network none --rootfs "$ROOTFS" sh -c 'cat /proc/net/dev; ip -o link show up; cat /etc/resolv.conf'
	expect "--network none: only lo, and it is up" \
		'[ "$rc" = 0 ] && grep -q " lo:" "$work/out" && ! grep -q eth "$work/out" &&
		 [ "$(grep -c "^[0-9]*: " "$work/out")" = 1 ] && grep -q "^1: lo:.*UP" "$work/out" &&
		 ! grep -q nameserver "$work/out"'
}

# (d) A published host port that is taken fails before the VM boots.
check_net_port_in_use() {
	local hp=$((NET_PORT_BASE + 2)) holder
	socat "TCP-LISTEN:$hp,bind=127.0.0.1,reuseaddr,fork" /dev/null &
	holder=$!
	for _ in $(seq 1 50); do
		socat -u /dev/null "TCP:127.0.0.1:$hp" 2>/dev/null && break
		sleep 0.1
	done
	hrun --rm -p "127.0.0.1:$hp:80" --rootfs "$ROOTFS" true
	expect "-p with a port in use: exit 125, 'port 127.0.0.1:$hp is already in use'" \
		'[ "$rc" = 125 ] && grep -q "port 127.0.0.1:$hp is already in use" "$work/err"'
	if [ "$MODE" = husk ]; then
		timeout 60 "$(dirname "$HUSK")/husk-vmm" --kernel "$(dirname "$HUSK")/../share/husk/vmlinux" \
			--net "user,hostfwd=tcp:127.0.0.1:$hp-:80" >"$work/out" 2>"$work/err"
		rc=$?
		expect "husk-vmm --net with a port in use: exit 1 before booting" \
			'[ "$rc" = 1 ] && grep -q "port 127.0.0.1:$hp is already in use" "$work/err" && [ ! -s "$work/out" ]'
	fi
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
}

# ---- the tap network (--network tap:BRIDGE --ip ...): needs root and a
# kernel with tun and bridge, so only inside the test machine
# (NET_TAP=1). ----
NET_BRIDGE=br-husk

net_taps() { ls /sys/class/net | grep '^husk' || true; }

# (e) Two VMs on one bridge: A serves twice on port 9000, the host reaches
# it at 10.88.0.2, then B (10.88.0.3) does; A's eth0 has the address and
# the bridge's address as its gateway; the taps sit on the bridge while
# the VMs run and are gone after.
check_net_tap_two_vms() {
	ip link add "$NET_BRIDGE" type bridge
	ip addr add 10.88.0.1/24 dev "$NET_BRIDGE"
	ip link set "$NET_BRIDGE" up
	local a got="" ports="" i
	timeout -k 10 "$RUN_TIMEOUT" "$HUSK" run --vmm "$MODE" --rm \
		--network "tap:$NET_BRIDGE" --ip 10.88.0.2/24 --rootfs "$ROOTFS" \
		sh -c 'ip -4 addr show eth0; ip route; nc -l -p 9000 -e echo pong-host; nc -l -p 9000 -e echo pong' \
		>"$work/a.out" 2>"$work/a.err" </dev/null &
	a=$!
	# Until the guest listens, it answers with a reset (or not at all).
	for i in $(seq 1 "$RUN_TIMEOUT"); do
		got=$(timeout 5 socat -t 3 - TCP:10.88.0.2:9000,connect-timeout=2 </dev/null 2>/dev/null)
		[ "$got" = pong-host ] && break
		kill -0 "$a" 2>/dev/null || break
		sleep 1
	done
	ports=$(ls /sys/class/net/$NET_BRIDGE/brif 2>/dev/null | tr '\n' ' ')
	# For show() on failure: what A said so far.
	rc=$got
	cp "$work/a.out" "$work/out"
	cp "$work/a.err" "$work/err"
	expect "tap: the host reaches a VM at 10.88.0.2 over $NET_BRIDGE (its tap: $ports)" \
		'[ "$got" = pong-host ] && [[ "$ports" == husk* ]]'
	hrun --rm --network "tap:$NET_BRIDGE" --ip 10.88.0.3/24 --rootfs "$ROOTFS" \
		sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do r=$(nc 10.88.0.2 9000 </dev/null) && [ -n "$r" ] && break; sleep 1; done; echo "$r"'
	expect "tap: a second VM (10.88.0.3) gets pong from the first over the bridge" \
		'[ "$rc" = 0 ] && [ "$(out)" = pong ]'
	wait "$a"
	rc=$?
	cp "$work/a.out" "$work/out"
	cp "$work/a.err" "$work/err"
	expect "tap: eth0 is 10.88.0.2/24 with the bridge's 10.88.0.1 as gateway" \
		'[ "$rc" = 0 ] && grep -q "inet 10.88.0.2/24" "$work/out" && grep -q "default via 10.88.0.1" "$work/out"'
	for i in $(seq 1 20); do [ -z "$(net_taps)" ] && break; sleep 0.2; done
	echo "after: $(net_taps)" >"$work/out"
	expect "tap: no tap is left once the VMs have ended" '[ -z "$(net_taps)" ]'
}

# (f) Errors before boot: an unknown bridge, a name that is taken; husk
# run exits 125, husk-vmm 1.
check_net_tap_errors() {
	hrun --rm --network tap:br-x --ip 10.88.0.2/24 --rootfs "$ROOTFS" true
	expect "tap: an unknown bridge: exit 125, 'bridge br-x does not exist'" \
		'[ "$rc" = 125 ] && grep -q "bridge br-x does not exist" "$work/err"'
	hrun --rm --network "tap:$NET_BRIDGE,ifname=$NET_BRIDGE" --ip 10.88.0.2/24 --rootfs "$ROOTFS" true
	expect "tap: a name in use: exit 125, 'interface $NET_BRIDGE is in use'" \
		'[ "$rc" = 125 ] && grep -q "interface $NET_BRIDGE is in use" "$work/err"'
	if [ "$MODE" = husk ]; then
		timeout 60 "$(dirname "$HUSK")/husk-vmm" --kernel "$(dirname "$HUSK")/../share/husk/vmlinux" \
			--net tap,bridge=br-x >"$work/out" 2>"$work/err"
		rc=$?
		expect "husk-vmm --net tap,bridge=br-x: exit 1 before booting" \
			'[ "$rc" = 1 ] && grep -q "bridge br-x does not exist" "$work/err" && [ ! -s "$work/out" ]'
		# Without CAP_NET_ADMIN (nobody, via setpriv): the message says so.
		if command -v setpriv >/dev/null; then
			# A throwaway machine: open the devices to all, so that
			# only the capability is missing.
			chmod 666 /dev/net/tun /dev/kvm 2>/dev/null
			timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
				"$(dirname "$HUSK")/husk-vmm" --kernel "$(dirname "$HUSK")/../share/husk/vmlinux" \
				--net tap >"$work/out" 2>"$work/err"
			rc=$?
			expect "husk-vmm --net tap without CAP_NET_ADMIN: exit 1, says so" \
				'[ "$rc" = 1 ] && grep -q "creating a tap needs CAP_NET_ADMIN" "$work/err"'
		fi
	fi
	[ -z "$(net_taps)" ] || echo "# left over: $(net_taps)"
}

run_net_all() {
	check_net_interfaces
	check_net_publish
	check_net_outbound
	check_net_port_in_use
	if [ "${NET_TAP:-0}" = 1 ]; then
		check_net_tap_two_vms
		check_net_tap_errors
		ip link del "$NET_BRIDGE" 2>/dev/null
	fi
	echo "1..$n"
	[ "$fails" = 0 ]
}
