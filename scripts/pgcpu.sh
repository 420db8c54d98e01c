#!/usr/bin/env bash
# pgcpu.sh: run a command (a benchmark binary) and print the CPU time it
# cost: its own utime+stime, and that of the Postgres backends serving its
# connections (found by client port in pg_stat_activity, sampled from /proc
# every 0.2 s; a backend's last sample counts, so one that exits between
# two samples loses at most 0.2 s of its time). Other sessions' backends
# are not counted, which is what makes the figure usable on a shared machine.
#
#   PGCPU_PER=<n> scripts/pgcpu.sh ./deliver.test -test.run '^$' -test.bench PacedTenThousand ...
#
# prints "pgcpu: postgres <ms> test <ms> backends <n>" and the same per
# 1,000 of n: PGCPU_PER, or the "<n> produced" the benchmark reported. PGURL (default
# postgres://postgres@127.0.0.1:5432/test) is where pg_stat_activity is read.
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/test}
tick=$(getconf CLK_TCK)
out=$(mktemp)
/usr/bin/time -f '%U %S' -o "$out.time" "$@" > >(tee "$out") &
wrapper=$!
declare -A last # backend pid -> utime+stime ticks
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }
while kill -0 "$wrapper" 2>/dev/null; do
	child=$(ps -o pid=,comm= --ppid "$wrapper" | awk '$2 != "tee" {print $1; exit}')
	if [ -n "$child" ]; then
		ports=$(ss -tnpH state established '( dport = :5432 )' 2>/dev/null | grep "pid=$child," |
			awk '{n = split($3, a, ":"); print a[n]}' | paste -sd, -)
		if [ -n "$ports" ]; then
			for pid in $(psql "$PGURL" -Atc "SELECT pid FROM pg_stat_activity WHERE client_port IN ($ports)" 2>/dev/null); do
				last[$pid]=${last[$pid]:-0}
			done
		fi
	fi
	for pid in "${!last[@]}"; do
		t=$(ticks "$pid")
		[ -n "$t" ] && last[$pid]=$t
	done
	sleep 0.2
done
wait "$wrapper"
rc=$?
pg=0
for pid in "${!last[@]}"; do pg=$((pg + last[$pid])); done
pgms=$((pg * 1000 / tick))
testms=$(awk '{printf "%d", ($1 + $2) * 1000}' "$out.time")
echo "pgcpu: postgres ${pgms} ms test ${testms} ms backends ${#last[@]}"
# A benchmark that reports "<n> produced" (the paced deliver benchmarks)
# gives the divisor itself.
per=${PGCPU_PER:-$(grep -oE '[0-9.]+ produced' "$out" | tail -1 | cut -d' ' -f1 | cut -d. -f1)}
if [ -n "$per" ] && [ "$per" -gt 0 ]; then
	PGCPU_PER=$per
	echo "pgcpu: per 1000: postgres $((pgms * 1000 / PGCPU_PER)) ms test $((testms * 1000 / PGCPU_PER)) ms"
fi
rm -f "$out" "$out.time"
exit $rc
