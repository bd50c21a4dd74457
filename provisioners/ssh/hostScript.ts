/**
 * The host agent: one POSIX sh script uploaded to every host (content-addressed, so an upgrade uploads a new file).
 * Every remote operation is `sh -c <HOST_LOADER> <script> <sha256> <command> <args...>` with each argument quoted by
 * shellQuote; the script only ever uses its arguments inside double quotes, so no value is re-parsed by a shell.
 * The file on disk is never trusted: workloads run as the SSH user and can write it, so the loader reads it once,
 * checks the text against the digest the daemon computed and runs only that checked text (exit 198 otherwise).
 * Commands: facts, artifact, manifest, run, supervise, start, stop, status, list, destroy, cgroups, read-manifest, ports,
 * usage.
 */
import { createHash } from 'node:crypto'

/** Exit code of the loader when the script file is missing (or unreadable). */
export const LOADER_MISSING = 197
/** Exit code of the loader when the script file does not match the expected sha256 (or sha256sum is missing). */
export const LOADER_MODIFIED = 198

/**
 * `sh -c` program that runs the agent: $0 the script path, $1 its expected sha256, then the command. Reads the file
 * once into memory, so what is checked is exactly what runs (no window between check and exec). One line, no single
 * quote: the script embeds it as a literal to start its own supervisors the same way.
 */
export const HOST_LOADER =
  `BPO_TEXT=$(cat "$0" 2>/dev/null && echo .) || exit ${LOADER_MISSING}; BPO_TEXT=\${BPO_TEXT%.}; BPO_SUM=$1; shift; ` +
  `[ "$(printf %s "$BPO_TEXT" | sha256sum 2>/dev/null | cut -d" " -f1)" = "$BPO_SUM" ] || exit ${LOADER_MODIFIED}; eval "$BPO_TEXT"`

