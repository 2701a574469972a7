#!/usr/bin/env bash
# Writes a busybox root filesystem tarball to $1, built from Debian's busybox-static: the static
# busybox binary in /bin, a link per applet, and the few files a shell expects (/etc/passwd,
# /etc/group, /tmp, /root). `berth import` turns it into the local `busybox` image; no network.
set -euo pipefail
out="${1:?usage: busybox-rootfs.sh OUT.tar}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
if [ ! -x "$BUSYBOX" ]; then
  echo "busybox-rootfs: $BUSYBOX is missing; install Debian's busybox-static (scripts/setup.sh does)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
r="$work/rootfs"
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home,var/log,var/run,dev,proc,sys}
chmod 1777 "$r/tmp"
chmod 0700 "$r/root"
cp "$BUSYBOX" "$r/bin/busybox"
# `busybox --list-full` names each applet with its directory (bin/ls, usr/sbin/chroot, ...).
"$BUSYBOX" --list-full | while read -r applet; do
  [ "$applet" = "bin/busybox" ] && continue
  rel="$(dirname "$applet" | sed -e 's#[^/]\+#..#g')"
  ln -sf "$rel/bin/busybox" "$r/$applet"
done
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
nogroup:x:65534:
G
# Reproducible: fixed owner, order and times, so the same busybox gives the same image ID.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00Z' \
  -C "$r" -cf "$out" .
