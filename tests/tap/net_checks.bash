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

run_net_all() {
	check_net_interfaces
	check_net_publish
	check_net_outbound
	check_net_port_in_use
	echo "1..$n"
	[ "$fails" = 0 ]
}