/** Script text (POSIX sh; dash, bash and busybox sh run it). */
export const HOST_SCRIPT = `#!/bin/sh
# blueprint-operator host agent (uploaded by the SSH target; every argument arrives as one quoted word).
# usage: sh -c "$BPO_LOADER" bpo-host.sh <sha256 of this file> <command> [args...]
set -u
SELF=$0
# how this script starts itself again (supervisors, systemd units): through the loader, with the digest it was checked against
BPO_LOADER='${HOST_LOADER}'
umask 022

die() { echo "bpo-host: $*" >&2; exit 1; }

# pidfile holds a live process whose command line still names this replica dir (guards against pid reuse)
alive() {
  [ -s "$1" ] || return 1
  _p=$(cat "$1" 2>/dev/null) || return 1
  case $_p in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$_p" 2>/dev/null || return 1
  [ -r "/proc/$_p/cmdline" ] || return 0
  tr '\\000' '\\n' < "/proc/$_p/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

pid_alive() {
  [ -s "$1" ] || return 1
  _p=$(cat "$1" 2>/dev/null) || return 1
  case $_p in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$_p" 2>/dev/null
}

write_stdin() {
  cat > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

cmd_facts() {
  echo "uid=$(id -u)"
  sd=no
  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sd=system
    # a user manager outlives the SSH session only when the user lingers
    elif systemctl --user show-environment >/dev/null 2>&1 && loginctl show-user "$(id -un)" -p Linger 2>/dev/null | grep -qx 'Linger=yes'; then sd=user
    fi
  fi
  echo "systemd=$sd"
  if command -v curl >/dev/null 2>&1; then echo fetch=curl
  elif command -v wget >/dev/null 2>&1; then echo fetch=wget
  else echo fetch=none
  fi
  command -v sha256sum >/dev/null 2>&1 && echo sha256sum=yes || echo sha256sum=no
  command -v setsid >/dev/null 2>&1 && echo setsid=yes || echo setsid=no
  command -v setpriv >/dev/null 2>&1 && echo setpriv=yes || echo setpriv=no
  rt=none
  if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then rt=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then rt=docker
  fi
  echo "runtime=$rt"
  # rootless podman on cgroup v1 starts containers but ignores --memory/--cpus/--pids-limit
  lim=yes
  if [ "$rt" = podman ] && [ "$(podman info --format '{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}' 2>/dev/null)" = "true v1" ]; then lim=no; fi
  echo "runtime_limits=$lim"
  echo "cgroup=$(cgroup_mode)"
}

cgroup_mode() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    if grep -qw memory /sys/fs/cgroup/cgroup.controllers && grep -qw cpu /sys/fs/cgroup/cgroup.controllers && [ -w /sys/fs/cgroup ]; then echo v2; else echo none; fi
  elif [ -d /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then echo v1
  else echo none
  fi
}

# Put the calling shell ($$, inherited by every child) into a limited cgroup; prints what was applied.
apply_limits() {
  _cg=$1; _mem=$2; _cpu=$3; _dir=$4
  : > "$_dir/cgroups"
  case $(cgroup_mode) in
    v1)
      for _c in memory cpu; do
        mkdir -p "/sys/fs/cgroup/$_c/bpo/$_cg" 2>/dev/null || { echo "none: cannot create $_c cgroup"; return 0; }
        echo "/sys/fs/cgroup/$_c/bpo/$_cg" >> "$_dir/cgroups"
      done
      [ "$_mem" -gt 0 ] && echo "$_mem" > "/sys/fs/cgroup/memory/bpo/$_cg/memory.limit_in_bytes"
      if [ "$_cpu" -gt 0 ]; then
        echo 100000 > "/sys/fs/cgroup/cpu/bpo/$_cg/cpu.cfs_period_us"
        echo "$_cpu" > "/sys/fs/cgroup/cpu/bpo/$_cg/cpu.cfs_quota_us"
      fi
      # CPU accounting (read by the usage command) where cpuacct is a hierarchy of its own; optional
      if [ -d /sys/fs/cgroup/cpuacct ] && mkdir -p "/sys/fs/cgroup/cpuacct/bpo/$_cg" 2>/dev/null && echo $$ > "/sys/fs/cgroup/cpuacct/bpo/$_cg/cgroup.procs" 2>/dev/null; then
        echo "/sys/fs/cgroup/cpuacct/bpo/$_cg" >> "$_dir/cgroups"
      fi
      echo $$ > "/sys/fs/cgroup/memory/bpo/$_cg/cgroup.procs" && echo $$ > "/sys/fs/cgroup/cpu/bpo/$_cg/cgroup.procs" \\
        && echo "cgroup-v1 memory=$_mem cpu_quota_us=$_cpu" || echo "none: cannot join cgroup"
      ;;
    v2)
      mkdir -p /sys/fs/cgroup/bpo 2>/dev/null && echo '+memory +cpu' > /sys/fs/cgroup/bpo/cgroup.subtree_control 2>/dev/null \\
        && mkdir -p "/sys/fs/cgroup/bpo/$_cg" 2>/dev/null || { echo "none: cannot create a cgroup v2 group"; return 0; }
      echo "/sys/fs/cgroup/bpo/$_cg" >> "$_dir/cgroups"
      [ "$_mem" -gt 0 ] && echo "$_mem" > "/sys/fs/cgroup/bpo/$_cg/memory.max"
      [ "$_cpu" -gt 0 ] && echo "$_cpu 100000" > "/sys/fs/cgroup/bpo/$_cg/cpu.max"
      echo $$ > "/sys/fs/cgroup/bpo/$_cg/cgroup.procs" && echo "cgroup-v2 memory=$_mem cpu_quota_us=$_cpu" || echo "none: cannot join cgroup"
      ;;
    *) echo "none: no writable cgroup hierarchy" ;;
  esac
}

# Directories of the replica cgroup named $1 (bpo-<tag>-<id>-r<i>, passed by the daemon): computed here, never read
# from the replica dir, which the workload can write.
cgroup_dirs() {
  case $1 in ''|*[!a-z0-9-]*) return 0 ;; esac
  for _d in "/sys/fs/cgroup/memory/bpo/$1" "/sys/fs/cgroup/cpu/bpo/$1" "/sys/fs/cgroup/cpuacct/bpo/$1" "/sys/fs/cgroup/bpo/$1"; do [ -d "$_d" ] && echo "$_d"; done
  return 0
}

# SIGKILL every process in the cgroup named $1 until it is empty (bounded): what left the supervisor's process group
# or session is still in there. v2 kills the group at once through cgroup.kill where the kernel has it.
kill_cgroups() {
  _dirs=$(cgroup_dirs "$1")
  [ -n "$_dirs" ] || return 0
  for _d in $_dirs; do [ -f "$_d/cgroup.kill" ] && echo 1 > "$_d/cgroup.kill" 2>/dev/null; done
  _k=0
  while [ $_k -lt 100 ]; do
    _left=0
    for _d in $_dirs; do
      for _p in $(cat "$_d/cgroup.procs" 2>/dev/null); do
        case $_p in ''|*[!0-9]*|0|1) continue ;; esac
        kill -KILL "$_p" 2>/dev/null && _left=1
      done
    done
    [ $_left = 0 ] && return 0
    sleep 0.1; _k=$((_k + 1))
  done
  return 1
}

# Kill and remove the cgroup named $1 (leftover members first; rmdir retried while killed processes exit).
remove_cgroups() {
  kill_cgroups "$1" || { echo "bpo-host: processes in cgroup $1 survived SIGKILL" >&2; return 1; }
  _k=0
  while [ $_k -lt 25 ]; do
    for _d in $(cgroup_dirs "$1"); do rmdir "$_d" 2>/dev/null; done
    [ -z "$(cgroup_dirs "$1")" ] && return 0
    sleep 0.2; _k=$((_k + 1))
  done
  echo "bpo-host: cgroup $1 could not be removed" >&2
  return 1
}

# Names of the cgroups (any hierarchy) that start with $1, optionally only those followed by a replica index.
cgroup_names() {
  case $1 in ''|*[!a-z0-9-]*) return 0 ;; esac
  for _b in /sys/fs/cgroup/memory/bpo /sys/fs/cgroup/cpu/bpo /sys/fs/cgroup/cpuacct/bpo /sys/fs/cgroup/bpo; do
    for _d in "$_b/$1"*; do
      [ -d "$_d" ] || continue
      _n=\${_d##*/}
      [ "\${2:-}" = index ] && case \${_n#"$1"} in ''|*[!0-9]*) continue ;; esac
      echo "$_n"
    done
  done | sort -u
}

# artifact <root> <sha256> download <url> [maxBytes] | upload <tmpfile> | check -: verify on this host before it becomes executable
cmd_artifact() {
  root=$1; sum=$2; how=$3; src=$4; max=\${5:-536870912}
  case $max in ''|*[!0-9]*) die "bad size cap" ;; esac
  case $sum in *[!0-9a-f]*|'') die "bad sha256" ;; esac
  mkdir -p "$root/artifacts" || exit 1
  final="$root/artifacts/$sum"
  if [ -f "$final" ]; then
    got=$(sha256sum "$final" | cut -d' ' -f1)
    [ "$got" = "$sum" ] && { [ "$how" = upload ] && rm -f "$src"; echo cached; return 0; }
    rm -f "$final"
  fi
  [ "$how" = check ] && exit 23
  tmp="$root/artifacts/.part.$sum.$$"
  case $how in
    download)
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL --proto '=http,https' --proto-redir '=http,https' --max-redirs 5 --max-filesize "$max" --connect-timeout 20 --max-time 600 -o "$tmp" "$src" || { rm -f "$tmp"; echo "download failed" >&2; exit 21; }
      elif command -v wget >/dev/null 2>&1; then
        wget -q -T 60 --max-redirect=5 -O "$tmp" "$src" || { rm -f "$tmp"; echo "download failed" >&2; exit 21; }
      else
        echo "neither curl nor wget" >&2; exit 22
      fi
      ;;
    upload) mv -f "$src" "$tmp" || exit 1 ;;
    *) die "bad mode" ;;
  esac
  # curl enforces --max-filesize only when the size is announced, wget not at all
  [ "$(wc -c < "$tmp")" -le "$max" ] || { rm -f "$tmp"; echo "artifact above the $max byte cap" >&2; exit 25; }
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then rm -f "$tmp"; echo "sha256 mismatch: got $got" >&2; exit 20; fi
  chmod 0755 "$tmp" && mv -f "$tmp" "$final" && echo verified
}

# manifest <depdir> <owner> < manifest.json
cmd_manifest() {
  mkdir -p "$1/replicas" "$1/data" || exit 1
  # readable by the agent (root) alone: a workload has no business with another deployment's request
  (umask 077 && write_stdin "$1/manifest.json") && printf '%s\\n' "$2" > "$1/owner"
}

# bin is <root>/artifacts/<sha256>: true when its bytes still hash to its name (the workload may have rewritten it)
verify_bin() {
  _want=\${1##*/}
  case $_want in *[!0-9a-f]*|'') return 1 ;; esac
  [ \${#_want} -eq 64 ] || return 1
  [ "$(sha256sum < "$1" 2>/dev/null | cut -d' ' -f1)" = "$_want" ]
}

# run <replicadir> <bin>: the workload itself, with exactly the replica's environment (and PATH)
cmd_run() {
  verify_bin "$2" || { echo "bpo-host: $2 does not match its sha256; refusing to run it" >&2; exit 24; }
  # a workload user (root-owned file, written by start): the workload can then write neither this agent, nor the
  # artifacts, nor its supervisor's files, nor leave its cgroups
  _u=$(cat "$1/user" 2>/dev/null || true)
  if [ -n "$_u" ]; then
    # a bare number is the deployment's own uid (its gid too): no account needed
    case $_u in *[!0-9]*) _g=$(id -g "$_u") || { echo "bpo-host: no user $_u on this host" >&2; exit 26; } ;; *) _g=$_u ;; esac
    exec setpriv --reuid="$_u" --regid="$_g" --clear-groups --no-new-privs env -i PATH="\${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}" sh -c '. "$1" && cd "$DATA_DIR" && exec "$2"' bpo-run "$1/env.sh" "$2"
  fi
  # only PATH survives from the SSH user's session (interpreters such as node may live outside /usr/bin)
  exec env -i PATH="\${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}" sh -c '. "$1" && cd "$DATA_DIR" && exec "$2"' bpo-run "$1/env.sh" "$2"
}

# supervise <replicadir> <bin> <cgroup> <memBytes> <cpuQuotaUs>: restart the workload on exit, with backoff
cmd_supervise() {
  dir=$1; bin=$2
  apply_limits "$3" "$4" "$5" "$dir" > "$dir/limits" 2>&1
  echo $$ > "$dir/supervisor.pid.tmp" && mv -f "$dir/supervisor.pid.tmp" "$dir/supervisor.pid"
  stopping=0; child=''; delay=1
  trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
  while [ "$stopping" = 0 ] && [ ! -e "$dir/stopped" ]; do
    started=$(date +%s)
    # a subshell of this checked, in-memory script: nothing is read from disk but the (verified) artifact
    (cmd_run "$dir" "$bin") >> "$dir/log" 2>&1 < /dev/null &
    child=$!
    echo "$child" > "$dir/child.pid"
    wait "$child"; code=$?
    while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
    [ "$stopping" = 1 ] && break
    [ -e "$dir/stopped" ] && break
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) exit $code, restart in $delay s" >> "$dir/restarts"
    [ $(( $(date +%s) - started )) -ge 60 ] && delay=1
    sleep "$delay" & child=$!
    wait "$child"
    child=''
    delay=$((delay * 2)); [ "$delay" -gt 30 ] && delay=30
  done
  rm -f "$dir/child.pid" "$dir/supervisor.pid"
}

# start <depdir> <index> <mode> <name> <bin-or-dash> <cgroup> <memBytes> <cpuQuotaUs> <port> [runtime args...] < env.sh
# A replica that already runs is left exactly as it is (its env and port files included).
cmd_start() {
  dep=$1; i=$2; mode=$3; name=$4; bin=$5; cg=$6; mem=$7; cpu=$8; port=$9
  shift 9
  dir="$dep/replicas/$i"
  sc=systemctl; sr=systemd-run
  [ "$mode" = systemd-user ] && { sc="systemctl --user"; sr="systemd-run --user"; }
  case $mode in
    setsid) alive "$dir/supervisor.pid" "$dir" && { echo running; return 0; } ;;
    systemd-system|systemd-user) $sc is-active --quiet "$name" && { echo running; return 0; } ;;
    podman|docker) [ "$($mode inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] && { echo running; return 0; } ;;
    *) die "unknown mode" ;;
  esac
  # native modes: the first extra argument names the user the workload runs as, or its own uid (a bare number, which
  # needs no account: its gid is the same number); empty: the SSH user
  wuser=''; wgid=''
  case $mode in setsid|systemd-*) wuser=\${1:-} ;; esac
  case $wuser in *[!a-z0-9_-]*) die "bad workload user" ;; esac
  if [ -n "$wuser" ]; then
    [ "$(id -u)" = 0 ] || die "a workload user needs the agent to run as root"
    command -v setpriv >/dev/null 2>&1 || die "a workload user needs setpriv"
    case $wuser in
      *[!0-9]*) id -u "$wuser" >/dev/null 2>&1 || die "no user $wuser on this host"; wgid=$(id -g "$wuser") ;;
      0*) die "bad workload uid" ;;
      *) wgid=$wuser ;;
    esac
  fi
  mkdir -p "$dir" "$dep/data/$i" || exit 1
  write_stdin "$dir/env.sh" || exit 1
  echo "$port" > "$dir/port"; echo "$mode" > "$dir/mode"; echo "$name" > "$dir/name"
  if [ -n "$wuser" ]; then
    # the data dir is the workload's alone; its replica dir (env file, log, pids) only its group may enter, and
    # nothing above lists another deployment's files (chown -R does not follow links)
    printf '%s\n' "$wuser" > "$dir/user" && chown -R "$wuser:$wgid" "$dep/data/$i" && chmod 0700 "$dep/data/$i" \
      && chown "0:$wgid" "$dir" "$dir/env.sh" && chmod 0710 "$dir" && chmod 0640 "$dir/env.sh" \
      && chmod 0711 "$dep" "$dep/data" "$dep/replicas" && chmod 0600 "$dep/manifest.json" || exit 1
  else rm -f "$dir/user"
  fi
  rm -f "$dir/stopped"
  case $mode in
    setsid)
      [ -x "$bin" ] || die "artifact $bin is not installed"
      [ -f "$dir/supervisor.pid" ] && cmd_stop "$dep" "$i" 0 "$cg" > /dev/null
      rm -f "$dir/stopped"
      setsid sh -c "$BPO_LOADER" "$SELF" "$BPO_SUM" supervise "$dir" "$bin" "$cg" "$mem" "$cpu" < /dev/null >> "$dir/supervisor.log" 2>&1 &
      n=0
      while [ $n -lt 100 ]; do alive "$dir/supervisor.pid" "$dir" && { echo started; return 0; }; sleep 0.1; n=$((n + 1)); done
      die "supervisor did not start"
      ;;
    systemd-system|systemd-user)
      $sc reset-failed "$name" 2>/dev/null
      set --
      # MemoryMax= is the unified-hierarchy name; legacy/hybrid hierarchies take MemoryLimit=
      if [ "$mem" -gt 0 ]; then
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then set -- "$@" -p "MemoryMax=$mem"; else set -- "$@" -p "MemoryLimit=$mem"; fi
      fi
      [ "$cpu" -gt 0 ] && set -- "$@" -p "CPUQuota=$((cpu / 1000))%"
      $sr --unit="$name" --collect -p Restart=always -p RestartSec=2 -p KillMode=control-group "$@" \\
        --description="blueprint-operator replica $i of $(basename "$dep")" sh -c "$BPO_LOADER" "$SELF" "$BPO_SUM" run "$dir" "$bin" || exit 1
      echo started
      ;;
    podman|docker)
      $mode rm -f "$name" >/dev/null 2>&1
      $mode run -d --name "$name" "$@" > "$dir/container.id" || exit 1
      echo started
      ;;
  esac
}

# stop <depdir> <index> [graceSeconds] [cgroupName]
cmd_stop() {
  dir="$1/replicas/$2"; grace=\${3:-10}; cgname=\${4:-}
  [ -d "$dir" ] || { remove_cgroups "$cgname" || exit 1; echo absent; return 0; }
  touch "$dir/stopped"
  mode=$(cat "$dir/mode" 2>/dev/null || echo setsid); name=$(cat "$dir/name" 2>/dev/null || echo '')
  case $mode in
    setsid)
      sp=$(cat "$dir/supervisor.pid" 2>/dev/null || echo ''); cp=$(cat "$dir/child.pid" 2>/dev/null || echo '')
      if alive "$dir/supervisor.pid" "$dir"; then
        kill -TERM "-$sp" 2>/dev/null || kill -TERM "$sp" 2>/dev/null
        n=0
        while kill -0 "$sp" 2>/dev/null && [ $n -lt $((grace * 5)) ]; do sleep 0.2; n=$((n + 1)); done
        kill -KILL "-$sp" 2>/dev/null
        case $cp in ''|*[!0-9]*) ;; *) kill -KILL "$cp" 2>/dev/null ;; esac
      else
        # a workload orphaned by a supervisor killed alone still sits in the supervisor's process group
        case $cp$sp in ''|*[!0-9]*) ;; *)
          if kill -0 "$cp" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$cp/stat" 2>/dev/null | cut -d' ' -f3)" = "$sp" ]; then
            kill -TERM "-$sp" 2>/dev/null; sleep 1; kill -KILL "-$sp" 2>/dev/null
          fi ;;
        esac
      fi
      rm -f "$dir/supervisor.pid" "$dir/child.pid" "$dir/cgroups"
      ;;
    systemd-system|systemd-user)
      sc=systemctl; [ "$mode" = systemd-user ] && sc="systemctl --user"
      $sc stop "$name" 2>/dev/null
      # a unit that did not stop must not be reported as stopped (nor its dir removed by destroy)
      $sc is-active --quiet "$name" && { echo "bpo-host: unit $name is still active after stop" >&2; exit 1; }
      $sc reset-failed "$name" 2>/dev/null
      ;;
    podman|docker) $mode rm -f -t "$grace" "$name" >/dev/null 2>&1 || $mode rm -f "$name" >/dev/null 2>&1 ;;
  esac
  # whatever mode the (workload-writable) replica dir claims, the pidfile supervisor's cgroup goes too
  remove_cgroups "$cgname" || exit 1
  echo stopped
}

replica_state() {
  dir=$1
  mode=$(cat "$dir/mode" 2>/dev/null || echo setsid); name=$(cat "$dir/name" 2>/dev/null || echo '')
  st=dead; id=-
  case $mode in
    setsid)
      if alive "$dir/supervisor.pid" "$dir"; then
        st=running; id=$(cat "$dir/supervisor.pid")
        pid_alive "$dir/child.pid" || st=restarting
      fi ;;
    systemd-system) systemctl is-active --quiet "$name" && { st=running; id=$name; } ;;
    systemd-user) systemctl --user is-active --quiet "$name" && { st=running; id=$name; } ;;
    podman|docker) [ "$($mode inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] && { st=running; id=$name; } ;;
  esac
  [ "$st" = dead ] && [ -e "$dir/stopped" ] && st=stopped
  echo "$st $mode $id"
}

# status <depdir>: "absent", or "present", "replica <i> <state> <mode> <id> <port>" lines and "manifest <json>"
cmd_status() {
  dep=$1
  [ -f "$dep/manifest.json" ] || { echo absent; return 0; }
  echo present
  for r in "$dep"/replicas/*; do
    [ -d "$r" ] || continue
    echo "replica $(basename "$r") $(replica_state "$r") $(cat "$r/port" 2>/dev/null || echo 0)"
  done
  printf 'manifest '; tr -d '\\n' < "$dep/manifest.json"; echo
}

# list <opsdir>: every deployment dir with its owner and replicas
cmd_list() {
  [ -d "$1" ] || return 0
  for d in "$1"/*; do
    [ -f "$d/manifest.json" ] || continue
    echo "deployment $(basename "$d") $(cat "$d/owner" 2>/dev/null | head -n 1)"
    for r in "$d"/replicas/*; do
      [ -d "$r" ] || continue
      echo "replica $(basename "$d") $(basename "$r") $(replica_state "$r") $(cat "$r/port" 2>/dev/null || echo 0)"
    done
  done
}

# destroy <depdir> [graceSeconds] [cgroupPrefix]: stop every replica (in parallel), kill and remove every cgroup
# <cgroupPrefix><index> (also those no replica dir names any more), then remove the directory (data included)
cmd_destroy() {
  dep=$1; g=\${2:-10}; pre=\${3:-}
  if [ -d "$dep" ]; then
    _pids=''
    for r in "$dep"/replicas/*; do [ -d "$r" ] && { (cmd_stop "$dep" "$(basename "$r")" "$g" "$pre$(basename "$r")" > /dev/null) & _pids="$_pids $!"; }; done
    _failed=0
    for _p in $_pids; do wait "$_p" || _failed=1; done
    [ $_failed = 0 ] || die "a replica of $(basename "$dep") did not stop"
  fi
  for _g in $(cgroup_names "$pre" index); do remove_cgroups "$_g" || exit 1; done
  [ -d "$dep" ] || { echo absent; return 0; }
  rm -rf "$dep" && echo destroyed
}

# cgroups <prefix>: "cgroup <name>" for every cgroup named <prefix>... that still holds processes
cmd_cgroups() {
  for _n in $(cgroup_names "$1"); do
    for _d in $(cgroup_dirs "$_n"); do
      grep -q . "$_d/cgroup.procs" 2>/dev/null && { echo "cgroup $_n"; break; }
    done
  done
  return 0
}

# CPU microseconds of the cgroup process $1 is in (v2 cpu.stat usage_usec, v1 cpuacct.usage); fails for the root group
cpu_usec() {
  [ -r "/proc/$1/cgroup" ] || return 1
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    _cp=$(sed -n 's/^0:://p' "/proc/$1/cgroup")
    case $_cp in ''|/) return 1 ;; esac
    _u=$(sed -n 's/^usage_usec //p' "/sys/fs/cgroup$_cp/cpu.stat" 2>/dev/null)
  else
    _cp=$(grep -E '^[0-9]+:([^:]*,)?cpuacct(,[^:]*)?:' "/proc/$1/cgroup" | cut -d: -f3)
    case $_cp in ''|/) return 1 ;; esac
    _u=''
    for _m in cpuacct cpu,cpuacct cpuacct,cpu; do
      [ -r "/sys/fs/cgroup/$_m$_cp/cpuacct.usage" ] && { _u=$(( $(cat "/sys/fs/cgroup/$_m$_cp/cpuacct.usage") / 1000 )); break; }
    done
  fi
  case $_u in ''|*[!0-9]*) return 1 ;; esac
  echo "$_u"
}

# usage <depdir>: "cpu <index> <pid>:<starttime> <usec>" per running replica whose cgroup counter is readable (read-only)
cmd_usage() {
  [ -d "$1/replicas" ] || return 0
  for r in "$1"/replicas/*; do
    [ -d "$r" ] || continue
    mode=$(cat "$r/mode" 2>/dev/null || echo setsid); name=$(cat "$r/name" 2>/dev/null || echo '')
    _pid=''
    case $mode in
      setsid) alive "$r/supervisor.pid" "$r" && _pid=$(cat "$r/supervisor.pid") ;;
      systemd-system) _pid=$(systemctl show -p MainPID --value "$name" 2>/dev/null) ;;
      systemd-user) _pid=$(systemctl --user show -p MainPID --value "$name" 2>/dev/null) ;;
      podman|docker) _pid=$($mode inspect --format '{{.State.Pid}}' "$name" 2>/dev/null) ;;
    esac
    case $_pid in ''|0|*[!0-9]*) continue ;; esac
    _st=$(sed 's/.*) //' "/proc/$_pid/stat" 2>/dev/null | cut -d' ' -f20)
    _u=$(cpu_usec "$_pid") || continue
    echo "cpu $(basename "$r") $_pid:\${_st:-0} $_u"
  done
  return 0
}

# read-manifest <depdir>
cmd_read_manifest() { [ -f "$1/manifest.json" ] && cat "$1/manifest.json"; return 0; }

cmd=\${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  facts) cmd_facts ;;
  artifact) cmd_artifact "$@" ;;
  manifest) cmd_manifest "$@" ;;
  run) cmd_run "$@" ;;
  supervise) cmd_supervise "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  list) cmd_list "$@" ;;
  destroy) cmd_destroy "$@" ;;
  cgroups) cmd_cgroups "$@" ;;
  read-manifest) cmd_read_manifest "$@" ;;
  usage) cmd_usage "$@" ;;
  ports) cat /proc/net/tcp /proc/net/tcp6 2>/dev/null ;;
  *) die "unknown command" ;;
esac
`

/** sha256 of the script text: the loader refuses any other file content. */
export const HOST_SCRIPT_SHA256 = createHash('sha256').update(HOST_SCRIPT).digest('hex')

/** First 16 hex chars of the script's sha256: the remote file name carries it. */
export const HOST_SCRIPT_VERSION = HOST_SCRIPT_SHA256.slice(0, 16)

if (HOST_LOADER.includes("'") || HOST_LOADER.includes('\n')) throw new Error('HOST_LOADER must be one line without single quotes')
