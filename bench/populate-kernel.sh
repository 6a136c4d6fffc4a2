# Guest script (run by ../shared/kernel/run-local.sh): a 256 MiB file and a
# 10,000-file tree on a local-mode OCFS2 volume, written by the Linux kernel.
set -e
mount -t ocfs2 /dev/vda /mnt
gdd if=/dev/urandom of=/mnt/big-256m.bin bs=1M count=256 2>/dev/null
mkdir /mnt/tree
d=0
while [ $d -lt 100 ]; do
  mkdir /mnt/tree/d$d
  f=0
  while [ $f -lt 100 ]; do echo "$d/$f" > /mnt/tree/d$d/f$f; f=$((f+1)); done
  d=$((d+1))
done
sync
md5sum /mnt/big-256m.bin > big.md5
umount /mnt
